"""Quality-scorer throughput on 10k outputs: scores/s per scorer, and the ratio to the wrapped library called directly.

    python benchmarks/scorer_throughput.py [--n 10000] [--embedding-n 10000] [--repeats 3] [--only rouge_l,bleu]
                                           [--data ../shared/data] [--json results.json]

The samples are built from the QA data in ``--data`` (default ``../shared/data``: GSM8K test, the 11 MGSM
languages, TruthfulQA; 4,886 items, cycled to 10k), seeded so every run scores the same 10k: the question is
the prompt, the reference solution (GSM8K's worked answer, TruthfulQA's best answer; MGSM questions get the
English GSM8K solution, i.e. an answer in the wrong language for 10 of the 11) is the output and the final answer
(TruthfulQA: the list of correct answers) the reference. Then 8 % get another item's answer (off-topic), 5 % loop
their first sentence, 5 % are cut at 60 %, 2 % are empty, 1 % are a 20,000-character ramble and 9 % are the bare
reference answer. ``output_tokens`` is estimated as 4/3 tokens per word (limit 256). Every scorer scores all of
them through ``gemmawatch.evals.quality.score_many`` (its batch path where it has one), timed end to end
after one warm-up call (model loads are not counted). Where a scorer wraps a library, the library is timed
on the same inputs called the plain way:

=================== ======================================================================================
scorer              direct baseline
=================== ======================================================================================
exact_match         SQuAD v1.1's ``normalize_answer``/``exact_match_score`` (ASCII-only normalisation)
token_f1            SQuAD v2's ``compute_f1`` on SQuAD-normalised tokens
rouge_l             ``rouge_score.rouge_scorer.RougeScorer(["rougeL"]).score(ref, pred)``
bleu                ``sacrebleu.metrics.BLEU(effective_order=True).sentence_score(pred, [ref])``
chrf                ``sacrebleu.metrics.CHRF().sentence_score(pred, [ref])``
semantic_relevance  ``SentenceTransformer.encode`` of all prompts and answers (normalised) + row-wise dot
language_match      lingua ``compute_language_confidence_values`` on each prompt and answer
safety              the ``pii`` and ``toxicity`` checks' own ``check`` calls
=================== ======================================================================================

Ratio = gemmawatch scores/s / direct scores/s (1.0 = no overhead; below 1 = slower). Best of ``--repeats``,
gemmawatch and direct alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import string
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SEED = 20260301
TEXT_SCORERS = [
    "exact_match",
    "token_f1",
    "factual_accuracy",
    "rouge_l",
    "bleu",
    "chrf",
    "repetition",
    "length",
    "truncated",
    "language_match",
    "safety",
]
EMBEDDING_SCORERS = ["semantic_relevance", "coherence"]
DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _pool(data_dir: Path) -> list[tuple[str, str, str | list[str]]]:
    """(prompt, answer, reference) triples from GSM8K, MGSM and TruthfulQA under ``data_dir``."""

    def rows(path: Path) -> list[dict[str, Any]]:
        with path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    pool: list[tuple[str, str, str | list[str]]] = []
    solutions = []
    for row in rows(data_dir / "gsm8k" / "test.jsonl"):
        work, _, final = row["answer"].rpartition("####")
        answer = re.sub(r"<<[^>]*>>", "", work).strip() + f"\nThe answer is {final.strip()}."
        solutions.append(answer)
        pool.append((row["question"], answer, final.strip()))
    # MGSM's items are translations of GSM8K's first 250 test questions; answered with the English
    # solution, the non-English ones are the "answered in the wrong language" case.
    for path in sorted((data_dir / "mgsm").glob("mgsm_*.jsonl")):
        for i, row in enumerate(rows(path)):
            pool.append((row["input"], solutions[i], str(row["target"])))
    for row in rows(data_dir / "truthfulqa" / "TruthfulQA.jsonl"):
        correct = [a.strip() for a in row["Correct Answers"].split(";") if a.strip()]
        pool.append((row["Question"], row["Best Answer"], correct))
    return pool


def make_data(n: int, data_dir: Path) -> dict[str, list[Any]]:
    """``n`` seeded samples built from real QA data; see the module docstring."""
    rng = random.Random(SEED)
    pool = _pool(data_dir)
    prompts, outputs, references, contexts = [], [], [], []
    for i in range(n):
        prompt, answer, reference = pool[i % len(pool)]
        roll = rng.random()
        if roll < 0.08:
            answer = pool[rng.randrange(len(pool))][1]  # another item's answer: off-topic, wrong
        elif roll < 0.13:
            first = re.split(r"(?<=[.!?])\s+", answer)[0]
            answer = " ".join([first] * rng.randint(5, 15))  # a loop
        elif roll < 0.18:
            answer = answer[: max(1, int(len(answer) * 0.6))]  # cut by the token limit
        elif roll < 0.20:
            answer = ""
        elif roll < 0.21:
            answer = " ".join(pool[rng.randrange(len(pool))][1] for _ in range(80))[:20_000]  # a ramble
        elif roll < 0.30:
            answer = reference if isinstance(reference, str) else reference[0]  # the bare answer
        prompts.append(prompt)
        outputs.append(answer)
        references.append(reference)
        tokens = len(answer.split()) * 4 // 3
        contexts.append({"output_tokens": min(tokens, 256), "max_new_tokens": 256})
    return {"prompts": prompts, "outputs": outputs, "references": references, "contexts": contexts}


# --------------------------------------------------------------------------- direct baselines


def _squad_normalize(s: str) -> str:
    exclude = set(string.punctuation)
    s = "".join(ch for ch in s.lower() if ch not in exclude)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", s).split())


def _squad_f1(pred: str, ref: str) -> float:
    p, r = _squad_normalize(pred).split(), _squad_normalize(ref).split()
    if not p or not r:
        return float(p == r)
    common = Counter(p) & Counter(r)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(r)
    return 2 * precision * recall / (precision + recall)


def direct_baseline(name: str, data: dict[str, list[Any]]) -> Callable[[], object] | None:
    """A zero-argument callable that scores ``data`` with the library directly, or None.

    Several references (TruthfulQA) are handled the library's way: SQuAD's max over ground truths,
    rouge-score's ``score_multi``, sacrebleu's reference list.
    """
    outs, prompts = data["outputs"], data["prompts"]
    refs = [[r] if isinstance(r, str) else r for r in data["references"]]
    pairs = list(zip(outs, refs, strict=True))
    if name == "exact_match":
        return lambda: [max(float(_squad_normalize(o) == _squad_normalize(r)) for r in rs) for o, rs in pairs]
    if name == "token_f1":
        return lambda: [max(_squad_f1(o, r) for r in rs) for o, rs in pairs]
    if name == "rouge_l":
        from rouge_score import rouge_scorer

        lib = rouge_scorer.RougeScorer(["rougeL"])
        return lambda: [
            (lib.score(rs[0], o) if len(rs) == 1 else lib.score_multi(rs, o))["rougeL"].fmeasure for o, rs in pairs
        ]
    if name == "bleu":
        from sacrebleu.metrics import BLEU

        bleu = BLEU(effective_order=True)
        return lambda: [bleu.sentence_score(o, rs).score for o, rs in pairs]
    if name == "chrf":
        from sacrebleu.metrics import CHRF

        chrf = CHRF()
        return lambda: [chrf.sentence_score(o, rs).score for o, rs in pairs]
    if name == "semantic_relevance":
        import numpy as np

        from gemmawatch.evals.quality.embedding import embedder

        model = embedder().model  # the same loaded model

        def encode_all() -> object:
            a = model.encode(prompts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            b = model.encode(outs, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            return np.sum(a * b, axis=1)

        return encode_all
    if name == "language_match":
        from gemmawatch.evals.quality.language import detector

        lingua = detector()
        return lambda: [
            (lingua.compute_language_confidence_values(p), lingua.compute_language_confidence_values(o))
            for p, o in zip(prompts, outs, strict=True)
        ]
    if name == "safety":
        from gemmawatch.evals.safety import SAFETY_CHECKS, get_check

        checks = [get_check(c) for c in ("pii", "toxicity") if c in SAFETY_CHECKS]
        return lambda: [[c.check(o, prompt=p).flagged for c in checks] for o, p in zip(outs, prompts, strict=True)]
    return None


# --------------------------------------------------------------------------- timing


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(name: str, data: dict[str, list[Any]], repeats: int) -> dict[str, Any]:
    from gemmawatch.evals.quality import get_scorer, score_many

    scorer = get_scorer(name)
    n = len(data["outputs"])
    ours = lambda: score_many(  # noqa: E731
        scorer, data["outputs"], data["references"], prompts=data["prompts"], contexts=data["contexts"]
    )
    # Warm-up: loads models and fills caches on a few samples (not timed).
    score_many(scorer, data["outputs"][:8], data["references"][:8], prompts=data["prompts"][:8])
    direct = direct_baseline(name, data)
    ours_s: list[float] = []
    direct_s: list[float] = []
    for _ in range(repeats):
        ours_s.append(_timed(ours))
        if direct is not None:
            direct_s.append(_timed(direct))
    results = ours()
    scored = sum(r.value is not None for r in results)
    row: dict[str, Any] = {
        "scorer": name,
        "n": n,
        "scored": scored,
        "seconds": min(ours_s),
        "scores_per_s": n / min(ours_s),
        "version": scorer.version,
    }
    if direct_s:
        row["direct_seconds"] = min(direct_s)
        row["direct_scores_per_s"] = n / min(direct_s)
        row["ratio"] = row["scores_per_s"] / row["direct_scores_per_s"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=10_000, help="outputs for the text scorers")
    parser.add_argument("--embedding-n", type=int, default=10_000, help="outputs for the embedding scorers")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many (embedding scorers: 1)")
    parser.add_argument("--only", default="", help="comma-separated scorer names")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with gsm8k/, mgsm/, truthfulqa/")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)
    wanted = [s for s in args.only.split(",") if s] or TEXT_SCORERS + EMBEDDING_SCORERS
    data = make_data(max(args.n, args.embedding_n), args.data)
    rows = []
    mean_chars = sum(map(len, data["outputs"])) / len(data["outputs"])
    print(f"# {len(data['outputs'])} outputs, mean {mean_chars:.0f} characters")
    print("| scorer | n | scored | scores/s | direct scores/s | ratio |")
    print("|---|---|---|---|---|---|")
    for name in wanted:
        embedding = name in EMBEDDING_SCORERS
        size = args.embedding_n if embedding else args.n
        subset = {k: v[:size] for k, v in data.items()}
        row = bench(name, subset, 1 if embedding else args.repeats)
        rows.append(row)
        direct = f"{row['direct_scores_per_s']:,.0f}" if "ratio" in row else "-"
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "-"
        print(f"| {name} | {row['n']:,} | {row['scored']:,} | {row['scores_per_s']:,.0f} | {direct} | {ratio} |")
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
