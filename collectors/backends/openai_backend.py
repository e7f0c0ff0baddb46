"""Any OpenAI-compatible HTTP server (vLLM, llama.cpp server, Ollama's /v1, TGI, LM Studio...).

Spec: ``openai:MODEL@BASE_URL[?key=value...]``, e.g. ``openai:gemma3-270m@http://127.0.0.1:8012/v1``.
``MODEL`` is the name the server knows the model by. Options (``TargetInfo.options``):

* ``base_url`` (required; from ``@BASE_URL``): ``http(s)://`` URL, usually ending in ``/v1``.
* ``api``: ``completions`` (default; plain prompts, loglikelihood possible) or ``chat``
  (messages; the server applies its chat template, so gemmawatch cannot see the BOS).
* ``api_key_env``: NAME of the environment variable holding the key, sent as a Bearer
  token. The key itself is read per request and never stored, logged or exported.
* ``timeout_s`` (60: longest wait for any byte), ``connect_timeout_s`` (10).
* ``max_retries`` (3), ``backoff_base_s`` (0.5), ``backoff_max_s`` (8), ``retry_after_max_s`` (30):
  exponential backoff with jitter on 429/5xx/connection errors; ``Retry-After`` honoured up to the cap.
* ``max_concurrency`` (4): requests in flight in ``generate``/``loglikelihood``/lm-eval.
* ``tokenizer``: local Hugging Face tokenizer folder (``bundled`` = the bundled Gemma's) used to
  count tokens when the server sends no usage, and by lm-eval for loglikelihood tasks.
* ``extra_body``: dict (or JSON text) merged into every generation request body.
* ``include_usage`` (true): ask for usage in the stream (``stream_options``); switch off for
  servers that reject the field.

Every request streams, so TTFT/ITL/TPOT are measured for each one (``base.py`` definitions,
timed from the first attempt, so retry waits count as the user would feel them). A token
"arrives" with the first chunk carrying output text. Token counts come from the server's
usage (``token_source="server"``), else the tokenizer (``"tokenizer"``), else the number of
output chunks (``"chunks"``; input tokens 0). Per-request failures never raise: they come back
with ``error_class`` ``timeout``, ``connection``, ``http_<status>``, ``stream_cut``,
``invalid_json`` or ``stream_error``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx

from gemmawatch.collectors.backends.base import (
    GenerationRequest,
    GenerationResult,
    TargetInfo,
    TokenSource,
    tpot,
)
from gemmawatch.collectors.backends.http_common import (
    EnvBearerAuth,
    RequestFailure,
    StreamTimer,
    call_with_retries,
    classify_exception,
    iter_sse,
    map_concurrently,
    status_failure,
)
from gemmawatch.collectors.backends.openai_options import OpenAIOptions, load_tokenizer
from gemmawatch.collectors.backends.openai_wire import (
    NoPromptLogprobs,
    chunk_error,
    chunk_finish_reason,
    chunk_text,
    chunk_usage,
    continuation_logprob,
    endpoint,
    generation_payload,
    leading_bos,
    loglikelihood_payload,
)
from gemmawatch.errors import BackendError, one_line

if TYPE_CHECKING:
    from lm_eval.api.model import LM

log = logging.getLogger(__name__)


class OpenAIBackend:
    """A model behind an OpenAI-compatible HTTP API; implements the Backend protocol."""

    def __init__(self, info: TargetInfo) -> None:
        self._name = info.name
        self.options = opts = OpenAIOptions.from_info(info)
        self.base_url, self.api, self.model = opts.base_url, opts.api, info.model_id
        self.timeout_s, self.max_concurrency, self.retry = opts.timeout_s, opts.max_concurrency, opts.retry
        self._auth = EnvBearerAuth(opts.api_key_env) if opts.api_key_env else None
        self._tok: Any = load_tokenizer(opts.tokenizer) if opts.tokenizer else None
        self._client = httpx.Client(
            timeout=httpx.Timeout(opts.timeout_s, connect=opts.connect_timeout_s),
            auth=self._auth,
            limits=httpx.Limits(
                max_connections=opts.max_concurrency + 2, max_keepalive_connections=opts.max_concurrency
            ),
            follow_redirects=True,
        )
        self._lock = threading.Lock()
        #: Retries made so far (all requests); a flaky server shows here at a glance.
        self.retries = 0
        self._bos_warned = False
        #: Model names the server listed at construction (empty if it has no /models).
        self.served_models = self._check_server()
        self.info = replace(info, options={**info.options, "base_url": self.base_url, "api": self.api})

    def __repr__(self) -> str:
        return f"OpenAIBackend(name={self._name!r}, model={self.model!r}, base_url={self.base_url!r}, api={self.api!r})"

    # -- construction-time check -------------------------------------------------------

    def _redact(self, text: str) -> str:
        return self._auth.redact(text) if self._auth else text

    def _status_failure(self, resp: httpx.Response) -> RequestFailure:
        """The failure for an HTTP error response whose body has been read."""
        body = resp.content.decode("utf-8", errors="replace")
        return status_failure(resp.status_code, self._redact(body), retry_after=resp.headers.get("retry-after"))

    def _check_server(self) -> list[str]:
        """GET /models: unreachable -> BackendError; auth refused -> BackendError; model missing -> warning."""
        url = f"{self.base_url}/models"
        try:
            resp = self._client.get(url)
        except httpx.HTTPError as exc:
            self._client.close()
            raise BackendError(
                f"Cannot reach the OpenAI-compatible server at {url} ({type(exc).__name__}). "
                "Fix: start the server or correct the base URL (it usually ends in /v1)"
            ) from exc
        if resp.status_code in (401, 403):
            self._client.close()
            raise BackendError(
                f"The server at {url} refused the request (HTTP {resp.status_code}). "
                "Fix: set api_key_env to the variable holding a valid API key"
            )
        if resp.status_code >= 400:
            log.warning(
                "GET %s answered HTTP %d; cannot check that model '%s' is served", url, resp.status_code, self.model
            )
            return []
        try:
            ids = [str(m.get("id")) for m in resp.json().get("data", []) if isinstance(m, Mapping)]
        except (ValueError, AttributeError):
            log.warning("GET %s did not return a model list; cannot check model '%s'", url, self.model)
            return []
        if self.model not in ids:
            # Servers often alias (llama.cpp serves any name); a warning, not an error.
            log.warning(
                "Model '%s' is not in the server's list (%s); sending requests anyway",
                self.model,
                ", ".join(ids) or "empty",
            )
        return ids

    # -- generation ------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        """Stream every request, ``max_concurrency`` at a time (the server batches; ``batch_size`` is unused)."""
        return map_concurrently(self.stream, list(requests), self.max_concurrency)

    def stream(self, request: GenerationRequest) -> GenerationResult:
        """One streamed request with TTFT/ITL/TPOT; failures come back as results, never raised."""
        timer = StreamTimer()
        api = self._api(request)
        try:
            payload = self._payload(request, api)
            parts, usage = call_with_retries(
                lambda: self._stream_once(api, payload, timer),
                self.retry,
                what=f"POST {self._url(api)}",
                on_retry=self._count_retry,
            )
        except RequestFailure as failure:
            return self._failed(timer, failure.error_class, self._redact(str(failure)))
        except Exception as exc:  # a bug or an unexpected library error must not end the run
            log.debug("unexpected failure", exc_info=True)
            return self._failed(timer, type(exc).__name__, self._redact(one_line(f"{type(exc).__name__}: {exc}")))
        text = "".join(parts)
        input_tokens, output_tokens, source = self._count(request, api, text, len(parts), usage)
        ttft = timer.ttft_s
        e2e = timer.e2e_s
        return GenerationResult(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            token_source=source,
            started_at=timer.started_at,
            ttft_s=ttft,
            e2e_s=e2e,
            itl_s=timer.itl_s,
            tpot_s=tpot(e2e, ttft, output_tokens),
        )

    def _api(self, request: GenerationRequest) -> str:
        # A chat request (messages, or chat=True) always goes to the chat endpoint.
        return "chat" if self.api == "chat" or request.is_chat else "completions"

    def _url(self, api: str) -> str:
        return self.base_url + endpoint(api)

    def _count_retry(self, _failure: RequestFailure) -> None:
        with self._lock:
            self.retries += 1

    def _payload(self, request: GenerationRequest, api: str) -> dict[str, Any]:
        if api == "completions" and leading_bos(request.prompt) and not self._bos_warned:
            self._bos_warned = True
            log.warning(
                "BOS GUARD: target '%s': a prompt starts with a literal <bos>; the server adds its own, so Gemma "
                "may see two",
                self._name,
            )
        return generation_payload(
            self.model, request, api=api, include_usage=self.options.include_usage, extra_body=self.options.extra_body
        )

    def _stream_once(
        self, api: str, payload: dict[str, Any], timer: StreamTimer
    ) -> tuple[list[str], tuple[int, int] | None]:
        """One attempt: (output text pieces, server usage). Raises RequestFailure."""
        parts: list[str] = []
        usage: tuple[int, int] | None = None
        try:
            with self._client.stream("POST", self._url(api), json=payload) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._status_failure(resp)
                if "text/event-stream" not in resp.headers.get("content-type", ""):
                    return self._whole_body(api, resp, timer)  # the server ignored stream=True
                finished = False
                for event in iter_sse(resp.iter_lines()):
                    if event.data.strip() == "[DONE]":
                        finished = True
                        break
                    data = self._event_json(event.data, event.terminated)
                    if (message := chunk_error(data)) is not None:
                        raise RequestFailure("stream_error", f"server error in stream: {self._redact(message)[:200]}")
                    if text := chunk_text(data, api):
                        timer.token()
                        parts.append(text)
                    usage = chunk_usage(data) or usage
                    finished = finished or chunk_finish_reason(data) is not None
                timer.finish()
        except httpx.HTTPError as exc:
            raise classify_exception(exc, output_started=bool(parts)) from exc
        if not finished:
            raise RequestFailure("stream_cut", f"stream ended without [DONE] or finish_reason ({len(parts)} chunks)")
        return parts, usage

    @staticmethod
    def _event_json(data: str, terminated: bool) -> dict[str, Any]:
        try:
            parsed = json.loads(data)
        except ValueError as exc:
            if not terminated:  # the connection closed in the middle of an event
                raise RequestFailure("stream_cut", "stream ended in the middle of an event") from exc
            raise RequestFailure("invalid_json", f"invalid JSON in stream: {one_line(data)[:120]!r}") from exc
        if not isinstance(parsed, dict):
            raise RequestFailure("invalid_json", f"stream chunk is not a JSON object: {one_line(data)[:120]!r}")
        return parsed

    def _whole_body(
        self, api: str, resp: httpx.Response, timer: StreamTimer
    ) -> tuple[list[str], tuple[int, int] | None]:
        body = resp.read()
        timer.finish()
        data = self._event_json(body.decode("utf-8", errors="replace"), True)
        text = chunk_text(data, api)
        # No token timestamps: nothing was observed token by token, so TTFT/ITL/TPOT stay None.
        return ([text] if text else []), chunk_usage(data)

    def _count(
        self, request: GenerationRequest, api: str, text: str, chunks: int, usage: tuple[int, int] | None
    ) -> tuple[int, int, TokenSource]:
        if usage is not None:
            return usage[0], usage[1], "server"
        if self._tok is not None:
            output = len(self._tok(text, add_special_tokens=False).input_ids)
            return self._prompt_tokens(request, api), output, "tokenizer"
        # Last resort: one streamed chunk is one token on llama.cpp/vLLM; recorded as such.
        return 0, chunks, "chunks"

    def _prompt_tokens(self, request: GenerationRequest, api: str) -> int:
        tok = self._tok
        if api == "chat" and getattr(tok, "chat_template", None):
            rendered = tok.apply_chat_template(request.messages(), tokenize=False, add_generation_prompt=True)
            templated_bos = bool(tok.bos_token) and rendered.startswith(tok.bos_token)
            return len(tok(rendered, add_special_tokens=not templated_bos).input_ids)
        prompt = request.prompt if isinstance(request.prompt, str) else "\n".join(m["content"] for m in request.prompt)
        return len(tok(prompt).input_ids)

    def _failed(self, timer: StreamTimer, error_class: str, message: str) -> GenerationResult:
        timer.finish()
        return GenerationResult(
            text="",
            input_tokens=0,
            output_tokens=0,
            token_source="server",
            started_at=timer.started_at,
            e2e_s=timer.e2e_s,
            error=message or error_class,
            error_class=error_class,
        )

    # -- scoring -----------------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """Score via ``/completions`` with ``echo`` + ``logprobs`` (BackendError if the server cannot)."""
        return map_concurrently(self._score, list(requests), self.max_concurrency)

    def _score(self, pair: tuple[str, str]) -> tuple[float, bool]:
        context, continuation = pair
        url = f"{self.base_url}/completions"
        payload = loglikelihood_payload(self.model, context, continuation)

        def attempt() -> dict[str, Any]:
            try:
                resp = self._client.post(url, json=payload)
            except httpx.HTTPError as exc:
                raise classify_exception(exc) from exc
            if resp.status_code >= 400:
                raise self._status_failure(resp)
            return self._event_json(resp.text, True)

        try:
            response = call_with_retries(attempt, self.retry, what=f"POST {url}", on_retry=self._count_retry)
            return continuation_logprob(response, context, continuation)
        except RequestFailure as failure:
            raise BackendError(
                f"Scoring request to {url} failed ({failure.error_class}: {self._redact(str(failure))[:200]}). "
                "Fix: check the server is up and accepts echo/logprobs"
            ) from failure
        except NoPromptLogprobs as exc:
            raise BackendError(
                f"Server at {self.base_url} does not return prompt logprobs ({exc}), so loglikelihood "
                "(multiple-choice) tasks cannot run on it. Fix: use generation tasks or a server with "
                "echo+logprobs (llama.cpp server, vLLM)"
            ) from exc

    def lm_eval_model(self, *, batch_size: int = 8) -> LM:
        """lm-eval's own ``local-completions`` / ``local-chat-completions`` pointed at this server.

        See :mod:`gemmawatch.collectors.backends.openai_lm_eval` for what works where.
        """
        from gemmawatch.collectors.backends.openai_lm_eval import build_lm

        return build_lm(self, batch_size=batch_size)

    @property
    def tokenizer(self) -> Any:
        """The local tokenizer from the ``tokenizer`` option, or None."""
        return self._tok

    @property
    def api_key_env(self) -> str | None:
        """Name of the environment variable holding the API key (never the key)."""
        return self._auth.env_name if self._auth else None

    def memory_bytes(self) -> int | None:
        """Unknown: the model lives in another process."""
        return None

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()
