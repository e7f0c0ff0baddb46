"""``gemmawatch bench load`` side by side with GuideLLM on one local llama.cpp server.

    python benchmarks/vs_guidellm.py [--requests 21] [--sync-requests 11] [--repeats 3] [--concurrency 2]
    GUIDELLM=/path/to/venv/bin/guidellm python benchmarks/vs_guidellm.py

One ``llama_cpp.server`` on the bundled Gemma 3 270M GGUF (127.0.0.1, a free port, the flags of
``tests/http_servers.py``) serves both tools. Both send the same prompts in the same order (gemmawatch's
built-in synthetic prompts, ``--input-tokens`` single-token words each, given to both as JSONL files) to
``/v1/completions``, streamed, greedy (``temperature=0``), with ``max_tokens`` = ``min_tokens`` =
``--output-tokens`` so every request generates exactly that many tokens (llama-cpp-python ignores
``ignore_eos`` and sends no token usage in streams, so forcing the length keeps both tools' token counts
honest). Profiles: ``concurrent`` (``--concurrency`` streams; the max-throughput step) and ``synchronous``;
no warm-up or cool-down on either side, so both measure from the first request sent to the last completion.
The tools alternate (order swapped every repeat) so machine noise hits both alike.

Figures compared (GuideLLM JSON -> gemmawatch ``--json``):
  * request throughput  ``metrics.requests_per_second.successful.mean`` -> ``request_throughput``
  * output throughput   ``metrics.output_tokens_per_second.successful.mean`` -> ``output_throughput``
  * TTFT median         ``metrics.time_to_first_token_ms.successful.median`` -> ``ttft_p50_s``
GuideLLM's median is the lower empirical quantile (no interpolation); with an odd number of requests it equals
the interpolated median, hence the odd defaults. Goals (per profile, medians over the repeats): gemmawatch's
throughputs >= 0.95x GuideLLM's and its TTFT median within 5 % of GuideLLM's. About 4 minutes on 2 idle cores.
Other work on the machine skews single runs badly (llama.cpp slows several-fold when it loses its core), so each
run also shows the server's own time per request (llama.cpp's ``total time`` lines in its log) and ``busy`` = the
sum of those over the tool's measured window: the request throughput normalised by the server's speed. When the
``srv s/req`` medians differ between the tools, the machine was busier during one tool's runs; the ``srv busy``
ratio is then the fairer throughput comparison (it cancels the server's speed).

GuideLLM runs from its own virtual environment (it pins its own torch and transformers):
``python -m venv /work/guidellm-venv && /work/guidellm-venv/bin/pip install guidellm==0.8.1``.
The script looks for ``$GUIDELLM``, then that path, then ``guidellm`` on PATH, and skips GuideLLM if none works.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
DEFAULT_GUIDELLM = "/work/guidellm-venv/bin/guidellm"
ALIAS = "gemma3-270m"
TOOLS = ("guidellm", "gemmawatch")
METRICS = ("request_throughput", "output_throughput", "ttft_p50_s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, body: dict[str, Any] | None = None, timeout: float = 2.0) -> bool:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            resp.read()
            return int(resp.status) == 200
    except OSError:
        return False


@contextlib.contextmanager
def llama_server(threads: int, log_dir: Path) -> Iterator[str]:
    """``python -m llama_cpp.server`` on the bundled GGUF (as tests/http_servers.py starts it); yields ``/v1``."""
    from gemmawatch.collectors.bundled import bundled_gguf_path

    port = _free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(bundled_gguf_path()), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads),
        "--chat_format", "gemma", "--interrupt_requests", "False",
    ]  # fmt: skip
    log_path = log_dir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE})
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while not _get(f"{base}/models"):
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"llama_cpp.server did not start:\n{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


_SERVER_TOTAL = re.compile(r"total time =\s*([\d.]+) ms")


def server_seconds(log: Path) -> list[float]:
    """The server's own time per request (llama.cpp's ``total time`` line, prefill + decode), in log order."""
    return [float(ms) / 1000 for ms in _SERVER_TOTAL.findall(log.read_text(errors="replace"))]


def write_prompts(work: Path, n: int, input_tokens: int, output_tokens: int, seed: int) -> tuple[Path, Path]:
    """gemmawatch's built-in synthetic prompts as two JSONL files: (gemmawatch's, GuideLLM's).

    ``bench load --dataset`` sends a file's rows in a seeded shuffle (``prompts.schedule``) and GuideLLM sends
    a file top to bottom, so GuideLLM gets the rows already in that shuffled order: request k of either tool
    then carries the same prompt.
    """
    from gemmawatch.collectors.load.prompts import builtin_prompts, schedule

    pool = builtin_prompts(n, input_tokens=input_tokens, output_tokens=output_tokens, seed=seed)
    paths = (work / "prompts-gemmawatch.jsonl", work / "prompts-guidellm.jsonl")
    for path, prompts in zip(paths, (pool, schedule(pool, seed)), strict=True):
        with path.open("w", encoding="utf-8") as fh:
            for p in prompts:
                row = {"prompt": p.text, "prompt_tokens_count": input_tokens, "output_tokens_count": output_tokens}
                fh.write(json.dumps(row) + "\n")
    return paths


def find_guidellm() -> str | None:
    """The GuideLLM CLI to use, or None (see the module docstring)."""
    for candidate in (os.environ.get("GUIDELLM"), DEFAULT_GUIDELLM, shutil.which("guidellm")):
        if not candidate or not Path(candidate).is_file():
            continue
        proc = subprocess.run([candidate, "--version"], capture_output=True, text=True, env={**os.environ, **OFFLINE})
        if proc.returncode == 0:
            return candidate
    return None


class RunFailed(RuntimeError):
    """A tool exited non-zero; the figures measured so far are still reported."""


def _run(cmd: list[str], cwd: Path, log: Path, timeout: float) -> tuple[str, float]:
    """Run ``cmd``; stderr goes to ``log``; returns (stdout, wall seconds); RunFailed with the log tail."""
    start = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.run(
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, **OFFLINE}, timeout=timeout
        )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = (log.read_text(errors="replace") + proc.stdout)[-3000:]
        raise RunFailed(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout, wall


def run_guidellm(
    exe: str, base: str, profile: str, concurrency: int, n: int, data: Path, out_tokens: int, work: Path, tag: str
) -> dict[str, Any]:
    """One GuideLLM benchmark; its figures under the gemmawatch JSON names (see the module docstring)."""
    out = work / f"{tag}.json"
    kind = f"kind=concurrent,streams={concurrency}" if profile == "concurrent" else "kind=synchronous"
    backend = (
        f"kind=openai_http,target={base.removesuffix('/v1')},request_format=/v1/completions,"
        f"validate_backend=false,extras.body.temperature=0.0,extras.body.min_tokens={out_tokens}"
    )
    cmd = [
        exe, "run", "--backend", backend, "--profile", kind, "--constraint", f"kind=max_requests,count={n}",
        "--data", f"kind=json_file,path={data}", "--output", f"kind=json,path={out}", "--disable-console-interactive",
    ]  # fmt: skip
    _, wall = _run(cmd, work, work / f"{tag}.log", timeout=max(600, 10 * n))
    bench = json.loads(out.read_text())["benchmarks"][0]
    m = bench["metrics"]
    ttfts = sorted(r["time_to_first_token_ms"] for r in bench["requests"]["successful"])
    return {
        "completed": m["request_totals"]["successful"],
        "failed": m["request_totals"]["errored"] + m["request_totals"]["incomplete"],
        "duration_s": bench["duration"],
        "request_throughput": m["requests_per_second"]["successful"]["mean"],
        "output_throughput": m["output_tokens_per_second"]["successful"]["mean"],
        "ttft_p50_s": m["time_to_first_token_ms"]["successful"]["median"] / 1000,
        "ttft_p50_interp_s": statistics.median(ttfts) / 1000 if ttfts else None,
        "wall_s": wall,
    }


def run_gemmawatch(
    base: str, profile: str, concurrency: int, n: int, data: Path, out_tokens: int, seed: int, work: Path, tag: str
) -> dict[str, Any]:
    """One ``gemmawatch bench load --json`` run (its own SQLite database in the work folder)."""
    target = f"openai:{ALIAS}@{base}?extra_body=" + json.dumps(
        {"temperature": 0.0, "min_tokens": out_tokens}, separators=(",", ":")
    )
    cmd = [
        sys.executable, "-m", "gemmawatch.cli.main", "bench", "load", "--target", target, "--profile", profile,
        *(["--concurrency", str(concurrency)] if profile == "concurrent" else []),
        "--max-requests", str(n), "--dataset", str(data), "--prompt-field", "prompt",
        "--output-tokens", str(out_tokens), "--seed", str(seed), "--ignore-eos",
        "--db", f"sqlite:///{work / (tag + '.db')}", "--json",
    ]  # fmt: skip
    stdout, wall = _run(cmd, work, work / f"{tag}.log", timeout=max(600, 10 * n))
    summary = json.loads(stdout)  # --json prints one object on stdout; progress goes to stderr
    return {**{k: summary.get(k) for k in ("completed", "failed", "duration_s", *METRICS)}, "wall_s": wall}


def measure(
    tool: str,
    profile: str,
    n: int,
    args: argparse.Namespace,
    exe: str | None,
    base: str,
    data: tuple[Path, Path],
    work: Path,
    tag: str,
) -> dict[str, Any]:
    """One run of ``tool`` with ``profile`` and ``n`` requests (``data``: the two prompt files)."""
    if tool == "guidellm" and exe:
        return run_guidellm(exe, base, profile, args.concurrency, n, data[1], args.output_tokens, work, tag)
    return run_gemmawatch(base, profile, args.concurrency, n, data[0], args.output_tokens, args.seed, work, tag)


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if metric.startswith("ttft") else f"{value:.3f}"


def report(results: dict[str, dict[str, list[dict[str, Any]]]]) -> bool:
    """Print the summary table; True when every goal is met.

    Values are medians over the repeats; the ratio is the median of the per-repeat ratios (each pair ran
    back to back, so a slow spell on a shared machine hits both sides of a pair rather than one tool).
    """
    labels = {"request_throughput": "req/s", "output_throughput": "out tok/s", "ttft_p50_s": "TTFT median"}
    ok = True
    print(f"\n{'profile':14s} {'metric':12s} {'GuideLLM':>11s} {'gemmawatch':>11s} {'ratio':>6s}  per repeat  goal")
    for profile, by_tool in results.items():
        for metric in METRICS:
            g_runs = [r[metric] for r in by_tool.get("guidellm", [])]
            w_runs = [r[metric] for r in by_tool.get("gemmawatch", [])]
            pairs = [w / g for g, w in zip(g_runs, w_runs, strict=False) if g and w is not None]
            ratio = statistics.median(pairs) if pairs else None
            if metric.startswith("ttft"):
                goal, met = "0.95-1.05", ratio is not None and abs(ratio - 1) <= 0.05
            else:
                goal, met = ">= 0.95", ratio is not None and ratio >= 0.95
            ok = ok and met
            verdict = "-" if ratio is None else ("PASS" if met else "FAIL")
            print(
                f"{profile:14s} {labels[metric]:12s} {_fmt(metric, _median(g_runs)):>11s} "
                f"{_fmt(metric, _median(w_runs)):>11s} {'-' if ratio is None else f'{ratio:.3f}':>6s}  "
                f"{','.join(f'{x:.2f}' for x in pairs) or '-':10s}  {goal} {verdict}"
            )
        for key, label in (("server_s_per_request", "srv s/req"), ("server_busy", "srv busy")):
            g_runs = [r[key] for r in by_tool.get("guidellm", [])]
            w_runs = [r[key] for r in by_tool.get("gemmawatch", [])]
            pairs = [w / g for g, w in zip(g_runs, w_runs, strict=False) if g and w is not None]
            ratio_s = f"{statistics.median(pairs):.3f}" if pairs else "-"
            print(
                f"{profile:14s} {label:12s} {_num(_median(g_runs), 3):>11s} {_num(_median(w_runs), 3):>11s} "
                f"{ratio_s:>6s}  {','.join(f'{x:.2f}' for x in pairs) or '-':10s}  (server's own timings)"
            )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=21, help="requests per concurrent run (odd: see docstring)")
    parser.add_argument("--sync-requests", type=int, default=11, help="requests per synchronous run")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--input-tokens", type=int, default=64)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--profiles", default="concurrent,synchronous")
    parser.add_argument("--server-threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", help="also write every run's figures to this JSON file")
    parser.add_argument("--keep", help="keep the prompts, logs and both tools' outputs in this folder")
    args = parser.parse_args()

    exe = find_guidellm()
    if exe is None:
        print(
            "GuideLLM not found: set GUIDELLM to its CLI (pip install guidellm==0.8.1 in its own venv). "
            "Running gemmawatch only."
        )
    profiles = [p.strip() for p in args.profiles.split(",") if p.strip()]
    counts = {"concurrent": args.requests, "synchronous": args.sync_requests}
    tools = [t for t in TOOLS if exe or t != "guidellm"]
    # Alternate the tools, swapping who goes first every repeat, so machine noise hits both alike.
    jobs = [
        (rep, profile, tool)
        for rep in range(args.repeats)
        for profile in profiles
        for tool in (tools if rep % 2 == 0 else tools[::-1])
    ]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory(prefix="vs-guidellm-") as tmp:
        work = Path(args.keep).resolve() if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        data = write_prompts(work, max(counts.values()), args.input_tokens, args.output_tokens, args.seed)
        with llama_server(args.server_threads, work) as base:
            # One request first, so neither tool pays the server's first-request costs.
            _get(f"{base}/completions", {"prompt": "Hello", "max_tokens": 4}, timeout=60)
            print(
                f"server {base}; {args.input_tokens} in / {args.output_tokens} out tokens; GuideLLM: {exe or 'absent'}"
            )
            for rep, profile, tool in jobs:
                name = f"{profile}@{args.concurrency}" if profile == "concurrent" else profile
                load = os.getloadavg()[0]
                seen = len(server_seconds(work / "server.log"))
                try:
                    r = measure(tool, profile, counts[profile], args, exe, base, data, work, f"{tool}-{profile}-{rep}")
                except RunFailed as exc:
                    print(exc, file=sys.stderr)
                    break
                own = server_seconds(work / "server.log")[seen:]
                r["server_s_per_request"] = statistics.fmean(own) if own else None
                # Share of the tool's window the server spent computing: throughput normalised by the
                # server's own speed, so a slow spell on the machine cancels out of the tool comparison.
                r["server_busy"] = sum(own) / r["duration_s"] if own and r["duration_s"] else None
                r["loadavg_before"] = load
                results.setdefault(name, {}).setdefault(tool, []).append(r)
                print(
                    f"  run {rep} {name:14s} {tool:10s} done {r['completed']} fail {r['failed']}  "
                    f"{_fmt('', r['request_throughput'])} req/s  {_fmt('', r['output_throughput'])} tok/s  "
                    f"TTFT p50 {_fmt('ttft', r['ttft_p50_s'])} | server {_num(r['server_s_per_request'], 3)} s/req, "
                    f"busy {_num(r['server_busy'], 3)} | wall {r['wall_s']:.1f} s, load {load:.1f}"
                )
    ok = report(results)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2))
    print("\nall goals met" if ok else "\nsome goals missed (or not compared)")


if __name__ == "__main__":
    main()
