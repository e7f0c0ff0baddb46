"""The in-process Hugging Face ``transformers`` backend (CPU or CUDA).

Model sources, by ``TargetInfo.model_id``:

* ``bundled:gemma-3-270m``: the bundled GGUF, converted once (see ``gemmawatch.collectors.bundled``);
* a local directory with a saved model;
* a hub name (``google/gemma-3-1b-it``), loaded from the local Hugging Face cache only:
  gemmawatch never downloads, so a missing model is a one-line BackendError with the fix.

Options (``TargetInfo.options``): ``device`` (auto|cpu|cuda[:N], default auto), ``dtype``
(if ``TargetInfo.dtype`` is unset; float32 on CPU and bfloat16 on CUDA by default),
``threads`` (``torch.set_num_threads``, process-wide; else ``$GEMMAWATCH_TORCH_THREADS``; else
torch's default), ``ll_batch_size`` (loglikelihood batch, default 8). Variants (``quantization``
4bit/8bit/int8, ``adapter``, ``attn_implementation``, ``compile``): see ``hf_variants``.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult, TargetInfo, streamed_result
from gemmawatch.collectors.backends.hf_generation import (
    RowStopper,
    TokenClock,
    encode_pair,
    loglikelihood_batch,
    trim_at_stop,
)
from gemmawatch.collectors.backends.hf_variants import (
    VariantPlan,
    apply_variants,
    from_pretrained_kwargs,
    model_bytes,
    moves_itself,
    plan_variants,
    quant_kind,
)
from gemmawatch.collectors.bundled import (
    BUNDLED_MODEL_ID,
    bundled_revision,
    converted_model_dir,
    set_offline_env,
)
from gemmawatch.errors import BackendError, one_line

if TYPE_CHECKING:
    from lm_eval.api.model import LM

log = logging.getLogger(__name__)

#: Environment fallback for the ``threads`` option.
THREADS_ENV = "GEMMAWATCH_TORCH_THREADS"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"Device '{name}' requested but CUDA is not available. Fix: use device=cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise BackendError(f"Unknown device '{name}'. Fix: use auto, cpu or cuda") from exc


def _source(info: TargetInfo) -> tuple[str, str | None]:
    """Where to load from, and the hub revision to ask for (None for local folders)."""
    if info.model_id == BUNDLED_MODEL_ID:
        return str(converted_model_dir(info.dtype)), None
    if info.model_id.startswith("bundled:"):
        raise BackendError(f"Unknown bundled model '{info.model_id}'. Fix: use {BUNDLED_MODEL_ID}")
    path = Path(info.model_id).expanduser()
    if path.exists():
        return str(path), None
    if info.model_id.startswith(("/", ".", "~")) or info.model_id.count("/") > 1:
        raise BackendError(f"Model path '{info.model_id}' does not exist. Fix: pass an existing model folder")
    return info.model_id, info.revision


def check_bos(tokenizer: Any) -> str | None:
    """None if the tokenizer adds ``<bos>`` exactly once (or has none); otherwise the problem."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None
    ids = tokenizer("x").input_ids
    if not ids or ids[0] != bos:
        return "the tokenizer does not add <bos>"
    if len(ids) > 1 and ids[1] == bos:
        return "the tokenizer adds <bos> twice"
    return None


def _one_bos(ids: list[int], bos: int) -> list[int]:
    start = 0
    while start < len(ids) and ids[start] == bos:
        start += 1
    return [bos, *ids[start:]]


class TransformersBackend:
    """A causal LM loaded once with ``transformers``; implements the Backend protocol."""

    def __init__(self, info: TargetInfo) -> None:
        set_offline_env()
        options = dict(info.options)
        device = str(options.get("device", "auto"))
        if device == "auto" and quant_kind(options.get("quantization", info.quantization)) == "int8":
            device = "cpu"  # torch dynamic int8 kernels are CPU-only
        self._device = _resolve_device(device)
        plan = plan_variants(info.quantization, options, self._device)
        dtype = info.dtype or options.get("dtype") or ("bfloat16" if self._device.type == "cuda" else "float32")
        if dtype not in DTYPES:
            raise BackendError(f"Unsupported dtype '{dtype}'. Fix: use one of {', '.join(DTYPES)}")
        threads = options.get("threads") or os.environ.get(THREADS_ENV)
        if threads:
            # Process-wide. On a small shared machine 1 thread beats contended defaults (~5x).
            torch.set_num_threads(int(threads))
        self.ll_batch_size = int(options.get("ll_batch_size", 8))
        source, revision = _source(info)
        start = time.perf_counter()
        self._tok, self._model = self._load(info.model_id, source, revision, DTYPES[dtype], plan)
        #: Seconds spent loading tokenizer and weights (conversion excluded).
        self.load_s = time.perf_counter() - start
        if self._tok.pad_token_id is None:
            self._tok.pad_token = self._tok.eos_token
        self._tok.padding_side = "left"
        self._bos_id: int | None = self._tok.bos_token_id
        #: Set when the tokenizer does not add <bos> exactly once (we then fix our own inputs).
        self.bos_warning = check_bos(self._tok)
        if self.bos_warning:
            log.warning(
                "BOS GUARD: for target '%s' %s; gemmawatch adds it to its own prompts, "
                "but other consumers of this tokenizer (lm-eval) may score garbage",
                info.name,
                self.bos_warning,
            )
            options["bos_warning"] = self.bos_warning
        revision_out = info.revision or (bundled_revision() if info.model_id == BUNDLED_MODEL_ID else None)
        if plan.adapter is not None:
            options["adapter"] = str(plan.adapter)  # absolute, so the stored target says which folder
        self.info = replace(
            info, dtype=dtype, revision=revision_out, quantization=plan.label(info.quantization), options=options
        )
        self._eos_ids = self._collect_eos_ids()

    def _load(
        self, model_id: str, source: str, revision: str | None, dtype: torch.dtype, plan: VariantPlan
    ) -> tuple[Any, Any]:
        kwargs: dict[str, Any] = {"local_files_only": True, **from_pretrained_kwargs(plan, self._device)}
        if revision:
            kwargs["revision"] = revision
        try:
            tok = AutoTokenizer.from_pretrained(source, **kwargs)
            model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **kwargs)
        except OSError as exc:
            if not Path(source).exists():
                raise BackendError(
                    f"Model '{model_id}' is not available offline. Fix: download it once with "
                    f"`huggingface-cli download {model_id}` or pass a local path"
                ) from exc
            raise BackendError(
                f"Could not load model '{model_id}': {one_line(str(exc))}. Fix: check the folder"
            ) from exc
        except (ValueError, KeyError) as exc:
            raise BackendError(
                f"Could not load model '{model_id}': {one_line(str(exc))}. Fix: use a causal LM that "
                "your transformers version supports"
            ) from exc
        if not moves_itself(plan):
            model.to(self._device)
        model.eval()
        return tok, apply_variants(model, plan)

    def _collect_eos_ids(self) -> set[int]:
        configured = self._model.generation_config.eos_token_id
        ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
        if self._tok.eos_token_id is not None:
            ids.add(self._tok.eos_token_id)
        return ids

    # -- encoding -----------------------------------------------------------------------

    def encode(self, request: GenerationRequest) -> list[int]:
        """Prompt token ids with exactly one leading ``<bos>`` (chat template applied once)."""
        tok = self._tok
        if request.is_chat:
            if not getattr(tok, "chat_template", None):
                raise BackendError(
                    f"Model '{self.info.model_id}' has no chat template. Fix: send plain prompts (chat=False)"
                )
            text = tok.apply_chat_template(request.messages(), tokenize=False, add_generation_prompt=True)
            # A template that renders <bos> itself must not get a second one from the tokenizer.
            templated_bos = bool(tok.bos_token) and text.startswith(tok.bos_token)
            ids = list(tok(text, add_special_tokens=not templated_bos).input_ids)
        else:
            ids = list(tok(str(request.prompt)).input_ids)
        if self._bos_id is not None and self.bos_warning:
            ids = _one_bos(ids, self._bos_id)
        return ids

    # -- generation ----------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest], *, batch_size: int = 8) -> list[GenerationResult]:
        """Batched generation; ``e2e_s`` of each request is the wall time of its whole batch.

        A caller of a batched API receives every answer when the batch ends, so that is
        the honest latency; per-token timing needs ``stream``. Requests are batched in
        order, split where the temperature changes (sampling settings are per batch).
        """
        results: list[GenerationResult | None] = [None] * len(requests)
        order = sorted(range(len(requests)), key=lambda i: (requests[i].temperature, i))
        batch: list[int] = []
        for index in order:
            if batch and (len(batch) >= batch_size or requests[batch[0]].temperature != requests[index].temperature):
                self._run_batch(requests, batch, results)
                batch = []
            batch.append(index)
        if batch:
            self._run_batch(requests, batch, results)
        return [r for r in results if r is not None]

    def _run_batch(
        self, requests: Sequence[GenerationRequest], indices: list[int], results: list[GenerationResult | None]
    ) -> None:
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        encoded: dict[int, list[int]] = {}
        for i in indices:
            try:
                encoded[i] = self.encode(requests[i])
            except Exception as exc:  # e.g. chat prompt without a template: fails this request only
                results[i] = self._failed(exc, started_at, time.perf_counter() - t0)
        live = [i for i in indices if i in encoded]
        if not live:
            return
        try:
            rows, stopper, generated = self._call_generate([requests[i] for i in live], [encoded[i] for i in live])
        except Exception as exc:  # OOM, runtime errors: recorded on each request of the batch
            log.warning("generation failed for a batch of %d: %s", len(live), one_line(str(exc)))
            for i in live:
                results[i] = self._failed(exc, started_at, time.perf_counter() - t0, len(encoded[i]))
            return
        texts = [
            self._finish_text(rows[k][: stopper.tokens_for(k, generated)], requests[i]) for k, i in enumerate(live)
        ]
        e2e = time.perf_counter() - t0
        for k, i in enumerate(live):
            results[i] = GenerationResult(
                text=texts[k],
                input_tokens=len(encoded[i]),
                output_tokens=stopper.tokens_for(k, generated),
                token_source="tokenizer",
                started_at=started_at,
                e2e_s=e2e,
            )

    def _call_generate(
        self, requests: Sequence[GenerationRequest], prompts: list[list[int]], streamer: TokenClock | None = None
    ) -> tuple[list[list[int]], RowStopper, int]:
        """Left-pad, generate, return (generated ids per row, stopper, steps run)."""
        batch = self._tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt")
        width = batch["input_ids"].shape[1]
        stopper = RowStopper(
            self._tok, width, [r.max_new_tokens for r in requests], [tuple(r.stop) for r in requests], self._eos_ids
        )
        temperature = requests[0].temperature
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}  # plain temperature sampling
            if temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        with torch.inference_mode():
            out = self._model.generate(
                input_ids=batch["input_ids"].to(self._device),
                attention_mask=batch["attention_mask"].to(self._device),
                max_new_tokens=max(r.max_new_tokens for r in requests),
                stopping_criteria=[stopper],
                pad_token_id=self._tok.pad_token_id,
                streamer=streamer,
                **sampling,
            )
        generated = out[:, width:].tolist()
        return generated, stopper, len(generated[0]) if generated else 0

    def _finish_text(self, ids: list[int], request: GenerationRequest) -> str:
        text = self._tok.decode(ids, skip_special_tokens=True)
        return trim_at_stop(text, request.stop)[0]

    def _failed(self, exc: BaseException, started_at: datetime, e2e: float, input_tokens: int = 0) -> GenerationResult:
        return GenerationResult(
            text="",
            input_tokens=input_tokens,
            output_tokens=0,
            token_source="tokenizer",
            started_at=started_at,
            e2e_s=e2e,
            error=one_line(str(exc)) or type(exc).__name__,
            error_class=type(exc).__name__,
        )

    def stream(self, request: GenerationRequest) -> GenerationResult:
        """One request, timed token by token (the clock starts before tokenization)."""
        started_at = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            ids = self.encode(request)
            clock = TokenClock()
            rows, stopper, generated = self._call_generate([request], [ids], streamer=clock)
        except Exception as exc:
            return self._failed(exc, started_at, time.perf_counter() - t0)
        n = stopper.tokens_for(0, generated)
        times = clock.times[:n]
        return streamed_result(
            text=self._finish_text(rows[0][:n], request),
            input_tokens=len(ids),
            output_tokens=n,
            token_source="tokenizer",
            started_at=started_at,
            t0=t0,
            arrivals=times,
            end=times[-1] if times else time.perf_counter(),
        )

    # -- scoring ----------------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[tuple[str, str]]) -> list[tuple[float, bool]]:
        """Sum of log-probabilities of each continuation and whether it is greedy (lm-eval rules)."""
        pairs = [encode_pair(self._tok, ctx, cont, self._bos_id) for ctx, cont in requests]
        if self.bos_warning and self._bos_id is not None:
            pairs = [(_one_bos(ids, self._bos_id), n) for ids, n in pairs]
        out: list[tuple[float, bool]] = []
        size = max(1, self.ll_batch_size)
        try:
            for start in range(0, len(pairs), size):
                out.extend(
                    loglikelihood_batch(self._model, pairs[start : start + size], self._tok.pad_token_id, self._device)
                )
        except RuntimeError as exc:
            raise BackendError(f"Scoring failed: {one_line(str(exc))}. Fix: lower ll_batch_size") from exc
        return out

    def lm_eval_model(self, *, batch_size: int = 8) -> LM:
        """lm-eval's HFLM around the loaded model and tokenizer (no second load)."""
        from lm_eval.models.huggingface import HFLM

        return HFLM(pretrained=self._model, tokenizer=self._tok, batch_size=batch_size, device=str(self._device))

    # -- resources ----------------------------------------------------------------------------

    @property
    def model(self) -> Any:
        """The loaded ``transformers`` model (shared with ``lm_eval_model``)."""
        return self._model

    @property
    def tokenizer(self) -> Any:
        """The loaded tokenizer."""
        return self._tok

    def memory_bytes(self) -> int | None:
        """Bytes of parameters plus buffers (weights only; see ``process_rss_bytes``)."""
        if self._model is None:
            return None
        return model_bytes(self._model)

    @staticmethod
    def process_rss_bytes() -> int:
        """Resident memory of this whole process (model, activations, Python, everything)."""
        import psutil

        return int(psutil.Process().memory_info().rss)

    def close(self) -> None:
        """Drop the model and free its memory."""
        self._model = None
        gc.collect()
        if self._device.type == "cuda":
            torch.cuda.empty_cache()
