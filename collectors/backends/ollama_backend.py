"""Ollama's native API through the official ``ollama`` SDK (extra ``ollama``).

Spec: ``ollama:gemma3:4b[@http://127.0.0.1:11434][?num_ctx=8192&keep_alive=5m]``.
Options (``TargetInfo.options``): ``base_url`` (default ``http://127.0.0.1:11434``),
``timeout_s`` (per request, default 120), ``num_ctx``, ``keep_alive``, ``seed``,
``raw`` (send plain prompts untemplated; default false: Ollama applies the model's
template, as ``ollama run`` does), ``concurrency`` (requests in flight in ``generate``,
default 1).

Plain prompts go to ``/api/generate``, chat prompts to ``/api/chat``, always streamed so
TTFT and ITL are real. Token counts are the server's (``prompt_eval_count``,
``eval_count``). ``/api/show`` (and ``/api/tags`` for the digest) fill the TargetInfo at
load time: quantization level, parameter size, family and format.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
import ollama
import pydantic

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo
from gemmawatch.collectors.backends.sdk_stream import StreamClock, run_requests, transport_error_class
from gemmawatch.errors import BackendError, one_line

if TYPE_CHECKING:
    from lm_eval.api.model import LM

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:11434"
DEFAULT_TIMEOUT_S = 120.0


def _tagged(name: str) -> str:
    """Ollama's implicit ``:latest`` tag, so ``gemma3`` and ``gemma3:latest`` compare equal."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


class OllamaBackend:
    """A model served by Ollama; implements the Backend protocol over its native API."""

    def __init__(self, info: TargetInfo) -> None:
        options = dict(info.options)
        self.base_url = str(options.get("base_url") or DEFAULT_URL).rstrip("/")
        self._timeout_s = float(options.get("timeout_s", DEFAULT_TIMEOUT_S))
        self._raw = bool(options.get("raw", False))
        self._concurrency = max(1, int(options.get("concurrency", 1)))
        self._load_options = {k: options[k] for k in ("num_ctx", "seed") if options.get(k) is not None}
        self._keep_alive = options.get("keep_alive")
        self._model = info.model_id
        self._client = ollama.Client(host=self.base_url, timeout=self._timeout_s)
        show = self._show()
        details = show.details
        for key in ("parameter_size", "family", "format"):
            value = getattr(details, key, None)
            if value:
                options[key] = value
        quantization = getattr(details, "quantization_level", None)
        if quantization and info.quantization and info.quantization != quantization:
            log.warning(
                "target '%s' says quantization %s but Ollama reports %s; using Ollama's",
                info.name,
                info.quantization,
                quantization,
            )
        self.info = replace(
            info,
            revision=self._digest() or info.revision,
            dtype=None,  # Ollama serves GGUF quantizations; there is no torch dtype to report
            quantization=quantization or info.quantization,
            options=options,
        )

    def __repr__(self) -> str:
        return f"OllamaBackend(model={self._model!r}, base_url={self.base_url!r})"

    # -- load-time metadata -----------------------------------------------------------------

    def _show(self) -> ollama.ShowResponse:
        try:
            return self._client.show(self._model)
        except ollama.ResponseError as exc:
            if exc.status_code == 404:
                raise BackendError(
                    f"Model {self._model} not found on ollama at {self.base_url}. Fix: ollama pull {self._model}"
                ) from exc
            raise BackendError(
                f"Ollama at {self.base_url} answered /api/show with HTTP {exc.status_code}: {one_line(exc.error)}. "
                "Fix: check the Ollama server log"
            ) from exc
        except Exception as exc:
            kind = transport_error_class(exc)
            if kind is None:
                raise
            why = "timed out" if kind == "timeout" else "connection failed"
            raise BackendError(
                f"Cannot reach Ollama at {self.base_url} ({why}). "
                "Fix: is `ollama serve` running? Otherwise correct the URL after @ in the target"
            ) from exc

    def _digest(self) -> str | None:
        """The model's digest from /api/tags (``/api/show`` has none); None when unlisted."""
        try:
            listed = self._client.list().models
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, pydantic.ValidationError):
            return None
        wanted = _tagged(self._model)
        return next((m.digest for m in listed if m.model and _tagged(m.model) == wanted and m.digest), None)

    # -- generation -------------------------------------------------------------------------

    def _options(self, request: GenerationRequest) -> dict[str, Any]:
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "num_predict": request.max_new_tokens,
            **self._load_options,
        }
        if request.stop:
            options["stop"] = list(request.stop)
        return options

    def _chunks(self, request: GenerationRequest) -> Iterator[tuple[str | None, Any]]:
        """(text, response) per streamed line; the HTTP request is sent on first iteration."""
        options = self._options(request)
        if request.is_chat:
            for part in self._client.chat(
                self._model, request.messages(), stream=True, options=options, keep_alive=self._keep_alive
            ):
                yield part.message.content, part
        else:
            for gen in self._client.generate(
                self._model,
                str(request.prompt),
                stream=True,
                raw=self._raw,
                options=options,
                keep_alive=self._keep_alive,
            ):
                yield gen.response, gen

    def stream(self, request: GenerationRequest) -> GenerationResult:
        """One streamed request; failures come back as results with ``error_class``."""
        clock = StreamClock()
        endpoint = "/api/chat" if request.is_chat else "/api/generate"
        try:
            final = None
            for text, part in self._chunks(request):
                clock.add(text)
                if part.done:
                    final = part
        except ollama.ResponseError as exc:
            # status_code -1: an {"error": ...} line inside a 200 stream.
            error_class = f"http_{exc.status_code}" if exc.status_code > 0 else "stream_error"
            return clock.fail(error_class, f"Ollama {endpoint} failed: {exc.error} (HTTP {exc.status_code})")
        except pydantic.ValidationError as exc:
            return clock.fail("invalid_response", f"Ollama {endpoint} sent an unexpected line: {exc}")
        except Exception as exc:  # every failure is a result, never an exception (Backend contract)
            error_class = transport_error_class(exc) or type(exc).__name__
            return clock.fail(error_class, f"Ollama {endpoint} at {self.base_url}: {type(exc).__name__}: {exc}")
        if final is None:
            return clock.fail(
                "stream_cut", f"Ollama {endpoint} stream ended without done=true after {clock.chunks} chunks"
            )
        counted = final.eval_count is not None
        return clock.finish(
            input_tokens=final.prompt_eval_count or 0,
            output_tokens=final.eval_count if counted else clock.chunks,
            token_source="server" if counted else "chunks",
            stop=request.stop,
        )

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        """Each request streamed (Ollama batches on its side); ``concurrency`` caps requests in flight."""
        return run_requests(self.stream, requests, self._concurrency)

    # -- scoring and lm-eval -------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """Not available: Ollama returns no prompt log-probabilities."""
        raise BackendError(
            f"Ollama does not return prompt log-probabilities, so target '{self.info.name}' cannot score "
            "loglikelihood (multiple-choice) tasks. Fix: run generation tasks (e.g. smoke_gen) on it, or serve the "
            "same GGUF with the llamacpp backend for multiple-choice tasks"
        )

    def lm_eval_model(self, *, batch_size: int = 8) -> LM:
        """lm-eval's view of this backend (generate_until only; loglikelihood raises as above)."""
        from gemmawatch.evals.lm_eval_adapter import BackendLM

        return BackendLM(self, batch_size=batch_size)

    # -- resources ------------------------------------------------------------------------------

    def memory_bytes(self) -> int | None:
        """Memory Ollama reports for the loaded model (/api/ps: VRAM if any, else total); None if not loaded."""
        try:
            running = self._client.ps().models
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, pydantic.ValidationError) as exc:
            log.debug("ollama /api/ps failed: %s", exc)
            return None
        wanted = _tagged(self._model)
        for entry in running:
            if _tagged(entry.model or entry.name or "") == wanted:
                size = entry.size_vram or entry.size
                return int(size) if size else None
        return None

    def close(self) -> None:
        """Close the HTTP connection pool (the model stays loaded in Ollama)."""
        self._client.close()
