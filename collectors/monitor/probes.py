"""Canary probes: one prompt per fire, streamed through the target's backend, checked, turned into rows.

Rows follow the monitor's storage contract. Telemetry (source ``probe``,
labels ``target`` and ``probe``, plus ``error_class`` on failures):

* every probe: ``probe.up`` (1 answered / 0 failed) and ``probe.error`` (its complement);
* answered probes: ``probe.e2e_s``, ``probe.ttft_s``, ``probe.tpot_s`` (when the
  stream had two tokens or more) and ``probe.output_tokens``;
* answered probes of a probe with checks: ``probe.unsafe`` per check (label
  ``check``; 1 when the check flagged the output).

The prompt and the answer become a sample of task ``probe/<name>`` whose
``scores`` hold the target, the verdict and each check's result.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult
from gemmawatch.collectors.monitor.checks import CheckOutcome, NamedCheck, run_checks
from gemmawatch.collectors.monitor.config import ProbeConfig
from gemmawatch.collectors.monitor.endpoint import Endpoint
from gemmawatch.errors import ConfigError, one_line

__all__ = ["PROBE_SOURCE", "Probe", "ProbeOutcome", "load_prompts", "probe_rows"]

PROBE_SOURCE = "probe"


def load_prompts(cfg: ProbeConfig, base_dir: Path, *, where: str) -> list[str]:
    """The probe's prompts: the inline list, or the dataset's field (path relative to ``base_dir``)."""
    if cfg.prompts is not None:
        return [p for p in cfg.prompts if p.strip()]
    from gemmawatch.collectors.load.prompts import dataset_prompts

    assert cfg.dataset is not None  # the config validator guarantees one source
    path = Path(cfg.dataset.path).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        rows = dataset_prompts(path, prompt_field=cfg.dataset.field, output_tokens=cfg.max_new_tokens)
    except ConfigError as exc:
        raise ConfigError(f"{where}.dataset: {one_line(str(exc))}") from exc
    return [row.text for row in rows]


@dataclass
class ProbeOutcome:
    """What one fire of a probe produced."""

    probe: str
    target: str
    seq: int
    prompt: str
    result: GenerationResult
    checks: list[CheckOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the target answered within the probe's timeout."""
        return self.result.ok


class Probe:
    """A configured probe bound to its endpoint; :meth:`run` sends the next prompt (round robin)."""

    def __init__(self, cfg: ProbeConfig, endpoint: Endpoint, prompts: Sequence[str], checks: Sequence[NamedCheck]):
        if not prompts:
            raise ValueError(f"probe {cfg.name} has no prompts")
        self.cfg = cfg
        self.name = cfg.name
        self.task = f"probe/{cfg.name}"
        self.endpoint = endpoint
        self.prompts = list(prompts)
        self.checks = list(checks)
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def _next(self) -> tuple[int, str]:
        with self._lock:
            seq = next(self._seq)
        return seq, self.prompts[seq % len(self.prompts)]

    def run(self) -> ProbeOutcome:
        """Send one prompt, apply the timeout and the checks, update the endpoint's backoff."""
        seq, prompt = self._next()
        request = GenerationRequest(prompt, max_new_tokens=self.cfg.max_new_tokens, chat=self.cfg.chat)
        result = self.endpoint.stream(request)
        if result.ok and result.e2e_s > self.cfg.timeout_s:
            # It answered, but later than this probe accepts: a failure, as the user would see it.
            result.error = f"answered after {result.e2e_s:.2f} s, more than timeout_s={self.cfg.timeout_s:g} s"
            result.error_class = "timeout"
        outcome = ProbeOutcome(self.name, self.endpoint.name, seq, prompt, result)
        if result.ok and self.checks:
            outcome.checks = run_checks(self.checks, result.text, prompt=prompt)
        self.endpoint.record(outcome.ok)
        return outcome


def probe_rows(outcome: ProbeOutcome, *, host: str, interval_s: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The telemetry rows and the sample row of one probe (``run_id`` is filled in by the writer)."""
    r = outcome.result
    labels: dict[str, Any] = {"target": outcome.target, "probe": outcome.probe}
    if not r.ok:
        labels["error_class"] = r.error_class or "error"

    def row(metric: str, value: float, unit: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "host": host,
            "source": PROBE_SOURCE,
            "metric": metric,
            "unit": unit,
            "value": float(value),
            "ts": r.started_at,
            "interval_s": interval_s,
            "labels": {**labels, **(extra or {})},
        }

    rows = [row("probe.up", 1.0 if r.ok else 0.0, "bool"), row("probe.error", 0.0 if r.ok else 1.0, "bool")]
    if r.ok:
        rows.append(row("probe.e2e_s", r.e2e_s, "s"))
        if r.ttft_s is not None:
            rows.append(row("probe.ttft_s", r.ttft_s, "s"))
        if r.tpot_s is not None:
            rows.append(row("probe.tpot_s", r.tpot_s, "s"))
        rows.append(row("probe.output_tokens", float(r.output_tokens), "tokens"))
        for check in outcome.checks:
            if check.error is None:
                rows.append(row("probe.unsafe", 1.0 if check.flagged else 0.0, "bool", {"check": check.name}))
    scores: dict[str, Any] = {"target": outcome.target, "up": 1 if r.ok else 0}
    if not r.ok:
        scores["error_class"] = labels["error_class"]
    if outcome.checks:
        scores["checks"] = {c.name: c.as_json() for c in outcome.checks}
    sample = {
        "task": f"probe/{outcome.probe}",
        "doc_id": outcome.seq,
        "prompt": outcome.prompt,
        "output": r.text,
        "scores": scores,
        "latency_s": r.e2e_s if r.ok else None,
        "ttft_s": r.ttft_s if r.ok else None,
        "tpot_s": r.tpot_s if r.ok else None,
        "input_tokens": r.input_tokens if r.ok else None,
        "output_tokens": r.output_tokens if r.ok else None,
        "token_source": r.token_source if r.ok else None,
        "error": r.error,
        "started_at": r.started_at,
    }
    return rows, sample
