"""llama.cpp in this process, through ``llama-cpp-python``: any GGUF, the bundled Gemma by default.

``TargetInfo.model_id`` is a path to a ``.gguf`` file or ``bundled:gemma-3-270m``
(the bundled Gemma 3 270M Q4_K_M). Options: ``n_threads`` (alias ``threads``; also
used for prompt processing), ``n_ctx`` (default 2048), ``n_gpu_layers`` (default 0),
``seed``, ``n_batch``, ``verbose`` (llama.cpp's own logging, default off).

After loading, ``info.dtype`` is ``"gguf"``, ``info.quantization`` comes from the
GGUF metadata (``general.file_type``, e.g. ``Q4_K_M``; else the file name) and
``info.revision`` is the file's sha256 prefix.

Prompts are tokenized here, with exactly one ``<bos>``, and handed to llama.cpp as
token ids (so llama-cpp-python adds nothing). Chat prompts are rendered with the
GGUF's own chat template, or Gemma's turn format for Gemma files without one
(the bundled GGUF has none); a template that writes ``<bos>`` itself is not given
a second one. Any prompt that still starts with two ``<bos>`` is repaired with a
loud ``BOS GUARD`` warning.

Timing (``stream``) follows vLLM's benchmark on ``create_completion(stream=True)``:
TTFT = first chunk with text - send, ITL = gaps between text chunks, E2E = send ->
last chunk, TPOT from the contract formula. llama-cpp-python holds back text that
could be the start of a stop string, so with stop strings a chunk can carry
several tokens. ``output_tokens`` counts every sampled token, EOS and stop-string
tokens included (llama's own usage omits the EOS token); ``token_source`` is
``"tokenizer"`` (llama.cpp's tokenizer, in process).

Scoring (``loglikelihood``) evaluates the context once and then one position at a
time, reading the logits llama.cpp keeps for the last position; the KV cache is
reused across requests that share a prefix (multiple-choice options), so no
``logits_all`` buffer (n_ctx x 262k floats for Gemma) is ever allocated.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo, streamed_result
from gemmawatch.collectors.backends.llamacpp_support import (
    RequestError,
    failed_result,
    file_revision,
    import_llama_cpp,
    log_softmax_at,
    quantization_name,
    render_chat,
    resolve_gguf,
)
from gemmawatch.collectors.bundled import BUNDLED_MODEL_ID, GEMMA_CHAT_TEMPLATE, bundled_revision
from gemmawatch.errors import BackendError, one_line

if TYPE_CHECKING:
    import llama_cpp
    from lm_eval.api.model import LM

log = logging.getLogger(__name__)

DEFAULT_N_CTX = 2048
_KNOWN_OPTIONS = {"n_threads", "threads", "n_ctx", "n_gpu_layers", "seed", "n_batch", "verbose", "bos_warning"}


class LlamaCppBackend:
    """A GGUF model loaded once with ``llama_cpp.Llama``; implements the Backend protocol.

    llama.cpp runs one sequence at a time here, so ``generate`` answers requests one
    after another and each ``e2e_s`` is that request's own wall time.
    """

    def __init__(self, info: TargetInfo) -> None:
        self._lib = import_llama_cpp()
        options = dict(info.options)
        unknown = sorted(set(options) - _KNOWN_OPTIONS)
        if unknown:
            log.warning("llamacpp target '%s': ignoring unknown options %s", info.name, ", ".join(unknown))
        path = resolve_gguf(info.model_id)
        self.path = path
        self.n_ctx = int(options.get("n_ctx", DEFAULT_N_CTX))
        kwargs: dict[str, Any] = {
            "model_path": str(path),
            "n_ctx": self.n_ctx,
            "n_gpu_layers": int(options.get("n_gpu_layers", 0)),
            "verbose": bool(options.get("verbose", False)),
        }
        threads = options.get("n_threads", options.get("threads"))
        if threads:
            kwargs["n_threads"] = kwargs["n_threads_batch"] = int(threads)
        if options.get("seed") is not None:
            kwargs["seed"] = int(options["seed"])
        if options.get("n_batch"):
            kwargs["n_batch"] = int(options["n_batch"])
        start = time.perf_counter()
        chatter = io.StringIO()
        try:
            # llama.cpp prints some load notes to Python's stderr even when not verbose; keep them out.
            with contextlib.redirect_stderr(chatter) if not kwargs["verbose"] else contextlib.nullcontext():
                self._llm: llama_cpp.Llama | None = self._lib.Llama(**kwargs)
        except (ValueError, RuntimeError, OSError) as exc:
            log.debug("llama.cpp load output: %s", chatter.getvalue())
            raise BackendError(
                f"llama.cpp could not load '{path}': {one_line(str(exc))}. Fix: check that the file is a GGUF "
                "this llama-cpp-python version supports"
            ) from exc
        #: Seconds spent loading the GGUF.
        self.load_s = time.perf_counter() - start
        llm = self.llm
        self.metadata: dict[str, str] = dict(llm.metadata)
        self._bos = int(llm.token_bos())
        self._bos_text = self._piece(self._bos) if self._bos >= 0 else ""
        self._eos_text = self._piece(int(llm.token_eos())) if llm.token_eos() >= 0 else ""
        self._chat_template = self._pick_chat_template()
        #: Set when llama.cpp does not add ``<bos>`` exactly once itself (we then fix our own inputs).
        self.bos_warning = self._check_bos()
        if self.bos_warning:
            log.warning("BOS GUARD: for target '%s' %s; gemmawatch fixes its own prompts", info.name, self.bos_warning)
            options["bos_warning"] = self.bos_warning
        revision = bundled_revision() if info.model_id == BUNDLED_MODEL_ID else info.revision or file_revision(path)
        self.info = replace(
            info,
            dtype="gguf",
            quantization=quantization_name(self.metadata, path) or info.quantization,
            revision=revision,
            options=options,
        )

    @property
    def llm(self) -> llama_cpp.Llama:
        """The loaded ``llama_cpp.Llama`` (raises after ``close``)."""
        if self._llm is None:
            raise BackendError("This llamacpp backend is closed. Fix: load the target again")
        return self._llm

    # -- tokens ------------------------------------------------------------------------------

    def _piece(self, token: int) -> str:
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def _check_bos(self) -> str | None:
        if self._bos < 0:
            return None
        ids = self.llm.tokenize(b"x", add_bos=True, special=True)
        if not ids or ids[0] != self._bos:
            return "llama.cpp does not add <bos> for this GGUF (tokenizer.ggml.add_bos_token is false)"
        if len(ids) > 1 and ids[1] == self._bos:
            return "llama.cpp adds <bos> twice"
        return None

    def _one_bos(self, ids: list[int], what: str) -> list[int]:
        """Exactly one leading ``<bos>``; a prompt that brought its own is repaired loudly."""
        if self._bos < 0:
            return ids
        start = 0
        while start < len(ids) and ids[start] == self._bos:
            start += 1
        if start > 1:
            log.warning(
                "BOS GUARD: %s for target '%s' starts with %d <bos> tokens (its text or chat template already "
                "has <bos>); gemmawatch keeps one",
                what,
                self.info.name,
                start,
            )
        return [self._bos, *ids[start:]]

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain ``text`` as a prompt: one ``<bos>``, special tokens parsed (as in transformers)."""
        return self._one_bos(self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=True), "a prompt")

    def _pick_chat_template(self) -> str | None:
        template = self.metadata.get("tokenizer.chat_template")
        if template:
            return template
        if self.metadata.get("general.architecture", "").startswith("gemma"):
            return GEMMA_CHAT_TEMPLATE  # Gemma GGUFs without a template (the bundled one)
        return None

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The chat prompt text (template applied once, generation prompt added)."""
        if self._chat_template is None:
            raise BackendError(f"GGUF '{self.path.name}' has no chat template. Fix: send plain prompts (chat=False)")
        return render_chat(self._chat_template, messages, bos_token=self._bos_text, eos_token=self._eos_text)

    def encode(self, request: GenerationRequest) -> list[int]:
        """Prompt token ids with exactly one leading ``<bos>`` (chat template applied once)."""
        if not request.is_chat:
            return self.tokenize(str(request.prompt))
        text = self.render_chat(request.messages())
        templated_bos = bool(self._bos_text) and text.startswith(self._bos_text)
        ids = self.llm.tokenize(text.encode("utf-8"), add_bos=not templated_bos, special=True)
        return self._one_bos(ids, "a chat prompt")

    # -- generation --------------------------------------------------------------------------

    @staticmethod
    def _sampling(request: GenerationRequest) -> dict[str, Any]:
        if request.temperature <= 0:
            return {"temperature": 0.0, "repeat_penalty": 1.0}  # llama.cpp's greedy sampler
        # Plain temperature sampling, as the transformers backend: no top-k/top-p/min-p cut-offs.
        return {
            "temperature": request.temperature,
            "top_k": 0,
            "top_p": 1.0,
            "min_p": 0.0,
            "typical_p": 1.0,
            "repeat_penalty": 1.0,
        }

    def _completion(self, ids: list[int], request: GenerationRequest, *, stream: bool) -> Any:
        if len(ids) >= self.n_ctx:
            raise RequestError(
                "context_length",
                f"prompt of {len(ids)} tokens does not fit n_ctx={self.n_ctx}; raise the n_ctx option",
            )
        return self.llm.create_completion(
            prompt=ids,
            max_tokens=request.max_new_tokens,
            stop=list(request.stop) or None,
            stream=stream,
            **self._sampling(request),
        )

    def _sampled(self, ids: list[int]) -> int:
        # create_completion evaluates every sampled token except the last one (EOS, the token that
        # completed a stop string, or the max_tokens-th), so the cache holds prompt + sampled - 1.
        return int(self.llm.n_tokens) - len(ids) + 1

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        """Answer requests one after another (``batch_size`` is accepted for the protocol and unused)."""
        return [self._run(request, stream=False) for request in requests]

    def stream(self, request: GenerationRequest) -> GenerationResult:
        """One request through llama-cpp-python's streaming API, timed chunk by chunk."""
        return self._run(request, stream=True)

    def _run(self, request: GenerationRequest, *, stream: bool) -> GenerationResult:
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()  # the clock starts before tokenization, as in the other backends
        ids: list[int] = []
        try:
            ids = self.encode(request)
            if request.max_new_tokens <= 0:  # llama-cpp-python reads max_tokens <= 0 as "until n_ctx"
                return GenerationResult("", len(ids), 0, "tokenizer", started_at, e2e_s=time.perf_counter() - t0)
            if not stream:
                out = self._completion(ids, request, stream=False)
                e2e = time.perf_counter() - t0
                return GenerationResult(
                    text=str(out["choices"][0]["text"]),
                    input_tokens=len(ids),
                    output_tokens=self._sampled(ids),
                    token_source="tokenizer",
                    started_at=started_at,
                    e2e_s=e2e,
                )
            chunks = cast(Iterator[dict[str, Any]], self._completion(ids, request, stream=True))
            pieces, times, last = self._consume(chunks)
        except RequestError as exc:
            return failed_result(exc.error_class, str(exc), started_at, time.perf_counter() - t0, len(ids))
        except Exception as exc:  # a failing request never raises out of generate/stream
            return failed_result(type(exc).__name__, one_line(str(exc)), started_at, time.perf_counter() - t0, len(ids))
        return streamed_result(
            text="".join(pieces),
            input_tokens=len(ids),
            output_tokens=self._sampled(ids),
            token_source="tokenizer",
            started_at=started_at,
            t0=t0,
            arrivals=times,
            end=last,
        )

    @staticmethod
    def _consume(chunks: Iterator[dict[str, Any]]) -> tuple[list[str], list[float], float]:
        """Text pieces, arrival times of the chunks that carry text, and the time of the last chunk."""
        pieces: list[str] = []
        times: list[float] = []
        last = time.perf_counter()
        for chunk in chunks:
            last = time.perf_counter()
            text = chunk["choices"][0].get("text") or ""
            if text:
                times.append(last)
                pieces.append(text)
        return pieces, times, last

    # -- scoring -----------------------------------------------------------------------------

    def _encode_pair(self, context: str, continuation: str) -> tuple[list[int], int]:
        """Ids of context + continuation and the continuation's length (mirrors lm-eval's HFLM)."""
        n_spaces = len(context) - len(context.rstrip(" "))
        if n_spaces:
            continuation = context[-n_spaces:] + continuation
            context = context[:-n_spaces]
        if not context:
            cont = self.llm.tokenize(continuation.encode("utf-8"), add_bos=False, special=True)
            # The first token needs something to condition on: <bos>, else EOS (lm-eval's prefix token).
            prefix = [self._bos] if self._bos >= 0 else [int(self.llm.token_eos())]
            return prefix + cont, len(cont)
        whole = self.tokenize(context + continuation)
        return whole, len(whole) - len(self.tokenize(context))

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """Sum of log-probabilities of each continuation and whether it is greedy (lm-eval rules).

        Inputs longer than ``n_ctx`` lose context tokens from the left, as in HFLM.
        """
        out: list[tuple[float, bool]] = []
        for context, continuation in requests:
            ids, n = self._encode_pair(context, continuation)
            if n == 0:
                out.append((0.0, True))
                continue
            if n >= self.n_ctx:
                raise BackendError(
                    f"A continuation of {n} tokens does not fit n_ctx={self.n_ctx}. Fix: raise the n_ctx option"
                )
            try:
                out.append(self._score(ids[-self.n_ctx :], n))
            except (RuntimeError, ValueError) as exc:
                raise BackendError(f"Scoring failed: {one_line(str(exc))}. Fix: check n_ctx and n_batch") from exc
        return out

    def _score(self, ids: list[int], n: int) -> tuple[float, bool]:
        llm = self.llm
        first = len(ids) - n  # position of the first continuation token
        prefix = ids[: first - 1]  # evaluated without reading logits
        reuse = 0
        for cached, wanted in zip(llm.input_ids[: llm.n_tokens].tolist(), prefix, strict=False):
            if cached != wanted:
                break
            reuse += 1
        memory = self._lib.llama_get_memory(llm.ctx)
        if reuse and not self._lib.llama_memory_seq_rm(memory, -1, reuse, -1):
            reuse = 0  # this cache cannot drop a suffix: evaluate from scratch
        llm.n_tokens = reuse
        if reuse < len(prefix):
            llm.eval(prefix[reuse:])
        total, greedy = 0.0, True
        vocab = int(llm.n_vocab())
        for pos in range(first - 1, len(ids) - 1):
            llm.eval([ids[pos]])
            pointer = self._lib.llama_get_logits_ith(llm.ctx, -1)
            logits = np.ctypeslib.as_array(cast(Any, ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float))), (vocab,))
            logprob, is_top = log_softmax_at(logits, ids[pos + 1])
            total += logprob
            greedy = greedy and is_top
        return total, greedy

    # -- lm-eval and resources ------------------------------------------------------------------

    def lm_eval_model(self, *, batch_size: int = 8) -> LM:
        """gemmawatch's generic lm-eval adapter around this loaded model (no second load)."""
        from gemmawatch.evals.lm_eval_adapter import BackendLM

        return BackendLM(self, batch_size)

    def memory_bytes(self) -> int | None:
        """Bytes of the model's tensors (llama_model_size; the KV cache is not included)."""
        if self._llm is None:
            return None
        return int(self._lib.llama_model_size(self._llm.model))

    def close(self) -> None:
        """Free the model and its context."""
        if self._llm is not None:
            self._llm.close()
            self._llm = None
