"""Parity of the two engines that serve the bundled weights: transformers fp32 vs llama.cpp Q4_K_M.

The transformers copy is the GGUF dequantised exactly to float32, so both compute with the
same weights; llama.cpp runs its quantized kernels (activations rounded to 8 bits), so the
scores differ slightly while the chosen answers should agree.
"""

from __future__ import annotations

import os

import pytest

from gemmawatch.collectors.backends.transformers_backend import TransformersBackend
from gemmawatch.collectors.targets import load_backend, resolve_target
from gemmawatch.evals.parity import run_parity

pytestmark = pytest.mark.model


def test_transformers_fp32_vs_llamacpp_on_the_bundled_gguf(gemma_backend: TransformersBackend) -> None:
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (extra 'llamacpp')")
    threads = "?n_threads=1" if (os.cpu_count() or 1) <= 2 else ""
    llama = load_backend(resolve_target(f"llamacpp:bundled:gemma-3-270m{threads}"))
    try:
        outcome = run_parity(gemma_backend, llama, limit=2)
    finally:
        llama.close()
    s = outcome.stats
    assert s.n == 10
    # All 80 items, run by hand: 0.975 agreement (78/80). On these 10 at most two may flip.
    assert s.agreement >= 0.8, outcome.disagreements()
    lo, hi = s.acc_diff_ci
    assert lo <= s.acc_diff <= hi
    gap = outcome.loglikelihood_gap()
    assert gap["mean_abs_ll_diff"] is not None and 0.0 < gap["mean_abs_ll_diff"] < 1.0  # close, not identical
