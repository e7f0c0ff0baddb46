"""Helpers for driving ``transformers`` generation: per-row stopping and token timing.

Kept apart from the backend class so the backend reads as "load, encode, call,
package results" while the fiddly per-step logic lives (and is tested) here.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import torch
from transformers import StoppingCriteria
from transformers.generation.streamers import BaseStreamer


def trim_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string; return (text, whether one was found)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class RowStopper(StoppingCriteria):
    """Stops each row of a batch on its own EOS, stop strings or ``max_new_tokens``.

    ``transformers`` pads rows that are done until the whole batch finishes, so the
    only reliable per-row token count is the step at which the row finished, which
    this criterion records in ``finished_at`` (number of generated tokens, inclusive).
    """

    def __init__(
        self,
        tokenizer: Any,
        prompt_len: int,
        max_new: Sequence[int],
        stops: Sequence[Sequence[str]],
        eos_ids: set[int],
    ) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.max_new = list(max_new)
        self.stops = [tuple(s for s in row if s) for row in stops]
        self.eos_ids = eos_ids
        self.finished_at: list[int | None] = [None] * len(self.max_new)
        # Enough trailing tokens to contain the longest stop string (a token is >= 1 char,
        # except special tokens, which decode to nothing and are never part of a stop).
        self._window = max((len(s) for row in self.stops for s in row), default=0) + 2

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        step = input_ids.shape[1] - self.prompt_len
        done = []
        for row, finished in enumerate(self.finished_at):
            if finished is None and self._row_done(input_ids[row], row, step):
                self.finished_at[row] = step
            done.append(self.finished_at[row] is not None)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]

    def _row_done(self, ids: torch.Tensor, row: int, step: int) -> bool:
        if int(ids[-1]) in self.eos_ids or step >= self.max_new[row]:
            return True
        if not self.stops[row]:
            return False
        tail = ids[max(self.prompt_len, ids.shape[0] - self._window) :].tolist()
        text = self.tokenizer.decode(tail, skip_special_tokens=True)
        return any(s in text for s in self.stops[row])

    def tokens_for(self, row: int, generated: int) -> int:
        """Tokens row ``row`` produced, given ``generated`` steps for the whole batch."""
        finished = self.finished_at[row]
        return generated if finished is None else min(finished, generated)


class TokenClock(BaseStreamer):
    """A streamer that timestamps each generated token (``time.perf_counter``).

    ``generate`` first hands the prompt to ``put`` (ignored), then one tensor per
    step; ``value.tolist()`` forces a device sync, so on CUDA the stamp is the time
    the token really exists on the host.
    """

    def __init__(self) -> None:
        self.times: list[float] = []
        self.tokens: list[int] = []
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        """Record one step's token (after skipping the prompt)."""
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        self.tokens.extend(int(t) for t in value.reshape(-1).tolist())
        self.times.append(time.perf_counter())

    def end(self) -> None:
        """Nothing to flush; required by the streamer protocol."""


def encode_pair(tokenizer: Any, context: str, continuation: str, bos_id: int | None) -> tuple[list[int], int]:
    """Token ids of ``context + continuation`` and how many trailing ids are the continuation.

    Mirrors lm-eval's HFLM: trailing spaces move from context to continuation, the
    whole string is tokenized once (so merges across the boundary match what the
    model would see), and the continuation is what follows the context's tokens.
    An empty context is replaced by ``<bos>`` alone.
    """
    n_spaces = len(context) - len(context.rstrip(" "))
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    if not context:
        cont = tokenizer(continuation, add_special_tokens=False).input_ids
        prefix = [bos_id] if bos_id is not None else []
        return prefix + list(cont), len(cont)
    whole = list(tokenizer(context + continuation).input_ids)
    ctx = list(tokenizer(context).input_ids)
    return whole, len(whole) - len(ctx)


def loglikelihood_batch(
    model: Any, batch: Sequence[tuple[list[int], int]], pad_id: int, device: torch.device
) -> list[tuple[float, bool]]:
    """Score one batch of (ids, continuation length) with a single forward pass.

    Rows are left-padded so every continuation ends at the last position; then only the
    last ``max_cont + 1`` logits are materialised (the 262k-token vocabulary makes full
    logits for a batch cost gigabytes).
    """
    width = max(len(ids) for ids, _ in batch)
    max_cont = max(n for _, n in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (ids, _) in enumerate(batch):
        input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: positions start at the first real token
    with torch.inference_mode():
        out = model(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            logits_to_keep=max_cont + 1,
        )
    logprobs = torch.log_softmax(out.logits[:, :-1].float(), dim=-1).cpu()  # [B, max_cont, V]
    results: list[tuple[float, bool]] = []
    for row, (ids, n) in enumerate(batch):
        target = torch.tensor(ids[len(ids) - n :], dtype=torch.long)
        lp = logprobs[row, max_cont - n :]
        total = float(lp.gather(-1, target.unsqueeze(-1)).sum())
        greedy = bool((lp.argmax(-1) == target).all())
        results.append((total, greedy))
    return results
