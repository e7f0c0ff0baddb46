"""Wall time of ``gemmawatch eval`` vs the plain ``lm_eval`` CLI on the same task and model.

Both run as fresh processes (start-up included), alternate so machine noise
hits both alike, and use the same converted model directory, batch size and
task. gemmawatch additionally stores samples and metrics in SQLite and samples
telemetry; the latency probe is switched off so the work is the same.

    python benchmarks/eval_overhead.py [--tasks smoke] [--repeats 3] [--limit N]

Prints each timing, the medians and the ratio gemmawatch / lm_eval (goal <= 1.05).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    from gemmawatch.collectors.bundled import converted_model_dir
    from gemmawatch.evals.suites import suite_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="smoke")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()

    model_dir = converted_model_dir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    limit = ["--limit", str(args.limit)] if args.limit else []
    gw_times, lm_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            db = f"sqlite:///{tmp}/bench{i}.db"
            gw = [
                sys.executable,
                "-m",
                "gemmawatch.cli.main",
                "eval",
                "--target",
                "gemma-3-270m",
                "--tasks",
                args.tasks,
                "--latency-prompts",
                "0",
                "--batch-size",
                str(args.batch_size),
                "--db",
                db,
                *limit,
            ]
            lm = [
                sys.executable,
                "-m",
                "lm_eval",
                "--model",
                "hf",
                "--model_args",
                f"pretrained={model_dir},dtype=float32",
                "--include_path",
                str(suite_dir()),
                "--tasks",
                args.tasks,
                "--device",
                "cpu",
                "--batch_size",
                str(args.batch_size),
                "--log_samples",
                "--output_path",
                f"{tmp}/lm{i}",
                *limit,
            ]
            lm_times.append(_timed(lm, env))
            gw_times.append(_timed(gw, env))
            print(f"repeat {i + 1}: lm_eval {lm_times[-1]:.1f} s   gemmawatch {gw_times[-1]:.1f} s", flush=True)
    lm_med, gw_med = statistics.median(lm_times), statistics.median(gw_times)
    print(f"tasks={args.tasks} limit={args.limit} batch_size={args.batch_size} repeats={args.repeats}")
    print(f"median lm_eval    {lm_med:.1f} s")
    print(f"median gemmawatch {gw_med:.1f} s")
    print(f"ratio gemmawatch/lm_eval = {gw_med / lm_med:.3f}  (goal <= 1.05)")


if __name__ == "__main__":
    main()
