"""Probe rows (the storage contract), backoff, probe defaults for HTTP targets, safety checks on outputs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo
from gemmawatch.collectors.monitor.checks import NamedCheck, resolve_checks, run_checks
from gemmawatch.collectors.monitor.config import ProbeConfig
from gemmawatch.collectors.monitor.endpoint import Backoff, Endpoint, probe_target_info
from gemmawatch.collectors.monitor.probes import Probe, ProbeOutcome, probe_rows
from gemmawatch.collectors.monitor.ratelimit import TokenBucket
from gemmawatch.errors import BackendError, ConfigError

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def result(**kw: Any) -> GenerationResult:
    base: dict[str, Any] = {"text": "Paris.", "input_tokens": 5, "output_tokens": 3, "token_source": "server",
                            "started_at": T0, "ttft_s": 0.1, "e2e_s": 0.3, "tpot_s": 0.1}  # fmt: skip
    return GenerationResult(**{**base, **kw})


def by_metric(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["metric"] + (f"/{r['labels']['check']}" if "check" in r["labels"] else ""): r for r in rows}


def test_rows_of_an_answered_probe() -> None:
    outcome = ProbeOutcome("capital", "prod", 4, "The capital of France is", result())
    rows, sample = probe_rows(outcome, host="h1", interval_s=30.0)
    m = by_metric(rows)
    assert set(m) == {"probe.up", "probe.error", "probe.e2e_s", "probe.ttft_s", "probe.tpot_s", "probe.output_tokens"}
    assert (m["probe.up"]["value"], m["probe.error"]["value"], m["probe.e2e_s"]["value"]) == (1.0, 0.0, 0.3)
    for r in rows:
        assert (r["host"], r["source"], r["ts"], r["interval_s"]) == ("h1", "probe", T0, 30.0)
        assert r["labels"] == {"target": "prod", "probe": "capital"}
    assert sample["task"] == "probe/capital" and sample["doc_id"] == 4 and sample["output"] == "Paris."
    assert (sample["latency_s"], sample["ttft_s"], sample["error"]) == (0.3, 0.1, None)
    assert sample["scores"] == {"target": "prod", "up": 1}


def test_rows_of_a_failed_probe_carry_the_error_class() -> None:
    failed = result(text="", ttft_s=None, tpot_s=None, output_tokens=0, error="refused", error_class="connection")
    rows, sample = probe_rows(ProbeOutcome("capital", "prod", 0, "x", failed), host="h1", interval_s=30.0)
    m = by_metric(rows)
    assert set(m) == {"probe.up", "probe.error"}  # no latency for a request that never answered
    assert m["probe.up"]["value"] == 0.0 and m["probe.error"]["value"] == 1.0
    assert m["probe.up"]["labels"] == {"target": "prod", "probe": "capital", "error_class": "connection"}
    assert sample["error"] == "refused" and sample["latency_s"] is None
    assert sample["scores"] == {"target": "prod", "up": 0, "error_class": "connection"}


class FakeBackend:
    def __init__(self, info: TargetInfo, answers: list[GenerationResult]) -> None:
        self.info = info
        self.answers = answers
        self.requests: list[GenerationRequest] = []
        self.closed = False

    def stream(self, request: GenerationRequest) -> GenerationResult:
        self.requests.append(request)
        return self.answers.pop(0)

    def close(self) -> None:
        self.closed = True


def endpoint(loader: Any) -> Endpoint:
    info = TargetInfo("prod", "openai", "m", options={"base_url": "http://127.0.0.1:1/v1"})
    return Endpoint(info, bucket=TokenBucket(60), backoff=Backoff(1, 4), loader=loader)


def probe_cfg(**kw: Any) -> ProbeConfig:
    return ProbeConfig.model_validate({"name": "p", "target": "prod", "prompts": ["a", "b"], **kw})


def test_probe_rotates_prompts_applies_timeout_and_checks() -> None:
    backend: list[FakeBackend] = []

    def load(info: TargetInfo) -> Any:
        backend.append(FakeBackend(info, [result(), result(e2e_s=9.0), result(text="Mail jane.doe@example.com now")]))
        return backend[0]

    ep = endpoint(load)
    pii = resolve_checks(["pii"], where="probes.0.checks")
    probe = Probe(probe_cfg(timeout_s=5, max_new_tokens=7, chat=True), ep, ["a", "b"], pii)
    first, slow, leaky = probe.run(), probe.run(), probe.run()
    assert [o.prompt for o in (first, slow, leaky)] == ["a", "b", "a"]
    assert [r.max_new_tokens for r in backend[0].requests] == [7, 7, 7] and backend[0].requests[0].chat
    assert first.ok and [c.flagged for c in first.checks] == [False]
    assert not slow.ok and slow.result.error_class == "timeout" and not slow.checks
    assert leaky.ok and leaky.checks[0].flagged and leaky.checks[0].name == "pii"
    rows, sample = probe_rows(leaky, host="h", interval_s=1)
    assert by_metric(rows)["probe.unsafe/pii"]["value"] == 1.0
    assert sample["scores"]["checks"]["pii"]["flagged"] is True
    assert ep.up is True and len(backend) == 1  # connected once
    ep.close()
    assert backend[0].closed


def test_unreachable_target_is_a_failed_probe_with_backoff() -> None:
    def load(info: TargetInfo) -> Any:
        raise BackendError("Cannot reach the server")

    ep = endpoint(load)
    outcome = Probe(probe_cfg(), ep, ["a"], []).run()
    assert not outcome.ok and outcome.result.error_class == "unreachable"
    assert ep.up is False and ep.admit() == "backoff"


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    now = [0.0]
    b = Backoff(1, 5, clock=lambda: now[0])
    assert not b.resting()
    assert [b.failed() for _ in range(5)] == [1, 2, 4, 5, 5]
    assert b.resting()
    now[0] += 5
    assert not b.resting()
    b.succeeded()
    assert b.failed() == 1


def test_probe_defaults_for_http_targets() -> None:
    info = TargetInfo("t", "openai", "m", options={"base_url": "http://x/v1", "max_retries": 2})
    assert probe_target_info(info, 10).options == {"base_url": "http://x/v1", "max_retries": 2, "timeout_s": 10}
    ollama = probe_target_info(TargetInfo("o", "ollama", "gemma3"), 7)
    assert ollama.options == {"timeout_s": 7}
    local = TargetInfo("l", "transformers", "m")
    assert probe_target_info(local, 7) is local


def test_checks_with_arguments_and_errors() -> None:
    (email_only,) = resolve_checks([{"name": "pii", "categories": ["email"]}], where="probes.0.checks")
    assert run_checks([email_only], "call 555-123-4567")[0].flagged is False
    assert run_checks([email_only], "write to a@example.com")[0].flagged is True
    with pytest.raises(ConfigError, match=r"probes.0.checks.0: Unknown safety check 'nope'"):
        resolve_checks(["nope"], where="probes.0.checks")
    with pytest.raises(ConfigError, match=r"probes.0.checks.0: .*Fix:"):
        resolve_checks([{"name": "pii", "bogus": 1}], where="probes.0.checks")
    with pytest.raises(ConfigError, match="needs a name"):
        resolve_checks([{"categories": ["email"]}], where="probes.0.checks")

    class Broken:
        def check(self, text: str, *, prompt: str | None = None) -> Any:
            raise RuntimeError("boom")

    (outcome,) = run_checks([NamedCheck("broken", Broken())], "text")  # type: ignore[arg-type]
    assert not outcome.flagged and outcome.error == "RuntimeError: boom"
