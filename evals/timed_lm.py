"""An lm-eval ``LM`` wrapper that times generation batches and reports progress.

lm-eval gives no per-sample timings. Timing a single request inside a batch is
not possible honestly, so we time **batches**: ``generate_until`` requests are
cut into the exact batches the wrapped HFLM would form itself (same sort key,
same grouping by generation kwargs, same size), each batch is handed to the
inner model on its own and timed, and every request in it gets the batch's wall
time together with the batch size. Because the batches are identical, the
generations are identical to an untimed run.

Loglikelihood requests are passed through in one call (lm-eval reorders and
batches them across documents, so per-document times would be meaningless).
Failures inside the model surface as :class:`BackendError` with one line.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lm_eval.api.model import LM

from gemmawatch.errors import BackendError, GemmawatchError, one_line

__all__ = ["BatchTiming", "TimedLM", "plan_batches"]

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BatchTiming:
    """Wall time of the generation batch one request ran in."""

    latency_s: float
    batch_size: int
    started_at: datetime


def _gen_kwargs_key(gen_kwargs: Any) -> str:
    # Equal kwargs dicts must land in one group, as in lm-eval's Collator.
    return json.dumps(gen_kwargs, sort_keys=True, default=str)


def plan_batches(
    requests: Sequence[Any], batch_size: int, token_len: Callable[[str], int]
) -> list[list[int]]:
    """Indices of ``requests`` per batch, in the order HFLM.generate_until runs them.

    HFLM groups by generation kwargs, sorts each group by (-context tokens,
    context) and slices it into ``batch_size`` chunks; we mirror that.
    """
    groups: dict[str, list[int]] = {}
    for i, req in enumerate(requests):
        groups.setdefault(_gen_kwargs_key(req.args[1]), []).append(i)
    batches: list[list[int]] = []
    size = max(1, batch_size)
    for members in groups.values():
        ordered = sorted(members, key=lambda i: (-token_len(requests[i].args[0]), requests[i].args[0]))
        batches += [ordered[k : k + size] for k in range(0, len(ordered), size)]
    return batches


class TimedLM(LM):
    """Delegates everything to ``inner``; times generate_until batches (see module docstring)."""

    def __init__(self, inner: LM, *, batch_size: int, progress: Progress | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.timing_batch_size = batch_size
        self.progress = progress or (lambda _msg: None)
        #: (task_name, doc_id) -> timing of the batch that request ran in.
        self.timings: dict[tuple[str, int], BatchTiming] = {}

    # Anything not defined here (tokenizer, config, get_model_info, tok_encode, ...)
    # comes from the wrapped model, so simple_evaluate's provenance stays the same.
    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (during unpickling): avoid infinite recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def rank(self) -> int:
        return int(self.inner.rank)

    @property
    def world_size(self) -> int:
        return int(self.inner.world_size)

    @property
    def device(self) -> Any:
        return self.inner.device

    @property
    def tokenizer_name(self) -> str:
        return str(self.inner.tokenizer_name)

    def chat_template(self, chat_template: bool | str = False) -> str | None:
        return self.inner.chat_template(chat_template)

    def apply_chat_template(self, chat_history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
        return str(self.inner.apply_chat_template(chat_history, add_generation_prompt=add_generation_prompt))

    def _run(self, method: str, requests: list[Any], **kwargs: Any) -> list[Any]:
        try:
            return list(getattr(self.inner, method)(requests, **kwargs))
        except GemmawatchError:
            raise
        except Exception as err:
            raise BackendError(
                one_line(
                    f"The model failed while answering {len(requests)} {method} requests: "
                    f"{type(err).__name__}: {err}. Fix: check the target loads and fits in memory, "
                    "or lower --batch-size."
                )
            ) from err

    def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
        self.progress(f"Scoring {len(requests)} loglikelihood requests (multiple-choice options)...")
        return self._run("loglikelihood", requests)

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        self.progress(f"Scoring {len(requests)} rolling-loglikelihood requests...")
        return self._run("loglikelihood_rolling", requests)

    def _token_len(self, text: str) -> int:
        encode = getattr(self.inner, "tok_encode", None)
        return len(encode(text)) if callable(encode) else len(text)

    def _quiet(self) -> dict[str, Any]:
        # One tqdm bar per batch is noise; HFLM (TemplateLM) accepts disable_tqdm, base LMs may not.
        params = inspect.signature(self.inner.generate_until).parameters
        return {"disable_tqdm": True} if "disable_tqdm" in params else {}

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        batch_size = getattr(self.inner, "batch_size", self.timing_batch_size)
        if not isinstance(batch_size, int):
            # "auto" batch sizes are decided inside HFLM; we cannot mirror them, so no timings.
            self.progress(f"Generating {len(requests)} answers...")
            return self._run("generate_until", requests)
        plan = plan_batches(requests, batch_size, self._token_len)
        out: list[Any] = [None] * len(requests)
        for number, indices in enumerate(plan, start=1):
            self.progress(f"Generating batch {number}/{len(plan)} ({len(indices)} prompts)...")
            started_at = datetime.now(UTC)
            t0 = time.perf_counter()
            answers = self._run("generate_until", [requests[i] for i in indices], **self._quiet())
            timing = BatchTiming(time.perf_counter() - t0, len(indices), started_at)
            for i, answer in zip(indices, answers, strict=True):
                out[i] = answer
                req = requests[i]
                if req.task_name is not None and req.doc_id is not None:
                    self.timings[(req.task_name, int(req.doc_id))] = timing
        return out
