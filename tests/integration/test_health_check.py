"""`gemmawatch targets check` and collectors.health on the real bundled Gemma and on real sockets."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from cli_support import assert_user_error, gw

from gemmawatch.collectors.backends.transformers_backend import TransformersBackend
from gemmawatch.collectors.health import check_backend, check_target
from gemmawatch.collectors.targets import resolve_target

CONTRACT_KEYS = {"target", "status", "latency_s", "ttft_s", "output_tokens", "memory_mb", "error", "details"}


@pytest.mark.model
def test_cli_check_of_the_bundled_model_is_healthy() -> None:
    # A generous threshold: this asserts the serving path works, not the speed of a shared CI box.
    proc = gw(
        "targets", "check", "gemma-3-270m", "--json", "--degraded-after", "300", env={"GEMMAWATCH_TORCH_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == CONTRACT_KEYS
    assert report["status"] == "healthy" and report["error"] is None
    assert 0 < report["ttft_s"] <= report["latency_s"]
    assert report["output_tokens"] == 8 and report["details"]["text"].strip()
    assert 900 < report["memory_mb"] < 1200 and report["details"]["memory_source"] == "model"  # ~268M fp32 params
    assert report["details"]["load_s"] > 0 and report["details"]["token_source"] == "tokenizer"


@pytest.mark.model
def test_slow_answer_is_degraded(gemma_backend: TransformersBackend) -> None:
    report = check_backend(gemma_backend, max_new_tokens=2, degraded_after_s=0.0)
    assert report.status == "degraded" and not report.healthy and report.error is None
    assert report.output_tokens == 2
    assert report.details["reasons"] == [f"latency {report.latency_s:.2f} s > 0 s"]


def test_cli_unreachable_openai_server_is_unhealthy_exit_1() -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = gw("targets", "check", f"openai:x@http://127.0.0.1:{port}/v1", "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report) == CONTRACT_KEYS
    assert report["status"] == "unhealthy" and report["latency_s"] is None
    assert f"127.0.0.1:{port}" in report["error"] and "Fix:" in report["error"] and "\n" not in report["error"]
    assert report["details"]["phase"] == "loading" and report["details"]["error_class"] == "BackendError"


def test_missing_model_folder_is_unhealthy_with_the_error() -> None:
    report = check_target(resolve_target("transformers:/nonexistent"))
    assert report.status == "unhealthy"
    assert report.error == "Model path '/nonexistent' does not exist. Fix: pass an existing model folder"


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A real TCP listener that accepts connections into its backlog and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_check_is_bounded_by_its_timeout(silent_server: int) -> None:
    info = resolve_target(f"openai:x@http://127.0.0.1:{silent_server}/v1")
    report = check_target(info, timeout_s=1.0)
    assert report.status == "unhealthy"
    assert report.error == "timed out after 1 s during loading"
    assert report.details["error_class"] == "timeout"


def test_cli_unknown_target_is_a_user_error() -> None:
    proc = gw("targets", "check", "gemma-9000", "--json")
    assert_user_error(proc, "Unknown target 'gemma-9000'", "Fix:")
    assert proc.stdout == ""
