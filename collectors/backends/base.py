"""The backend interface: what a model target is, what we ask it, and what it returns.

Latency fields follow vLLM's benchmark definitions so figures are comparable:

* E2E  = from the moment the request is handed to the backend to its last token.
* TTFT = from that moment to the first output token.
* ITL  = the gaps between consecutive output tokens (``output_tokens - 1`` values).
* TPOT = ``(E2E - TTFT) / (output_tokens - 1)``; ``None`` with fewer than two tokens.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from gemmawatch.errors import one_line

if TYPE_CHECKING:
    from lm_eval.api.model import LM

#: How ``input_tokens``/``output_tokens`` were counted: the server's usage report, the model's own
#: tokenizer, or, as a last resort for streams without usage and no local tokenizer, the number of
#: streamed content chunks.
TokenSource = Literal["tokenizer", "server", "chunks"]
#: A chat prompt: ``[{"role": "user", "content": "..."}, ...]`` (roles: system, user, assistant).
Messages = list[dict[str, str]]


@dataclass(frozen=True)
class TargetInfo:
    """A model target: which backend serves which model, with which settings.

    ``options`` holds backend-specific settings (``device``, ``threads``, ``base_url``...).
    It is copied into a plain dict (JSON- and pickle-friendly; treat it as read-only) and
    excluded from hashing so a TargetInfo can still key a dict.
    """

    name: str
    backend: str
    model_id: str
    revision: str | None = None
    dtype: str | None = None
    quantization: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", dict(self.options))  # never alias the caller's mapping


@dataclass
class GenerationRequest:
    """One generation request.

    * ``prompt`` as a string is sent verbatim (the backend adds ``<bos>`` itself) unless
      ``chat`` is true, in which case it becomes one user message. A message list is always
      a chat prompt. Chat prompts go through the model's chat template exactly once, and
      the rendered text is never given a second ``<bos>``.
    * ``stop``: the text is cut before the first occurrence of any stop string; the stop
      string itself is not returned. Generation ends at the first stop string, EOS or
      ``max_new_tokens``, whichever comes first.
    * ``temperature`` 0 means greedy decoding (deterministic).
    """

    prompt: str | Messages
    max_new_tokens: int = 64
    stop: Sequence[str] = ()
    temperature: float = 0.0
    chat: bool = False

    @property
    def is_chat(self) -> bool:
        """True when the chat template must be applied."""
        return self.chat or not isinstance(self.prompt, str)

    def messages(self) -> Messages:
        """The prompt as a message list (a plain string becomes one user turn)."""
        if isinstance(self.prompt, str):
            return [{"role": "user", "content": self.prompt}]
        return list(self.prompt)


@dataclass
class GenerationResult:
    """The outcome of one request; failures are results too (``error`` set, ``text`` empty).

    * ``output_tokens`` counts every token the model generated for this request,
      including the EOS token or the tokens that completed a stop string (they cost
      compute even though the text does not show them). An empty ``text`` with
      ``error`` None is a genuine empty answer (e.g. EOS as the first token).
    * ``started_at`` is the UTC time the request was handed to the backend.
    * ``ttft_s``/``itl_s``/``tpot_s`` are only filled where tokens were observed one by
      one (``Backend.stream``); batched ``generate`` reports ``e2e_s`` only.
    """

    text: str
    input_tokens: int
    output_tokens: int
    token_source: TokenSource
    started_at: datetime
    ttft_s: float | None = None
    e2e_s: float = 0.0
    itl_s: list[float] = field(default_factory=list)
    tpot_s: float | None = None
    error: str | None = None
    error_class: str | None = None

    @property
    def ok(self) -> bool:
        """True when the request did not fail."""
        return self.error is None

    def sample_columns(self) -> dict[str, Any]:
        """The timing, token and error columns of a stored sample (timings only for a request that succeeded)."""
        ok = self.ok
        return {
            "latency_s": self.e2e_s if ok else None,
            "ttft_s": self.ttft_s if ok else None,
            "tpot_s": self.tpot_s if ok else None,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "token_source": self.token_source,
            "error": None if ok else one_line(f"{self.error_class or 'Error'}: {self.error}"),
            "started_at": self.started_at,
        }


def tpot(e2e_s: float, ttft_s: float | None, output_tokens: int) -> float | None:
    """Time per output token after the first (vLLM's TPOT); None with < 2 tokens or no TTFT."""
    if ttft_s is None or output_tokens < 2:
        return None
    return (e2e_s - ttft_s) / (output_tokens - 1)


def streamed_result(
    *,
    text: str,
    input_tokens: int,
    output_tokens: int,
    token_source: TokenSource,
    started_at: datetime,
    t0: float,
    arrivals: Sequence[float],
    end: float,
) -> GenerationResult:
    """A successful streamed request, timed by the vLLM definitions.

    ``t0`` is the send time, ``arrivals`` the ``time.perf_counter()`` of each chunk
    that carried text and ``end`` the last byte: TTFT = first arrival − send,
    ITL = gaps between arrivals, E2E = end − send, TPOT via :func:`tpot`.
    """
    ttft = arrivals[0] - t0 if arrivals else None
    e2e = end - t0
    return GenerationResult(
        text=text,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        token_source=token_source,
        started_at=started_at,
        ttft_s=ttft,
        e2e_s=e2e,
        itl_s=[b - a for a, b in zip(arrivals, arrivals[1:], strict=False)],
        tpot_s=tpot(e2e, ttft, output_tokens),
    )


@runtime_checkable
class Backend(Protocol):
    """A loaded model that gemmawatch can benchmark.

    Implementations are built from a TargetInfo (``BACKENDS.get(name)(info)``) and hold
    the model until ``close``.
    """

    info: TargetInfo

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        """Answer ``requests`` (in order), batching where the backend can.

        A failure in one batch (out of memory, a runtime error) is recorded on that
        batch's results (``error``, ``error_class``); it never aborts other batches.
        """
        ...

    def stream(self, request: GenerationRequest) -> GenerationResult:
        """Answer one request token by token, measuring real TTFT, ITL and TPOT."""
        ...

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """For each ``(context, continuation)``: log P(continuation | context), and whether
        the continuation is the greedy (argmax) continuation.

        lm-eval's convention: the separating space belongs to the continuation
        (``("The capital of France is", " Paris")``); trailing spaces on the context are
        moved onto the continuation. An empty context is scored after ``<bos>`` alone.
        """
        ...

    def lm_eval_model(self, *, batch_size: int = 8) -> LM:
        """lm-eval's own LM class wrapping the *already loaded* model (never a second load)."""
        ...

    def memory_bytes(self) -> int | None:
        """Bytes held by the model's parameters and buffers (None when unknown, e.g. remote)."""
        ...

    def close(self) -> None:
        """Release the model; the backend must not be used afterwards."""
        ...


class BackendFactory(Protocol):
    """Callable that loads a backend for a TargetInfo (usually the backend class itself)."""

    def __call__(self, info: TargetInfo) -> Backend: ...
