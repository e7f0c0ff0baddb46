"""Health check of a target: load (or connect), one tiny streamed generation, a verdict.

The verdict, in order:

* ``unhealthy``: the target could not be loaded or reached, the generation failed, or
  the whole check ran past ``timeout_s``;
* ``degraded``: it answered, but slower than ``degraded_after_s`` (end to end) or with
  an empty answer;
* ``healthy`` otherwise.

Latency figures use the same definitions as every other measurement (``Backend.stream``:
E2E from send to the last token, TTFT to the first). Loading time is reported apart
(``details["load_s"]``): a health check asks whether the *serving* path works.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from gemmawatch.errors import ConfigError, GemmawatchError, UnknownNameError, one_line

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import Backend, TargetInfo

__all__ = [
    "DEFAULT_DEGRADED_AFTER_S",
    "DEFAULT_PROMPT",
    "HealthReport",
    "HealthStatus",
    "check_backend",
    "check_target",
]

HealthStatus = Literal["healthy", "degraded", "unhealthy"]

DEFAULT_PROMPT = "The capital of France is"
#: Seconds of end-to-end latency above which a working target counts as degraded
#: (the seed's "max response time" alert uses the same 10 s).
DEFAULT_DEGRADED_AFTER_S = 10.0


@dataclass
class HealthReport:
    """The outcome of one health check (``to_dict`` is the ``targets check --json`` contract)."""

    target: str
    status: HealthStatus
    latency_s: float | None = None
    ttft_s: float | None = None
    output_tokens: int | None = None
    memory_mb: float | None = None
    error: str | None = None
    #: backend, model_id, load_s, output text, token_source, error_class, reasons, thresholds.
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        """True only for ``healthy``; a degraded target fails a check too."""
        return self.status == "healthy"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (status, latency_s, error, ... , details)."""
        return asdict(self)


def _memory_mb(backend: Backend) -> tuple[float | None, str]:
    try:
        size = backend.memory_bytes()
    except Exception:  # a remote backend may fail to say; the check must still report
        size = None
    if size is not None:
        return size / 2**20, "model"
    try:
        import psutil

        # Remote backends hold no weights here: this is only gemmawatch's own footprint.
        return psutil.Process().memory_info().rss / 2**20, "process_rss"
    except Exception:
        return None, "unknown"


def check_backend(
    backend: Backend,
    *,
    prompt: str = DEFAULT_PROMPT,
    max_new_tokens: int = 8,
    degraded_after_s: float = DEFAULT_DEGRADED_AFTER_S,
) -> HealthReport:
    """Health of an already loaded backend: one streamed generation of ``prompt``."""
    from gemmawatch.collectors.backends.base import GenerationRequest

    info = backend.info
    details: dict[str, Any] = {
        "backend": info.backend,
        "model_id": info.model_id,
        "prompt": prompt,
        "max_new_tokens": max_new_tokens,
        "degraded_after_s": degraded_after_s,
    }
    result = backend.stream(GenerationRequest(prompt, max_new_tokens=max_new_tokens))
    memory_mb, memory_source = _memory_mb(backend)
    details.update(
        text=result.text,
        tpot_s=result.tpot_s,
        input_tokens=result.input_tokens,
        token_source=result.token_source,
        error_class=result.error_class,
        memory_source=memory_source,
    )
    report = HealthReport(
        target=info.name,
        status="healthy",
        latency_s=result.e2e_s,
        ttft_s=result.ttft_s,
        output_tokens=result.output_tokens,
        memory_mb=memory_mb,
        details=details,
    )
    if not result.ok:
        report.status, report.error = "unhealthy", result.error or result.error_class or "generation failed"
        return report
    reasons = []
    if result.e2e_s > degraded_after_s:
        reasons.append(f"latency {result.e2e_s:.2f} s > {degraded_after_s:g} s")
    if not result.text.strip() or result.output_tokens == 0:
        reasons.append("empty output")
    if reasons:
        report.status = "degraded"
        details["reasons"] = reasons
    return report


@dataclass
class _Attempt:
    phase: str = "loading"
    report: HealthReport | None = None
    error: BaseException | None = None
    load_s: float | None = None


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, GemmawatchError):
        return one_line(str(exc))
    return one_line(f"{type(exc).__name__}: {exc}")


def check_target(
    info: TargetInfo,
    *,
    prompt: str = DEFAULT_PROMPT,
    max_new_tokens: int = 8,
    timeout_s: float = 120.0,
    degraded_after_s: float = DEFAULT_DEGRADED_AFTER_S,
) -> HealthReport:
    """Load (or connect to) ``info``, run :func:`check_backend`, close it; never raises for a sick target.

    Load and generation failures become an ``unhealthy`` report with the one-line error.
    Configuration mistakes (an unknown backend name, an invalid config) are raised, like
    every user error. The check runs in a daemon thread so ``timeout_s`` bounds it even
    when a load or a server hangs; on timeout that thread is abandoned, not killed.
    """
    from gemmawatch.collectors.targets import load_backend

    attempt = _Attempt()

    def work() -> None:
        backend = None
        try:
            start = time.perf_counter()
            backend = load_backend(info)
            attempt.load_s = time.perf_counter() - start
            attempt.phase = "generation"
            attempt.report = check_backend(
                backend, prompt=prompt, max_new_tokens=max_new_tokens, degraded_after_s=degraded_after_s
            )
        except BaseException as exc:  # reported by the caller thread
            attempt.error = exc
        finally:
            if backend is not None:
                with contextlib.suppress(Exception):  # closing must not hide the verdict
                    backend.close()

    thread = threading.Thread(target=work, name=f"health-check {info.name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    base = {"backend": info.backend, "model_id": info.model_id, "load_s": attempt.load_s, "timeout_s": timeout_s}
    if thread.is_alive():
        return HealthReport(
            target=info.name,
            status="unhealthy",
            error=f"timed out after {timeout_s:g} s during {attempt.phase}",
            details={**base, "error_class": "timeout"},
        )
    if attempt.error is not None:
        if isinstance(attempt.error, UnknownNameError | ConfigError | KeyboardInterrupt):
            raise attempt.error
        return HealthReport(
            target=info.name,
            status="unhealthy",
            error=_error_text(attempt.error),
            details={**base, "phase": attempt.phase, "error_class": type(attempt.error).__name__},
        )
    assert attempt.report is not None  # the thread ended without an error
    attempt.report.details = {**base, **attempt.report.details}
    return attempt.report
