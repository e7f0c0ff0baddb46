"""``gemmawatch redteam`` end to end: target -> relay <- garak (own interpreter) -> report -> SQL -> alerts.

Everything the user typed is checked before the run row exists (target, probes,
numbers, garak's interpreter, the report to import). The run is created ``running``;
the target is loaded once, here, and served to garak's ``function`` generator
through the relay (:mod:`gemmawatch.evals.redteam.relay`), which hands garak only the
continuation of each prompt. garak writes into the run's own folder; its report is
then imported: samples, metrics and the final status in one transaction. A report
without its ``completion`` entry, a garak exit status other than 0 or any other
failure marks the run ``failed`` with a one-line error and re-raises.

``--import REPORT`` skips garak and stores an existing report the same way (the
target names what was tested; it is not loaded).

Stored shape (run kind ``redteam``): see :mod:`gemmawatch.evals.redteam.scoring`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gemmawatch.config import GemmawatchConfig
from gemmawatch.errors import BackendError, ConfigError, UserError
from gemmawatch.pipeline import DEFAULT_TELEMETRY_INTERVAL_S, evaluate_alerts, resolve_targets
from gemmawatch.run_lifecycle import failure_marks_run, measured_backend, open_run, store_results

Progress = Callable[[str], None]

#: Run kind of a red-teaming run.
REDTEAM_KIND = "redteam"
#: ``module.Class`` or a whole ``module`` of garak probes.
_PROBE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


@dataclass
class RedteamRequest:
    """One red-teaming run as the user asked for it (see ``gemmawatch redteam --help``).

    ``probes`` None means :data:`~gemmawatch.evals.redteam.garak_runner.DEFAULT_PROBES`;
    ``prompt_cap`` None means garak's own cap (256 prompts per probe).
    ``temperature`` None means greedy for one generation and 0.7 for more (greedy
    outputs of one prompt would all be equal). ``import_report`` skips garak.
    """

    target: str
    probes: Sequence[str] | None = None
    generations: int = 1
    max_new_tokens: int = 64
    prompt_cap: int | None = 20
    seed: int = 0
    temperature: float | None = None
    chat: bool = True
    import_report: str | None = None
    report_dir: str | None = None
    garak_python: str | None = None
    timeout_s: float | None = None
    telemetry_interval_s: float = DEFAULT_TELEMETRY_INTERVAL_S
    label: str | None = None


@dataclass
class RedteamOutcome:
    """A stored red-teaming run: id, status, metric rows, sample count and alert transitions."""

    run_id: int
    target: str
    status: str
    report: str
    probes: list[str] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    samples: int = 0
    alerts: list[dict[str, Any]] = field(default_factory=list)


def check_request(request: RedteamRequest) -> list[str]:
    """The probes to run, after checking every number and name; raises ConfigError on bad input."""
    from gemmawatch.evals.redteam.garak_runner import DEFAULT_PROBES
    from gemmawatch.evals.redteam.scoring import MAX_GENERATIONS

    if not 1 <= request.generations <= MAX_GENERATIONS:
        raise ConfigError(f"--generations must be 1..{MAX_GENERATIONS}. Fix: pass e.g. --generations 1")
    if request.max_new_tokens < 1:
        raise ConfigError("--max-new-tokens must be at least 1. Fix: pass a positive number")
    if request.prompt_cap is not None and request.prompt_cap < 1:
        raise ConfigError("--prompt-cap must be at least 1. Fix: pass a positive number or leave it out")
    if request.temperature is not None and request.temperature < 0:
        raise ConfigError("--temperature must be 0 or more. Fix: pass e.g. --temperature 0.7")
    probes = list(request.probes) if request.probes is not None else list(DEFAULT_PROBES)
    if not probes:
        raise ConfigError(f"No probes selected. Fix: pass --probes, e.g. {','.join(DEFAULT_PROBES[:2])}")
    bad = [p for p in probes if not _PROBE_NAME.match(p)]
    if bad:
        raise ConfigError(
            f"Probe name {bad[0]!r} is not MODULE or MODULE.Class. Fix: e.g. --probes encoding.InjectHex,dan.Dan_11_0"
        )
    duplicates = sorted({p for p in probes if probes.count(p) > 1})
    if duplicates:
        raise ConfigError(f"Probe {', '.join(duplicates)} given twice. Fix: list each probe once")
    return probes


def _temperature(request: RedteamRequest) -> float:
    if request.temperature is not None:
        return request.temperature
    return 0.0 if request.generations == 1 else 0.7


def _default_report_root() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("gemmawatch")) / "redteam"


def run_redteam(
    request: RedteamRequest,
    *,
    db_url: str | None,
    config: GemmawatchConfig,
    progress: Progress = lambda _msg: None,
) -> RedteamOutcome:
    """Run (or import) ``request`` against its target and store one run of kind ``redteam``."""
    from gemmawatch.alerts.config import parse_alert_rules
    from gemmawatch.evals.redteam.garak_runner import find_garak
    from gemmawatch.evals.redteam.report import read_report
    from gemmawatch.evals.safety.storage_policy import TextPolicy
    from gemmawatch.storage.engine import get_engine

    probes = check_request(request)
    (info,) = resolve_targets([request.target], config)
    config_rules = parse_alert_rules(config.alerts, source=config.source or "gemmawatch.yaml")
    text_policy = TextPolicy(config.store_text)
    imported = read_report(request.import_report) if request.import_report is not None else None
    install = find_garak(request.garak_python) if imported is None else None
    engine = get_engine(db_url)
    run_config: dict[str, Any] = {
        "tool": "garak",
        "garak_version": imported.garak_version if imported else install.version if install else None,
        "garak_python": str(install.python) if install else None,
        "imported": imported is not None,
        "probes": imported.probes if imported else probes,
        "generations": imported.generations if imported else request.generations,
        "max_new_tokens": None if imported else request.max_new_tokens,
        "prompt_cap": None if imported else request.prompt_cap,
        "seed": imported.setup.get("run.seed") if imported else request.seed,
        "temperature": None if imported else _temperature(request),
        "chat": None if imported else request.chat,
        "telemetry_interval_s": None if imported else request.telemetry_interval_s,
        "target_options": dict(info.options),
        **text_policy.describe(),
    }
    run_id = open_run(engine, info, kind=REDTEAM_KIND, config=run_config, label=request.label)
    if imported is not None:
        progress(f"Run {run_id}: importing {imported.path} for {info.name}")
        outcome = _store(engine, run_id, info.name, imported, None, text_policy, progress)
    else:
        run_dir = Path(request.report_dir).expanduser() if request.report_dir else _default_report_root()
        run_dir = run_dir / f"run-{run_id}"
        progress(f"Run {run_id}: red-teaming {info.name} with garak ({', '.join(probes)})")
        outcome = _execute(engine, run_id, info, request, probes, install, run_dir, text_policy, progress)
    outcome.alerts = evaluate_alerts(engine, run_id, config_rules, progress, config.notifications)
    return outcome


def _execute(
    engine: Any,
    run_id: int,
    info: Any,
    request: RedteamRequest,
    probes: list[str],
    install: Any,
    run_dir: Path,
    text_policy: Any,
    progress: Progress,
) -> RedteamOutcome:
    from gemmawatch.evals.redteam.garak_runner import GarakSpec, run_garak
    from gemmawatch.evals.redteam.relay import Relay
    from gemmawatch.evals.redteam.report import read_report
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries import runs as rq

    spec = GarakSpec(
        probes=probes,
        run_dir=run_dir,
        generations=request.generations,
        seed=request.seed,
        prompt_cap=request.prompt_cap,
    )
    with failure_marks_run(engine, run_id, progress):
        with session_scope(engine) as s:
            rq.merge_run_config(s, run_id, {"report_dir": str(run_dir), "report": str(spec.report_path)})
        with measured_backend(
            engine, run_id, info, telemetry_interval_s=request.telemetry_interval_s, progress=progress
        ) as backend:
            relay = Relay(
                backend,
                max_new_tokens=request.max_new_tokens,
                chat=request.chat,
                temperature=_temperature(request),
                progress=progress,
            )
            with relay:
                try:
                    report_path = run_garak(
                        install, spec, relay.environment(), timeout_s=request.timeout_s, progress=progress
                    )
                finally:
                    with session_scope(engine) as s:
                        rq.merge_run_config(s, run_id, {"relay": relay.stats.as_dict()})
        if relay.stats.outputs and relay.stats.failed == relay.stats.outputs:
            raise BackendError(
                f"every generation failed ({relay.stats.outputs} outputs); first: {relay.stats.first_error}. "
                f"Fix: check that the target answers `gemmawatch targets check {info.name}`"
            )
        report = read_report(report_path)
    if relay.stats.echoes_stripped:
        progress(
            f"{relay.stats.echoes_stripped} outputs repeated the prompt (removed before garak's detectors); "
            f"{relay.stats.echo_only} of them held nothing else and are not scored"
        )
    return _store(engine, run_id, info.name, report, relay.answers, text_policy, progress)


def _store(
    engine: Any,
    run_id: int,
    target: str,
    report: Any,
    answers: Any,
    text_policy: Any,
    progress: Progress,
) -> RedteamOutcome:
    """Import ``report`` into run ``run_id``: samples, metrics, report provenance and status, in one transaction."""
    from gemmawatch.evals.redteam.scoring import redteam_metrics, redteam_samples
    from gemmawatch.storage.engine import session_scope
    from gemmawatch.storage.queries import runs as rq

    provenance = {
        "report": str(report.path),
        "report_sha256": report.sha256,
        "report_complete": report.complete,
        "garak_version": report.garak_version,
        "garak_run_id": report.garak_run_id,
        "detectors": report.detectors,
        "eval_threshold": report.eval_threshold,
        "scored_attempts": len(report.attempts),
        "unscored_attempts": report.unscored,
    }
    with failure_marks_run(engine, run_id, progress):
        with session_scope(engine) as s:  # what was read is recorded even when it cannot be imported
            rq.merge_run_config(s, run_id, provenance)
        report.require_complete()
        samples = redteam_samples(report, answers)
        if not samples:
            raise UserError(
                f"garak report {report.path} holds no scored attempts. "
                "Fix: check the probe names and that their detectors work offline"
            )
        metrics = redteam_metrics(samples, report)
        store_results(engine, run_id, samples, metrics, text_policy=text_policy)
    return RedteamOutcome(
        run_id=run_id,
        target=target,
        status="completed",
        report=str(report.path),
        probes=report.probes,
        metrics=metrics,
        samples=len(samples),
    )
