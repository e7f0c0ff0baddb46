"""One lm-eval ``LM`` for every gemmawatch backend: ``BackendLM(backend, batch_size)``.

lm-eval talks to models through three request types; each is mapped onto the
Backend protocol, so any backend (llama.cpp, OpenAI-compatible HTTP, Ollama,
Google GenAI...) runs any lm-eval task it can support:

* ``loglikelihood``: ``req.args == (context, continuation)`` goes to
  ``backend.loglikelihood`` unchanged. lm-eval's convention is kept: the space
  between the two belongs to the continuation (``("The capital of France is",
  " Paris")``); the backend moves trailing context spaces onto the continuation.
  An empty continuation scores ``(0.0, True)`` without asking the backend (the
  probability of nothing is 1, and nothing is trivially the greedy choice).
* ``loglikelihood_rolling``: ``req.args == (text,)`` is scored as
  ``backend.loglikelihood([("", text)])``: the whole document after ``<bos>``
  alone, in one window. Documents longer than the backend's context fail with
  the backend's own error (no rolling windows: the protocol has no tokenizer).
* ``generate_until``: ``req.args == (context, gen_kwargs)`` becomes a
  :class:`GenerationRequest`: ``until`` (a string or a list) -> ``stop``,
  ``max_gen_toks`` (default 256, lm-eval's HFLM default) -> ``max_new_tokens``,
  ``temperature`` (default 0) with ``do_sample: false`` forcing greedy and
  ``do_sample: true`` without a temperature meaning 1.0. Other keys (``top_p``,
  ``top_k``...) are not part of the protocol: they are ignored with a warning.

A backend that cannot score text raises ``NotImplementedError``; it is re-raised
with the backend's name and the fix. A generation that fails (timeout, HTTP
error) is recorded in :attr:`BackendLM.failures`, logged, and scored as an empty
answer so the run completes; when every request of a call fails the run stops
with a :class:`BackendError` (a score over nothing but failures means nothing).

Registered in lm-eval's model registry as ``"gemmawatch"``, so
``simple_evaluate(model="gemmawatch", model_args="target=NAME_OR_SPEC")`` loads
the target itself (specs with ``,`` in them need a config target name).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from lm_eval.api.model import LM

from gemmawatch.collectors.backends.base import GenerationRequest, GenerationResult
from gemmawatch.errors import BackendError, UserError, one_line

if TYPE_CHECKING:
    from gemmawatch.collectors.backends.base import Backend

__all__ = ["DEFAULT_MAX_GEN_TOKS", "LM_EVAL_NAME", "BackendLM", "generation_request"]

log = logging.getLogger(__name__)

#: The name this adapter has in lm-eval's model registry.
LM_EVAL_NAME = "gemmawatch"
#: lm-eval's HFLM default for ``max_gen_toks``.
DEFAULT_MAX_GEN_TOKS = 256
# Keys of lm-eval's gen_kwargs this adapter understands (others are ignored with a warning).
_KNOWN_GEN_KEYS = {"until", "max_gen_toks", "temperature", "do_sample"}


def _stop_strings(until: Any) -> tuple[str, ...]:
    if until is None:
        return ()
    if isinstance(until, str):
        return (until,)
    if isinstance(until, (list, tuple)) and all(isinstance(s, str) for s in until):
        return tuple(s for s in until if s)
    raise UserError(f"gen_kwargs 'until' must be a string or a list of strings, got {until!r}. Fix: correct the task")


def generation_request(context: str, gen_kwargs: dict[str, Any] | None) -> tuple[GenerationRequest, list[str]]:
    """The GenerationRequest for one ``generate_until`` request, and the gen_kwargs keys ignored."""
    kwargs = dict(gen_kwargs or {})
    do_sample = kwargs.get("do_sample")
    temperature = kwargs.get("temperature")
    if do_sample is False:
        temperature = 0.0
    elif temperature is None:
        temperature = 1.0 if do_sample else 0.0
    max_new = kwargs.get("max_gen_toks")
    request = GenerationRequest(
        prompt=context,
        max_new_tokens=int(max_new) if max_new is not None else DEFAULT_MAX_GEN_TOKS,
        stop=_stop_strings(kwargs.get("until")),
        temperature=float(temperature),
    )
    return request, sorted(k for k in kwargs if k not in _KNOWN_GEN_KEYS)


class BackendLM(LM):
    """lm-eval's ``LM`` interface on top of an already loaded gemmawatch Backend.

    ``backend`` is used as is (never reloaded, never closed here). ``batch_size`` is
    handed to ``backend.generate``. Without ``backend``, ``target`` (a target name
    or spec) is loaded, which is what lm-eval's registry path
    (``model="gemmawatch"``) uses; such a backend is owned and closed by ``close``.
    """

    #: Token ids of a text; set only when the backend has ``tokenize`` (display counts, batch order).
    tok_encode: Callable[[str], list[int]]

    def __init__(
        self,
        backend: Backend | None = None,
        batch_size: int | str | None = 8,
        *,
        target: str | None = None,
        **_lm_eval_extras: Any,  # lm-eval passes max_batch_size/device; they mean nothing here
    ) -> None:
        super().__init__()
        self._owns_backend = backend is None
        if backend is None:
            if not target:
                raise UserError("BackendLM needs a backend or a target. Fix: pass model_args='target=NAME_OR_SPEC'")
            from gemmawatch.collectors.targets import load_backend, resolve_target

            backend = load_backend(resolve_target(str(target)))
        self.backend: Backend = backend
        # "auto" is HFLM's memory probe; a backend batches as it can, so use the default.
        text = str(batch_size)
        self.batch_size = batch_size if isinstance(batch_size, int) else int(text) if text.isdigit() else 8
        #: Generation failures so far: task, doc_id, error_class, error (answers were scored as "").
        self.failures: list[dict[str, Any]] = []
        self._warned_keys: set[str] = set()
        tokenize = getattr(backend, "tokenize", None)
        if callable(tokenize):
            # Only when the backend can tokenize: TimedLM probes getattr(lm, "tok_encode").
            self.tok_encode = lambda text: list(tokenize(text))

    # -- identity -----------------------------------------------------------------------

    @property
    def backend_name(self) -> str:
        """``backend:model_id`` of the wrapped target, for messages."""
        info = self.backend.info
        return f"{info.backend}:{info.model_id}"

    def get_model_info(self) -> dict[str, Any]:
        """Provenance lm-eval copies into ``results["config"]``."""
        info = self.backend.info
        return {
            "model_backend": info.backend,
            "model_id": info.model_id,
            "model_revision": info.revision,
            "model_dtype": info.dtype,
            "model_quantization": info.quantization,
        }

    # -- scoring ------------------------------------------------------------------------

    def _not_supported(self, what: str, exc: NotImplementedError) -> NotImplementedError:
        detail = f": {one_line(str(exc))}" if str(exc) else ""
        return NotImplementedError(
            f"Backend {self.backend_name} cannot compute {what}{detail}. Fix: use generate_until tasks with this "
            "target, or a backend that scores text (transformers, llamacpp, or a server returning prompt logprobs)"
        )

    def _score(self, pairs: Sequence[tuple[str, str]], what: str) -> list[tuple[float, bool]]:
        try:
            scored = list(self.backend.loglikelihood(pairs))
        except NotImplementedError as exc:
            raise self._not_supported(what, exc) from exc
        if len(scored) != len(pairs):
            raise BackendError(
                f"Backend {self.backend_name} returned {len(scored)} scores for {len(pairs)} requests. "
                "Fix: report this backend bug"
            )
        return [(float(lp), bool(greedy)) for lp, greedy in scored]

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        """``(log P(continuation | context), is_greedy)`` per request, in order."""
        pairs = [(str(req.args[0]), str(req.args[1])) for req in requests]
        asked = [i for i, (_, cont) in enumerate(pairs) if cont]
        out: list[tuple[float, bool]] = [(0.0, True)] * len(pairs)  # empty continuations
        if asked:
            for i, result in zip(asked, self._score([pairs[i] for i in asked], "loglikelihood"), strict=True):
                out[i] = result
        for req, result in zip(requests, out, strict=True):
            self.cache_hook.add_partial("loglikelihood", req.args, result)
        return out

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """Log-likelihood of each whole document after ``<bos>`` (one window; see module docstring)."""
        texts = [str(req.args[0]) for req in requests]
        asked = [i for i, text in enumerate(texts) if text]
        out = [0.0] * len(texts)
        if asked:
            scored = self._score([("", texts[i]) for i in asked], "loglikelihood_rolling (perplexity)")
            for i, (lp, _) in zip(asked, scored, strict=True):
                out[i] = lp
        for req, value in zip(requests, out, strict=True):
            self.cache_hook.add_partial("loglikelihood_rolling", req.args, value)
        return out

    # -- generation ---------------------------------------------------------------------

    def _warn_ignored(self, keys: list[str]) -> None:
        new = [k for k in keys if k not in self._warned_keys]
        if new:
            self._warned_keys.update(new)
            log.warning("gen_kwargs %s are not supported by gemmawatch backends and are ignored", ", ".join(new))

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Generated text per request (stop strings removed), in order."""
        if not requests:
            return []
        built: list[GenerationRequest] = []
        for req in requests:
            context, gen_kwargs = req.args[0], (req.args[1] if len(req.args) > 1 else {})
            request, ignored = generation_request(str(context), gen_kwargs)
            self._warn_ignored(ignored)
            built.append(request)
        results = self.backend.generate(built, batch_size=self.batch_size)
        if len(results) != len(built):
            raise BackendError(
                f"Backend {self.backend_name} returned {len(results)} answers for {len(built)} requests. "
                "Fix: report this backend bug"
            )
        self._record_failures(requests, results)
        texts = [r.text if r.ok else "" for r in results]
        for req, text in zip(requests, texts, strict=True):
            self.cache_hook.add_partial("generate_until", req.args, text)
        return texts

    def _record_failures(self, requests: list[Any], results: list[GenerationResult]) -> None:
        failed = [(req, r) for req, r in zip(requests, results, strict=True) if not r.ok]
        if not failed:
            return
        for req, r in failed:
            self.failures.append(
                {
                    "task": getattr(req, "task_name", None),
                    "doc_id": getattr(req, "doc_id", None),
                    "error_class": r.error_class,
                    "error": r.error,
                }
            )
        first = failed[0][1]
        if len(failed) == len(results):
            raise BackendError(
                f"All {len(results)} generations failed on {self.backend_name}: "
                f"{first.error_class}: {one_line(first.error or '')}. Fix: check the target with "
                "`gemmawatch targets check`"
            )
        log.warning(
            "%d of %d generations failed on %s (first: %s: %s); they are scored as empty answers",
            len(failed),
            len(results),
            self.backend_name,
            first.error_class,
            one_line(first.error or ""),
        )

    def close(self) -> None:
        """Close the backend if this adapter loaded it (``target=``); a passed-in backend stays open."""
        if self._owns_backend:
            self.backend.close()


def _register() -> None:
    """Put BackendLM in lm-eval's model registry once (re-imports keep the first class)."""
    from lm_eval.api.registry import model_registry, register_model

    current = model_registry.get(LM_EVAL_NAME, None)
    if current is None:
        register_model(LM_EVAL_NAME)(BackendLM)
    elif getattr(current, "__qualname__", None) != BackendLM.__qualname__:
        log.warning("lm-eval model name '%s' is taken by %r; BackendLM is not registered", LM_EVAL_NAME, current)


_register()
