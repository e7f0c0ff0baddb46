"""Tokens/s through gemmawatch backends vs the raw engines they wrap, and a table of the bundled variants.

    python benchmarks/backend_overhead.py [--prompts 8] [--max-new-tokens 32] [--scores]

Part 1 (overhead, goal >= 0.95): the same 8 smoke prompts, greedy, one request at a time, 32 new tokens each:
  * raw ``transformers`` ``model.generate`` vs ``TransformersBackend.generate`` (fp32, same converted weights)
  * raw ``llama_cpp.Llama.create_completion`` vs ``LlamaCppBackend.generate`` (bundled Q4_K_M GGUF)
Each pair alternates within one process after a warm-up request, so both see the same machine state.

Part 2 (variants): each built-in variant in its own process (so peak RSS is its own): streamed tokens/s,
median TTFT and TPOT (vLLM definitions, via gemmawatch's latency probe), peak RSS and, with ``--scores``,
smoke_mc accuracy with its 95% CI.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Any

VARIANTS = ["gemma-3-270m", "gemma-3-270m-bf16", "gemma-3-270m-int8", "llamacpp:bundled:gemma-3-270m"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _prompts(n: int) -> list[str]:
    from gemmawatch.evals.suites import smoke_prompts

    return smoke_prompts(n)


def _rate(fn: Any, prompts: list[str]) -> float:
    """Output tokens per second of ``fn(prompt) -> n_tokens`` over all prompts."""
    tokens, start = 0, time.perf_counter()
    for p in prompts:
        tokens += fn(p)
    return tokens / (time.perf_counter() - start)


def overhead_transformers(prompts: list[str], max_new: int) -> tuple[float, float]:
    import torch

    from gemmawatch.collectors.backends import GenerationRequest
    from gemmawatch.collectors.targets import load_backend, resolve_target

    backend: Any = load_backend(resolve_target("gemma-3-270m"))
    model, tok = backend.model, backend.tokenizer

    def raw(p: str) -> int:
        ids = tok(p, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new, do_sample=False, pad_token_id=tok.pad_token_id)
        return int(out.shape[1] - ids["input_ids"].shape[1])

    def ours(p: str) -> int:
        return backend.generate([GenerationRequest(p, max_new_tokens=max_new)], batch_size=1)[0].output_tokens

    raw(prompts[0]), ours(prompts[0])  # warm-up
    raws, gws = [], []
    for _ in range(2):
        raws.append(_rate(raw, prompts))
        gws.append(_rate(ours, prompts))
    return max(raws), max(gws)


def overhead_llamacpp(prompts: list[str], max_new: int) -> tuple[float, float]:
    from llama_cpp import Llama

    from gemmawatch.collectors.backends import GenerationRequest
    from gemmawatch.collectors.bundled import bundled_gguf_path
    from gemmawatch.collectors.targets import load_backend, resolve_target

    threads = int(os.environ.get("GEMMAWATCH_TORCH_THREADS") or os.cpu_count() or 2)
    llm = Llama(model_path=str(bundled_gguf_path()), n_ctx=2048, n_threads=threads, verbose=False)

    def raw(p: str) -> int:
        out: Any = llm.create_completion(p, max_tokens=max_new, temperature=0.0)
        return int(out["usage"]["completion_tokens"])

    backend = load_backend(resolve_target(f"llamacpp:bundled:gemma-3-270m?n_threads={threads}"))

    def ours(p: str) -> int:
        return backend.generate([GenerationRequest(p, max_new_tokens=max_new)], batch_size=1)[0].output_tokens

    raw(prompts[0]), ours(prompts[0])
    raws, gws = [], []
    for _ in range(2):
        raws.append(_rate(raw, prompts))
        gws.append(_rate(ours, prompts))
    return max(raws), max(gws)


def variant_row(target: str, n_prompts: int, max_new: int, scores: bool) -> dict[str, Any]:
    """Measure one variant (run in a child process)."""
    from gemmawatch.collectors.targets import load_backend, resolve_target
    from gemmawatch.evals.latency import run_latency_probe

    backend = load_backend(resolve_target(target))
    metrics, _ = run_latency_probe(backend, _prompts(n_prompts), max_new_tokens=max_new)
    by = {m["metric"]: m["value"] for m in metrics}
    row: dict[str, Any] = {
        "target": target,
        "tok_s": by.get("output_tokens_per_s_mean"),
        "ttft_p50_s": by.get("ttft_s_p50"),
        "tpot_mean_s": by.get("tpot_s_mean"),
    }
    if scores:
        from gemmawatch.evals.runner import run_lm_eval

        outcome = run_lm_eval(backend, ["smoke_mc"], batch_size=8)
        acc = next(m for m in outcome.metrics if m["task"] == "smoke_mc" and m["metric"] == "acc")
        row["smoke_mc_acc"] = [acc["value"], acc["ci_low"], acc["ci_high"], acc["n"]]
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--scores", action="store_true", help="also score smoke_mc per variant (slower)")
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    parser.add_argument("--skip-overhead", action="store_true")
    args = parser.parse_args()
    os.environ.update(OFFLINE)
    if args.variant:
        print(json.dumps(variant_row(args.variant, args.prompts, args.max_new_tokens, args.scores)))
        return
    prompts = _prompts(args.prompts)
    if not args.skip_overhead:
        for name, fn in (("transformers fp32", overhead_transformers), ("llama.cpp Q4_K_M", overhead_llamacpp)):
            raw, ours = fn(prompts, args.max_new_tokens)
            ratio = ours / raw
            print(f"{name:18s} raw {raw:6.2f} tok/s   gemmawatch {ours:6.2f} tok/s   ratio {ratio:.3f} (goal >= 0.95)")
    print(f"\n{'variant':32s} {'tok/s':>7s} {'TTFT p50':>9s} {'TPOT':>7s} {'peak RSS':>9s}  smoke_mc acc [95% CI] n")
    for target in VARIANTS:
        cmd = [sys.executable, __file__, "--variant", target, "--prompts", str(args.prompts),
               "--max-new-tokens", str(args.max_new_tokens)] + (["--scores"] if args.scores else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{target:32s} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        acc = r.get("smoke_mc_acc")
        acc_s = f"{acc[0]:.3f} [{acc[1]:.3f}, {acc[2]:.3f}] n={acc[3]}" if acc else "-"
        print(f"{target:32s} {r['tok_s']:7.2f} {r['ttft_p50_s']:8.3f}s {r['tpot_mean_s']:6.3f}s "
              f"{r['peak_rss_mb']:7.0f}MB  {acc_s}")


if __name__ == "__main__":
    main()
