"""One request of a load test, as raw timestamps (never only averages).

All times are seconds from the load test's own start (``time.perf_counter()``
at the first scheduled send), so events of one run share one clock; the run's
wall-clock start is stored with the run. Definitions follow vLLM's
``benchmark_serving``:

* TTFT = first chunk carrying output text − send.
* ITL  = gaps between consecutive text-carrying chunks (one value per gap).
* E2E  = last byte − send.
* TPOT = ``(E2E − TTFT) / (output_tokens − 1)``: the first token is excluded
  because it carries the prefill; None with fewer than two output tokens.

A failed request keeps whatever it observed (a stream cut after ten chunks
still has its chunk times) but is never counted in latency statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: Where a request falls relative to the measurement window (decided after the run,
#: from its completion time): only ``measure`` requests enter the statistics.
Phase = Literal["warmup", "measure", "cooldown"]
PHASES: tuple[str, ...] = ("warmup", "measure", "cooldown")


@dataclass
class RequestEvent:
    """Raw timings and outcome of one load-test request.

    * ``seq``: position in the request schedule (0-based, unique per run and step);
      two runs with the same seed send the same prompts in the same ``seq`` order.
    * ``step``: index of the profile step (always 0 except in a sweep).
    * ``scheduled_s``: planned send time (None for closed-loop profiles, which send
      as soon as a slot frees); ``sent_s``: actual send time. Their difference is
      the generator's own lag, reported so a saturated client is visible.
    * ``first_chunk_s``/``chunk_s``: arrival of the first / every text-carrying chunk
      (``chunk_s[0] == first_chunk_s``). ``n_chunks`` keeps the count when the
      per-chunk times are not kept.
    * ``end_s``: last byte (or the moment the failure was seen).
    * ``input_tokens``/``output_tokens``: from ``token_source`` (``server`` usage,
      ``tokenizer`` or ``chunks``); None when unknown.
    * ``status``: HTTP status (None for in-process backends or when no response came).
    * ``error``/``error_class``: one-line failure (``timeout``, ``connection``,
      ``http_503``, ``stream_cut``, ``cancelled``...); None for a success.
    * ``phase``: filled in when the run is summarised (see :data:`Phase`).
    """

    seq: int
    step: int
    sent_s: float
    scheduled_s: float | None = None
    first_chunk_s: float | None = None
    chunk_s: list[float] = field(default_factory=list)
    n_chunks: int = 0
    end_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    token_source: str = "chunks"
    status: int | None = None
    error: str | None = None
    error_class: str | None = None
    phase: Phase = "measure"

    @property
    def ok(self) -> bool:
        """True for a request that completed without error."""
        return self.error is None and self.end_s is not None

    @property
    def ttft_s(self) -> float | None:
        """Time to first token (first text chunk), or None if none arrived."""
        return None if self.first_chunk_s is None else self.first_chunk_s - self.sent_s

    @property
    def e2e_s(self) -> float | None:
        """Send to last byte, or None if the request never ended."""
        return None if self.end_s is None else self.end_s - self.sent_s

    @property
    def itl_s(self) -> list[float]:
        """Gaps between consecutive text chunks (empty when chunk times were not kept)."""
        c = self.chunk_s
        return [b - a for a, b in zip(c, c[1:], strict=False)]

    @property
    def tpot_s(self) -> float | None:
        """vLLM's TPOT: ``(E2E - TTFT) / (output_tokens - 1)``; None with < 2 tokens."""
        ttft, e2e, out = self.ttft_s, self.e2e_s, self.output_tokens
        if ttft is None or e2e is None or out is None or out < 2:
            return None
        return (e2e - ttft) / (out - 1)

    @property
    def lag_s(self) -> float | None:
        """How late the generator sent this request (open-loop profiles only)."""
        return None if self.scheduled_s is None else self.sent_s - self.scheduled_s
