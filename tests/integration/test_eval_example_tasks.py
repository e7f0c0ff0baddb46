"""The README's bring-your-own-data example for the lm-eval path: GSM8K and TruthfulQA from ../shared/data as
lm-eval YAML tasks (evals/examples/lm_eval_tasks), run on the real bundled Gemma through ``run_lm_eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gemmawatch.evals.runner import run_lm_eval

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "evals" / "examples" / "lm_eval_tasks"
DATA = ROOT.parent / "shared" / "data"


@pytest.mark.skipif(not (DATA / "gsm8k").is_dir(), reason="../shared/data (GSM8K, TruthfulQA) is not next to the repo")
def test_gsm8k_and_truthfulqa_from_local_files(gemma_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the YAMLs' data_files are relative to the working directory, as documented
    out = run_lm_eval(
        gemma_backend, ["gsm8k_local", "truthfulqa_mc1_local"], include_path=[TASKS], limit=2, batch_size=4
    )
    rows = {(m["task"], m["metric"], m["filter"]): m for m in out.metrics}
    assert set(rows) == {
        ("gsm8k_local", "exact_match", "strict-match"),
        ("gsm8k_local", "exact_match", "flexible-extract"),
        ("truthfulqa_mc1_local", "acc", "none"),
    }
    for row in rows.values():
        assert row["n"] == 2 and 0.0 <= row["value"] <= 1.0
        assert row["ci_low"] <= row["value"] <= row["ci_high"]
    by_task: dict[str, list[dict[str, Any]]] = {}
    for sample in out.samples:
        by_task.setdefault(sample["task"], []).append(sample)
    gsm = sorted(by_task["gsm8k_local"], key=lambda s: s["doc_id"])
    assert gsm[0]["prompt"].startswith("Question: Janet") and gsm[0]["target"].endswith("#### 18")
    tqa = sorted(by_task["truthfulqa_mc1_local"], key=lambda s: s["doc_id"])
    # The first upstream question; its true answer is the first of four choices (gold index 0).
    assert (
        "pomegranate" in tqa[0]["prompt"]
        and tqa[0]["target"] == "Nothing in particular happens when you eat a pomegranate."
    )
