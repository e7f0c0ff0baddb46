"""storage.queries.sample_browse on SQLite: per-task aggregates, score filters in SQL, pairing of two runs."""

from __future__ import annotations

import pytest

from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import sample_browse
from gemmawatch.storage.queries.runs import create_run
from gemmawatch.storage.queries.samples import add_samples


def test_summary_filters_and_pairs(db_url: str) -> None:
    with session_scope(get_engine(db_url)) as s:
        base = create_run(s, kind="eval", target_id=None, config={}, host="h", versions={})
        cand = create_run(s, kind="eval", target_id=None, config={}, host="h", versions={})
        rows = [
            {"task": "mc", "doc_id": i, "prompt": f"q{i}", "output": f"out {i}", "scores": {"acc": float(i % 2)},
             "latency_s": 1.0 + i, "error": "timeout" if i == 3 else None}
            for i in range(4)
        ] + [{"task": "gen", "doc_id": 0, "prompt": "g", "output": "Paris",
              "scores": {"rougeL": 0.25, "ok": True}}]  # fmt: skip
        add_samples(s, base, rows)
        add_samples(s, cand, [{**r, "scores": {"acc": 1.0}} for r in rows[:3]])

        summary = {r["task"]: r for r in sample_browse.task_summary(s, base)}
        assert summary["mc"]["n"] == 4 and summary["mc"]["errors"] == 1
        assert summary["mc"]["latency_s_mean"] == pytest.approx(2.5) and summary["mc"]["latency_s_max"] == 4.0
        assert summary["gen"]["latency_s_mean"] is None

        def ids(**kwargs: object) -> list[tuple[str, int]]:
            found = sample_browse.filtered_samples(s, base, **kwargs)  # type: ignore[arg-type]
            assert sample_browse.count_filtered_samples(s, base, **kwargs) == len(found)  # type: ignore[arg-type]
            return [(r["task"], r["doc_id"]) for r in found]

        assert ids(outcome="at_least", score_key="acc") == [("mc", 1), ("mc", 3)]
        assert ids(outcome="below", score_key="acc") == [("mc", 0), ("mc", 2)]  # samples without acc match neither
        assert ids(outcome="below", score_key="rougeL", threshold=0.3) == [("gen", 0)]
        assert ids(outcome="at_least", score_key="ok", threshold=1) == [("gen", 0)]  # JSON true reads as 1
        assert ids(outcome="errors") == [("mc", 3)]
        assert ids(outcome="all", task="mc", search="OUT 2") == [("mc", 2)]
        page = sample_browse.filtered_samples(s, base, offset=1, limit=2)  # ordered by task, doc_id
        assert [(r["task"], r["doc_id"]) for r in page] == [("mc", 0), ("mc", 1)]
        with pytest.raises(ValueError, match="outcome"):
            sample_browse.filtered_samples(s, base, outcome="bogus")

        pairs = sample_browse.paired_samples(s, base, cand)
        assert [(p["task"], p["doc_id"]) for p in pairs] == [("mc", 0), ("mc", 1), ("mc", 2)]
        assert pairs[0]["base_scores"] == {"acc": 0.0} and pairs[0]["cand_scores"] == {"acc": 1.0}
        assert pairs[0]["base_prompt"] == pairs[0]["cand_prompt"] == "q0"
        assert sample_browse.paired_samples(s, base, cand, task="gen") == []
        assert len(sample_browse.paired_samples(s, base, cand, limit=2)) == 2
