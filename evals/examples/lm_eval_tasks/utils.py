"""lm-eval hooks of the example tasks (imported by lm-eval by path: keep it self-contained)."""

from __future__ import annotations

from typing import Any


def process_docs(dataset: Any) -> Any:
    """TruthfulQA's ``mc1_targets`` ({choice: 1/0}) as ``choices`` and the index of the true one (``gold``)."""

    def convert(doc: dict[str, Any]) -> dict[str, Any]:
        targets = doc["mc1_targets"]
        choices = list(targets)
        return {"question": doc["question"], "choices": choices, "gold": [targets[c] for c in choices].index(1)}

    return dataset.map(convert, remove_columns=dataset.column_names)
