"""OllamaBackend through the official ``ollama`` SDK against a local server speaking Ollama's wire format.

Ollama itself cannot run in CI; ``wire_servers.OllamaServer`` implements the documented
endpoints on 127.0.0.1, so everything from the SDK's HTTP calls to our timing and error
handling is the real code path.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_support import gw
from wire_servers import GEMMA_DIGEST, GEMMA_VRAM, OllamaServer

from gemmawatch.collectors.backends import GenerationRequest, TargetInfo
from gemmawatch.collectors.backends.ollama_backend import OllamaBackend
from gemmawatch.collectors.targets import load_backend, resolve_target
from gemmawatch.errors import BackendError

pytest.importorskip("ollama")


@pytest.fixture
def server() -> Iterator[OllamaServer]:
    with OllamaServer() as srv:
        yield srv


def _backend(server: OllamaServer, query: str = "") -> OllamaBackend:
    backend = load_backend(resolve_target(f"ollama:gemma3:4b@{server.url}{query}"))
    assert isinstance(backend, OllamaBackend)
    return backend


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_load_fills_target_info_from_api_show(server: OllamaServer) -> None:
    backend = _backend(server)
    info = backend.info
    assert info.quantization == "Q4_K_M"
    assert info.revision == GEMMA_DIGEST  # from /api/tags: /api/show has no digest
    assert info.dtype is None
    assert {k: info.options[k] for k in ("parameter_size", "family", "format")} == {
        "parameter_size": "4.3B",
        "family": "gemma3",
        "format": "gguf",
    }
    assert server.bodies("/api/show") == [{"model": "gemma3:4b"}]
    assert "gemma3:4b" in repr(backend) and server.url in repr(backend)


def test_stream_timings_follow_the_vllm_definitions(server: OllamaServer) -> None:
    server.reply_text, server.chunks, server.tokens_per_chunk = "one two three four five", 5, 3
    server.first_delay_s, server.chunk_delay_s = 0.05, 0.02
    result = _backend(server).stream(GenerationRequest("Say five words", max_new_tokens=64))
    assert result.ok, result.error
    assert result.text == "one two three four five"
    # Server-reported counts: eval_count (5 chunks x 3 tokens), prompt_eval_count (words + BOS).
    assert (result.output_tokens, result.input_tokens, result.token_source) == (15, 4, "server")
    assert result.ttft_s is not None and result.ttft_s >= 0.05
    assert len(result.itl_s) == 4 and all(gap >= 0.015 for gap in result.itl_s)
    assert result.e2e_s >= result.ttft_s + sum(result.itl_s)
    assert result.tpot_s == pytest.approx((result.e2e_s - result.ttft_s) / 14)


def test_generate_sends_options_to_api_generate(server: OllamaServer) -> None:
    backend = _backend(server, "?num_ctx=4096&keep_alive=5m&seed=7")
    request = GenerationRequest("Capital of France?", max_new_tokens=9, stop=[" of", "!"], temperature=0.5)
    (result,) = backend.generate([request])
    assert result.ok and result.text == "Paris is the capital"  # Ollama stops before the stop string
    (body,) = server.bodies("/api/generate")
    assert body == {
        "model": "gemma3:4b",
        "prompt": "Capital of France?",
        "stream": True,
        "raw": False,
        "keep_alive": "5m",
        "options": {"temperature": 0.5, "num_predict": 9, "stop": [" of", "!"], "num_ctx": 4096, "seed": 7},
    }


def test_num_predict_caps_the_answer_and_raw_is_passed(server: OllamaServer) -> None:
    result = _backend(server, "?raw=true").stream(GenerationRequest("<start_of_turn>user\nhi", max_new_tokens=2))
    assert result.ok and result.output_tokens == 2
    assert result.text == "Paris is the cap"  # 2 of the 4 scripted chunks
    (body,) = server.bodies("/api/generate")
    assert body["raw"] is True and body["options"]["num_predict"] == 2


def test_chat_requests_go_to_api_chat(server: OllamaServer) -> None:
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Again?"},
    ]
    backend = _backend(server)
    chat, plain_chat = backend.generate([GenerationRequest(messages), GenerationRequest("Hi", chat=True)])
    assert chat.ok and chat.text == "Paris is the capital of France."
    assert chat.token_source == "server" and chat.output_tokens == 4
    bodies = server.bodies("/api/chat")
    assert [b["messages"] for b in bodies] == [messages, [{"role": "user", "content": "Hi"}]]
    assert plain_chat.ok and not server.bodies("/api/generate")


def test_per_request_failures_are_results_with_classes(server: OllamaServer) -> None:
    backend = _backend(server, "?timeout_s=0.5")
    server.slow_s = 1.5
    server.faults.extend(["http_500", "stream_cut", "invalid_json", None, "http_404", "slow_first_byte"])
    results = backend.generate([GenerationRequest(f"q{i}", max_new_tokens=8) for i in range(6)])
    classes = [r.error_class for r in results]
    assert classes == ["http_500", "stream_cut", "invalid_json", None, "http_404", "timeout"]
    assert results[3].ok and results[3].text == "Paris is the capital of France."
    for failed in (r for r in results if not r.ok):
        assert failed.text == "" and failed.error and "\n" not in failed.error
    assert results[5].e2e_s >= 0.5


def test_server_gone_after_load_is_a_connection_error(server: OllamaServer) -> None:
    backend = _backend(server)
    server.__exit__(None, None, None)
    result = backend.stream(GenerationRequest("hello"))
    assert result.error_class == "connection" and not result.ok


def test_unreachable_host_is_one_line_backend_error() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(BackendError) as err:
        load_backend(resolve_target(f"ollama:gemma3:4b@{url}"))
    message = str(err.value)
    assert "\n" not in message and url in message and "`ollama serve`" in message and "Fix:" in message


def test_default_url_is_the_local_ollama_port() -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 11434)) == 0:
            pytest.skip("something listens on 127.0.0.1:11434")
    with pytest.raises(BackendError, match=r"Cannot reach Ollama at http://127\.0\.0\.1:11434 "):
        OllamaBackend(TargetInfo(name="o", backend="ollama", model_id="gemma3:4b"))


def test_unknown_model_names_the_pull_fix(server: OllamaServer) -> None:
    with pytest.raises(BackendError) as err:
        load_backend(resolve_target(f"ollama:gemma9:1b@{server.url}"))
    assert str(err.value) == f"Model gemma9:1b not found on ollama at {server.url}. Fix: ollama pull gemma9:1b"


def test_memory_comes_from_api_ps_once_loaded(server: OllamaServer) -> None:
    backend = _backend(server)
    assert backend.memory_bytes() is None  # /api/ps lists nothing before the first request
    assert backend.stream(GenerationRequest("hi")).ok
    assert backend.memory_bytes() == GEMMA_VRAM
    backend.close()


def test_loglikelihood_is_refused_in_one_line(server: OllamaServer) -> None:
    with pytest.raises(BackendError) as err:
        _backend(server).loglikelihood([("The capital of France is", " Paris")])
    message = str(err.value)
    assert "\n" not in message and "log-probabilities" in message and "Fix: run generation tasks" in message


def test_lm_eval_generation_task_runs_through_the_sdk(server: OllamaServer) -> None:
    from gemmawatch.evals.runner import run_lm_eval

    server.reply_text = "Rome\nQuestion: and then?"  # the "\n" stop string must cut this to "Rome"
    outcome = run_lm_eval(_backend(server), ["smoke_gen"], limit=3, batch_size=2)
    (metric,) = [m for m in outcome.metrics if m["metric"] == "exact_match"]
    assert metric["n"] == 3 and metric["value"] == pytest.approx(1 / 3)  # only doc 3 (Italy) is Rome
    assert [s["output"] for s in outcome.samples] == ["Rome"] * 3
    bodies = server.bodies("/api/generate")
    assert len(bodies) == 3
    assert all(b["options"]["stop"] == ["\n"] and b["options"]["num_predict"] == 16 for b in bodies)
    assert bodies[0]["prompt"].startswith("Question: ") and bodies[0]["prompt"].endswith("\nAnswer:")


def _stored_run(db: str, run_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run summary and its latency samples, read in-process (cheaper than a second CLI call)."""
    from gemmawatch.storage.engine import get_engine, session_scope
    from gemmawatch.storage.queries import runs, samples

    with session_scope(get_engine(db)) as s:
        summary = runs.run_summary(s, run_id)
        rows = samples.list_samples(s, run_id, task="latency")
    assert summary is not None
    return summary, rows


def test_cli_eval_stores_a_run_with_latency_metrics(server: OllamaServer, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    spec = f"ollama:gemma3:4b@{server.url}"
    proc = gw("eval", "--target", spec, "--tasks", "smoke_gen", "--limit", "2", "--latency-prompts", "2", "--json",
              "--db", db)
    assert proc.returncode == 0, proc.stderr
    run, samples = _stored_run(db, json.loads(proc.stdout)["run_id"])
    assert run["status"] == "completed" and run["target_info"]["backend"] == "ollama"
    metrics = {(m["task"], m["metric"]): m for m in run["metrics"]}
    assert metrics[("smoke_gen", "exact_match")]["n"] == 2
    assert metrics[("latency", "success_rate")]["value"] == 1.0
    assert metrics[("latency", "ttft_s_p50")]["value"] > 0 and metrics[("latency", "tpot_s_mean")]["n"] == 2
    # Warm-up + 2 latency prompts + 2 lm-eval docs, all streamed through /api/generate.
    assert len(server.bodies("/api/generate")) == 5
    assert [r["token_source"] for r in samples] == ["server", "server"]
