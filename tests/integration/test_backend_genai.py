"""GenAIBackend through the official ``google-genai`` SDK against a local server speaking the Gemini API.

Google's API cannot be reached in CI; ``wire_servers.GeminiServer`` implements the
documented REST endpoints (models.get, streamGenerateContent over SSE) on 127.0.0.1 and
checks the ``x-goog-api-key`` header, so the SDK's real request path is under test.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import gw
from wire_servers import GeminiServer

from gemmawatch.collectors.backends import GenerationRequest
from gemmawatch.collectors.backends.genai_backend import GenAIBackend
from gemmawatch.collectors.targets import load_backend, resolve_target
from gemmawatch.errors import BackendError, UserError

pytest.importorskip("google.genai")

KEY_ENV = "GW_TEST_GEMINI_KEY"
KEY = "AIzaSy-test-only-0123456789-never-print"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[GeminiServer]:
    monkeypatch.setenv(KEY_ENV, KEY)
    with GeminiServer(api_key=KEY) as srv:
        yield srv


def _spec(url: str, query: str = "") -> str:
    return f"genai:gemma-3-27b-it@{url}?api_key_env={KEY_ENV}{query}"


def _backend(server: GeminiServer, query: str = "") -> GenAIBackend:
    backend = load_backend(resolve_target(_spec(server.url, query)))
    assert isinstance(backend, GenAIBackend)
    return backend


def test_load_checks_the_model_and_fills_target_info(server: GeminiServer) -> None:
    info = _backend(server).info
    assert info.revision == "001" and info.dtype is None
    assert info.options["display_name"] == "Gemma 3 27B" and info.options["input_token_limit"] == 131072
    (get,) = server.requests
    assert (get.method, get.path) == ("GET", "/v1beta/models/gemma-3-27b-it")
    assert get.headers["x-goog-api-key"] == KEY  # sent as a header, never in the URL
    assert KEY not in json.dumps(info.options) and info.options["api_key_env"] == KEY_ENV


def test_stream_timings_and_server_token_counts(server: GeminiServer) -> None:
    server.reply_text, server.chunks, server.tokens_per_chunk = "alpha beta gamma delta", 4, 5
    server.first_delay_s, server.chunk_delay_s = 0.05, 0.02
    result = _backend(server).stream(GenerationRequest("Four Greek letters please", max_new_tokens=64))
    assert result.ok, result.error
    assert result.text == "alpha beta gamma delta"
    # usageMetadata: candidatesTokenCount (4 chunks x 5), promptTokenCount (words + 1).
    assert (result.output_tokens, result.input_tokens, result.token_source) == (20, 5, "server")
    assert result.ttft_s is not None and result.ttft_s >= 0.05
    assert len(result.itl_s) == 3 and all(gap >= 0.015 for gap in result.itl_s)
    assert result.e2e_s >= result.ttft_s + sum(result.itl_s)
    assert result.tpot_s == pytest.approx((result.e2e_s - result.ttft_s) / 19)


def test_generation_config_plumbing(server: GeminiServer) -> None:
    stops = ["<a>", "<b>", "<c>", "<d>", "<e>", " capital"]  # six: the API takes five
    request = GenerationRequest("Capital of France?", max_new_tokens=11, stop=stops, temperature=0.7)
    (result,) = _backend(server).generate([request])
    assert result.ok and result.text == "Paris is the"  # the sixth stop string is applied client-side
    (body,) = server.bodies(":streamGenerateContent")
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Capital of France?"}]}]
    assert body["generationConfig"] == {
        "temperature": 0.7,
        "maxOutputTokens": 11,
        "stopSequences": stops[:5],
        "candidateCount": 1,
    }
    assert server.requests[-1].query == {"alt": ["sse"]}


def test_max_output_tokens_caps_the_answer(server: GeminiServer) -> None:
    result = _backend(server).stream(GenerationRequest("hi", max_new_tokens=2))
    assert result.ok and result.output_tokens == 2 and result.text == "Paris is the cap"


def test_chat_roles_map_to_user_and_model(server: GeminiServer) -> None:
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Again?"},
    ]
    result = _backend(server).stream(GenerationRequest(messages))
    assert result.ok and result.text == "Paris is the capital of France."
    (body,) = server.bodies(":streamGenerateContent")
    # Gemma on the Gemini API rejects system instructions: folded into the first user turn.
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Answer briefly.\n\nCapital of France?"}]},
        {"role": "model", "parts": [{"text": "Paris."}]},
        {"role": "user", "parts": [{"text": "Again?"}]},
    ]
    assert "systemInstruction" not in body


def test_per_request_failures_are_results_with_classes(server: GeminiServer) -> None:
    backend = _backend(server, "&timeout_s=0.5")
    server.slow_s = 1.5
    server.faults.extend(["http_500", "http_429", "stream_cut", "invalid_json", None, "slow_first_byte"])
    results = backend.generate([GenerationRequest(f"q{i}", max_new_tokens=8) for i in range(6)])
    assert [r.error_class for r in results] == ["http_500", "http_429", "stream_cut", "invalid_json", None, "timeout"]
    assert results[4].ok and results[4].text == "Paris is the capital of France."
    assert "RESOURCE_EXHAUSTED" in (results[1].error or "")
    for failed in (r for r in results if not r.ok):
        assert failed.text == "" and failed.error and "\n" not in failed.error


def test_retries_option_retries_a_server_error(server: GeminiServer) -> None:
    server.faults.extend(["http_500", None])
    result = _backend(server, "&retries=1").stream(GenerationRequest("hi"))
    assert result.ok and len(server.bodies(":streamGenerateContent")) == 2


def test_missing_key_variable_is_one_line_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with pytest.raises(UserError) as err:
        load_backend(resolve_target("genai:gemma-3-27b-it"))
    assert str(err.value) == (
        "Environment variable GEMINI_API_KEY is not set. Fix: export it, or set vertexai: true with project/location"
    )


def test_vertex_without_credentials_is_one_line_user_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A missing key file fails at once (no metadata-server probe, nothing leaves the machine).
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    with pytest.raises(UserError) as err:
        load_backend(resolve_target("genai:gemma-3-27b-it?vertexai=true&project=p&location=us-central1"))
    message = str(err.value)
    assert "\n" not in message and "Vertex AI" in message and "gcloud auth application-default login" in message


def test_unreachable_host_and_unknown_model_are_one_line_errors(server: GeminiServer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(BackendError) as err:
        load_backend(resolve_target(_spec(closed)))
    assert "\n" not in str(err.value) and f"Cannot reach Google GenAI at {closed}" in str(err.value)
    with pytest.raises(BackendError) as err:
        load_backend(resolve_target(f"genai:gemma-9-1b-it@{server.url}?api_key_env={KEY_ENV}"))
    assert "Model gemma-9-1b-it not found" in str(err.value) and "Fix:" in str(err.value)


def test_the_key_never_leaks(server: GeminiServer, caplog: pytest.LogCaptureFixture,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    backend = _backend(server)
    server.faults.extend(["http_500", "stream_cut"])
    results = backend.generate([GenerationRequest("a"), GenerationRequest("b"), GenerationRequest("c")])
    texts = [repr(backend), str(backend), repr(backend.info), caplog.text, *(repr(r) for r in results)]
    monkeypatch.setenv(KEY_ENV, "AIzaSy-wrong-key-also-secret")
    with pytest.raises(BackendError) as err:
        _backend(server)
    assert f"rejected the credentials from {KEY_ENV}" in str(err.value)
    texts += [str(err.value), caplog.text]
    assert caplog.records  # the SDK and httpx did log: the check below is not vacuous
    assert not [t for t in texts if KEY in t or "wrong-key" in t]


def test_loglikelihood_is_refused_and_memory_is_unknown(server: GeminiServer) -> None:
    backend = _backend(server)
    with pytest.raises(BackendError) as err:
        backend.loglikelihood([("2 + 2 =", " 4")])
    assert "\n" not in str(err.value) and "log-probabilities" in str(err.value) and "Fix:" in str(err.value)
    assert backend.memory_bytes() is None


def test_lm_eval_generation_task_runs_through_the_sdk(server: GeminiServer) -> None:
    from gemmawatch.evals.runner import run_lm_eval

    server.reply_text = "Rome\nQuestion: and then?"
    outcome = run_lm_eval(_backend(server), ["smoke_gen"], limit=3, batch_size=2)
    (metric,) = [m for m in outcome.metrics if m["metric"] == "exact_match"]
    assert metric["n"] == 3 and metric["value"] == pytest.approx(1 / 3)
    assert [s["output"] for s in outcome.samples] == ["Rome"] * 3
    bodies = server.bodies(":streamGenerateContent")
    assert len(bodies) == 3
    assert all(b["generationConfig"]["stopSequences"] == ["\n"] for b in bodies)
    assert all(b["generationConfig"]["maxOutputTokens"] == 16 for b in bodies)


def _stored_run(db: str, run_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run summary and its latency samples, read in-process (cheaper than a second CLI call)."""
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import runs, samples

    with session_scope(get_engine(db)) as s:
        summary = runs.run_summary(s, run_id)
        rows = samples.list_samples(s, run_id, task="latency")
    assert summary is not None
    return summary, rows


def test_cli_eval_stores_a_run_with_latency_metrics(server: GeminiServer, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    proc = gw("eval", "--target", _spec(server.url), "--tasks", "smoke_gen", "--limit", "2", "--latency-prompts", "2",
              "--json", "--db", db, env={KEY_ENV: KEY})
    assert proc.returncode == 0, proc.stderr
    assert KEY not in proc.stdout + proc.stderr
    run, samples = _stored_run(db, json.loads(proc.stdout)["run_id"])
    assert KEY not in json.dumps([run, samples], default=str)  # nothing stored carries the key
    assert run["status"] == "completed" and run["target_info"]["backend"] == "genai"
    metrics = {(m["task"], m["metric"]): m for m in run["metrics"]}
    assert metrics[("smoke_gen", "exact_match")]["n"] == 2
    assert metrics[("latency", "success_rate")]["value"] == 1.0
    assert metrics[("latency", "ttft_s_p50")]["value"] > 0 and metrics[("latency", "tpot_s_mean")]["n"] == 2
    assert len(server.bodies(":streamGenerateContent")) == 5
    assert [r["token_source"] for r in samples] == ["server", "server"]
