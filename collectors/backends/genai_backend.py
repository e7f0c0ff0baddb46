"""Hosted Gemma through Google's official ``google-genai`` SDK (extra ``genai``).

Spec: ``genai:gemma-3-27b-it`` (Gemini API key) or, in a config file, ``vertexai: true``
with ``project``/``location`` (Vertex AI, Application Default Credentials).

Options (``TargetInfo.options``): ``api_key_env`` (the *name* of the environment variable
holding the key, default ``GEMINI_API_KEY``; the key itself is never stored, logged or
exported), ``vertexai``, ``project``, ``location``, ``base_url`` and ``api_version``
(default ``v1beta`` for the Gemini API; override both to use a gateway or a test server),
``timeout_s`` (per request, default 120), ``retries`` (extra attempts on 408/429/5xx,
default 0 so failures are measured, not hidden), ``concurrency`` (requests in flight in
``generate``, default 1).

Every request is streamed (``generate_content_stream``) so TTFT/ITL are real; token
counts come from ``usage_metadata``. The API always applies the model's chat template:
a plain prompt is sent as one user turn. Gemma on the Gemini API rejects system
instructions, so system messages are folded into the first user turn, exactly as
Gemma's own chat template does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pydantic
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo
from gemmawatch.collectors.backends.sdk_stream import StreamClock, run_requests, transport_error_class
from gemmawatch.errors import BackendError, UserError, one_line

if TYPE_CHECKING:
    from lm_eval.api.model import LM

log = logging.getLogger(__name__)

DEFAULT_KEY_ENV = "GEMINI_API_KEY"
DEFAULT_TIMEOUT_S = 120.0
GEMINI_URL = "https://generativelanguage.googleapis.com"
#: The Gemini API accepts at most five stop sequences; any further ones are applied client-side.
MAX_STOP_SEQUENCES = 5
_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


def to_contents(request: GenerationRequest) -> list[types.Content]:
    """The request as Gemini ``contents``: roles user/model, system text folded into the first user turn."""
    messages = request.messages()
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [("model" if m["role"] == "assistant" else "user", m["content"]) for m in messages if m["role"] != "system"]
    if system:
        first_user = next((i for i, (role, _) in enumerate(turns) if role == "user"), None)
        if first_user is None:
            turns.insert(0, ("user", system))
        else:
            turns[first_user] = ("user", f"{system}\n\n{turns[first_user][1]}")
    return [types.Content(role=role, parts=[types.Part(text=text)]) for role, text in turns]


def _chunk_text(chunk: types.GenerateContentResponse) -> str:
    """Answer text of one streamed chunk (thought parts of thinking models are not answer text)."""
    if not chunk.candidates or not chunk.candidates[0].content or not chunk.candidates[0].content.parts:
        return ""
    return "".join(p.text for p in chunk.candidates[0].content.parts if p.text and not p.thought)


class GenAIBackend:
    """A model hosted by Google (Gemini API or Vertex AI); implements the Backend protocol."""

    def __init__(self, info: TargetInfo) -> None:
        options = dict(info.options)
        self._model = info.model_id
        self._vertex = bool(options.get("vertexai", False))
        self._concurrency = max(1, int(options.get("concurrency", 1)))
        retries = int(options.get("retries", 0))
        api_version = options.get("api_version") or (None if self._vertex else "v1beta")
        http = types.HttpOptions(
            base_url=options.get("base_url"),
            api_version=api_version,
            timeout=int(float(options.get("timeout_s", DEFAULT_TIMEOUT_S)) * 1000),  # the SDK counts milliseconds
            retry_options=types.HttpRetryOptions(attempts=retries + 1) if retries > 0 else None,
        )
        self._redact: tuple[str, ...] = ()
        self._key_env = "Application Default Credentials"
        self._client = self._vertex_client(info, options, http) if self._vertex else self._key_client(options, http)
        self.base_url = str(options.get("base_url") or ("Vertex AI" if self._vertex else GEMINI_URL))
        model = self._get_model()
        for key, value in (
            ("display_name", model.display_name),
            ("input_token_limit", model.input_token_limit),
            ("output_token_limit", model.output_token_limit),
        ):
            if value is not None:
                options[key] = value
        self.info = replace(info, revision=model.version or info.revision, dtype=None, options=options)
        self._warm_up()

    def __repr__(self) -> str:
        return f"GenAIBackend(model={self._model!r}, base_url={self.base_url!r}, vertexai={self._vertex})"

    # -- authentication ---------------------------------------------------------------------

    def _key_client(self, options: dict[str, Any], http: types.HttpOptions) -> genai.Client:
        env_name = str(options.get("api_key_env") or DEFAULT_KEY_ENV)
        key = os.environ.get(env_name, "").strip()
        if not key:
            raise UserError(
                f"Environment variable {env_name} is not set. Fix: export it, or set vertexai: true with "
                "project/location"
            )
        self._redact = (key,)  # only to scrub it from error text; never stored anywhere else
        self._key_env = env_name
        return genai.Client(vertexai=False, api_key=key, http_options=http)

    def _vertex_client(self, info: TargetInfo, options: dict[str, Any], http: types.HttpOptions) -> genai.Client:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            credentials, adc_project = google.auth.default(scopes=_SCOPES)
        except DefaultCredentialsError as exc:
            raise UserError(
                f"No Google Cloud credentials for Vertex AI target '{info.name}' ({one_line(str(exc))[:160]}). "
                "Fix: run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS to a key file"
            ) from exc
        project = options.get("project") or os.environ.get("GOOGLE_CLOUD_PROJECT") or adc_project
        if not project:
            raise UserError(
                f"Vertex AI target '{info.name}' has no project. Fix: set project (and location) in its options "
                "or export GOOGLE_CLOUD_PROJECT"
            )
        location = options.get("location") or os.environ.get("GOOGLE_CLOUD_LOCATION") or "global"
        return genai.Client(
            vertexai=True, project=str(project), location=str(location), credentials=credentials, http_options=http
        )

    def _scrub(self, text: str) -> str:
        for secret in self._redact:
            text = text.replace(secret, "***")
        return one_line(text)

    def _get_model(self) -> types.Model:
        """Model metadata (``models.get``); also proves the endpoint, the credentials and the name."""
        try:
            return self._client.models.get(model=self._model)
        except genai_errors.APIError as exc:
            detail = self._scrub(f"HTTP {exc.code} {exc.status or ''}: {exc.message or ''}")
            if exc.code == 404:
                raise BackendError(
                    f"Model {self._model} not found on Google GenAI at {self.base_url} ({detail}). "
                    "Fix: use a served model name such as gemma-3-27b-it"
                ) from exc
            if exc.code in (400, 401, 403):
                raise BackendError(
                    f"Google GenAI at {self.base_url} rejected the credentials from {self._key_env} ({detail}). "
                    f"Fix: check {self._key_env} and that it may use {self._model}"
                ) from exc
            raise BackendError(
                f"Google GenAI at {self.base_url} failed to describe {self._model} ({detail}). Fix: retry later"
            ) from exc
        except Exception as exc:
            kind = transport_error_class(exc)
            if kind is None:
                raise
            why = "timed out" if kind == "timeout" else "connection failed"
            raise BackendError(
                f"Cannot reach Google GenAI at {self.base_url} ({why}). "
                "Fix: check network access, or the base_url option of the target"
            ) from exc

    def _warm_up(self) -> None:
        """Build the SDK's lazily-built pydantic schemas now, not inside the first request's TTFT.

        Without this the first streamed request of a process pays ~0.3 s (more on a busy
        machine) between the first chunk's arrival and its delivery. The calls mirror the
        SDK's own request and response path; they are private, so a change there only
        costs the warm-up, never the backend.
        """
        request = GenerationRequest([{"role": "user", "content": ""}], stop=("x",))
        event: dict[str, object] = {
            "candidates": [{"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
        }
        try:
            config = self._config(request)
            types._GenerateContentParameters(model=self._model, contents=to_contents(request), config=config)
            types.GenerateContentResponse._from_response(response=event, kwargs={})
        except Exception as exc:  # pragma: no cover - depends on SDK internals
            log.debug("google-genai warm-up skipped: %s", exc)

    # -- generation -------------------------------------------------------------------------

    def _config(self, request: GenerationRequest) -> types.GenerateContentConfig:
        stop = [s for s in request.stop if s][:MAX_STOP_SEQUENCES]
        return types.GenerateContentConfig(
            temperature=request.temperature,
            max_output_tokens=request.max_new_tokens,
            stop_sequences=stop or None,
            candidate_count=1,
            # One request per measurement: no silent follow-up requests.
            automatic_continuation=False,
        )

    def stream(self, request: GenerationRequest) -> GenerationResult:
        """One streamed request; failures come back as results with ``error_class``."""
        clock = StreamClock()
        usage: types.GenerateContentResponseUsageMetadata | None = None
        finished = False
        try:
            contents = to_contents(request)
            for chunk in self._client.models.generate_content_stream(
                model=self._model, contents=contents, config=self._config(request)
            ):
                clock.add(_chunk_text(chunk))
                usage = chunk.usage_metadata or usage
                candidate = chunk.candidates[0] if chunk.candidates else None
                # A blocked prompt ends with prompt_feedback and no candidate: a complete (empty) answer.
                blocked = chunk.prompt_feedback is not None and chunk.prompt_feedback.block_reason is not None
                finished = finished or blocked or bool(candidate and candidate.finish_reason)
        except genai_errors.APIError as exc:
            return clock.fail(
                f"http_{exc.code}", self._scrub(f"Google GenAI HTTP {exc.code} {exc.status or ''}: {exc.message}")
            )
        except genai_errors.UnknownApiResponseError as exc:
            return clock.fail("invalid_json", self._scrub(f"Google GenAI sent unparsable data: {exc}")[:300])
        except pydantic.ValidationError as exc:
            return clock.fail("invalid_response", self._scrub(f"Google GenAI sent an unexpected event: {exc}")[:300])
        except Exception as exc:  # every failure is a result, never an exception (Backend contract)
            error_class = transport_error_class(exc) or type(exc).__name__
            return clock.fail(error_class, self._scrub(f"Google GenAI at {self.base_url}: {type(exc).__name__}: {exc}"))
        if not finished:
            return clock.fail(
                "stream_cut", f"Google GenAI stream ended without a finish reason after {clock.chunks} chunks"
            )
        if usage is None or usage.candidates_token_count is None:
            # No usage report: count streamed chunks, and say so.
            return clock.finish(input_tokens=0, output_tokens=clock.chunks, token_source="chunks", stop=request.stop)
        return clock.finish(
            input_tokens=usage.prompt_token_count or 0,
            # Thinking tokens are generated (and billed) too; Gemma reports none.
            output_tokens=usage.candidates_token_count + (usage.thoughts_token_count or 0),
            token_source="server",
            stop=request.stop,
        )

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        """Each request streamed; ``concurrency`` caps requests in flight."""
        return run_requests(self.stream, requests, self._concurrency)

    # -- scoring and lm-eval -------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """Not available: the Gemini API returns no prompt log-probabilities."""
        raise BackendError(
            f"The Google GenAI API does not return prompt log-probabilities, so target '{self.info.name}' cannot "
            "score loglikelihood (multiple-choice) tasks. Fix: run generation tasks (e.g. smoke_gen) on it"
        )

    def lm_eval_model(self, *, batch_size: int = 8) -> LM:
        """lm-eval's view of this backend (generate_until only; loglikelihood raises as above)."""
        from gemmawatch.evals.lm_eval_adapter import BackendLM

        return BackendLM(self, batch_size=batch_size)

    # -- resources ------------------------------------------------------------------------------

    def memory_bytes(self) -> int | None:
        """Unknown: the model runs on Google's servers."""
        return None

    def close(self) -> None:
        """Close the SDK's HTTP connections."""
        self._client.close()
