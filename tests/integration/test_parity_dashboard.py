"""The Run page's parity panel (AppTest), on parity runs written through the storage query functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from gemmawatch.dashboard import app as app_module
from gemmawatch.evals.parity import ItemPrediction, ParityOutcome, compare
from gemmawatch.storage.engine import get_engine, session_scope
from gemmawatch.storage.queries import metrics as mq
from gemmawatch.storage.queries import runs as rq
from gemmawatch.storage.queries import samples as sq
from gemmawatch.storage.queries import targets as tq

APP = str(Path(app_module.__file__).resolve())


def _item(doc_id: int, pred: int) -> ItemPrediction:
    return ItemPrediction(
        task="smoke_mc_geography",
        doc_id=doc_id,
        item_id=f"geography-{doc_id + 1:02d}",
        prompt=f"Question: Which city is capital number {doc_id}?\nAnswer:",
        choices=("Paris", "Rome", "<b>Oslo</b>"),
        gold=0,
        pred=pred,
        loglikelihoods=(-1.0, -2.0, -3.0),
    )


def _store(url: str, kind: str, outcome: ParityOutcome | None) -> int:
    with session_scope(get_engine(url)) as s:
        target_id = tq.upsert_target(s, name="gemma-3-270m", backend="transformers", model_id="bundled:gemma-3-270m")
        config = {"target_a": {"name": "gemma-3-270m"}, "target_b": {"name": "llamacpp:bundled:gemma-3-270m"}}
        run_id = rq.create_run(s, kind=kind, target_id=target_id, config=config, host="test", versions={})
        if outcome is not None:
            mq.add_metrics(s, run_id, outcome.metric_rows())
            sq.add_samples(s, run_id, outcome.sample_rows())
        rq.finish_run(s, run_id, status="completed")
    return run_id


def _run_page(run_id: int) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.query_params["run"] = str(run_id)
    at.switch_page("views/run.py").run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def db(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GEMMAWATCH_DB", sqlite_url)
    return sqlite_url


def test_parity_panel_shows_agreement_difference_and_the_differing_items(db: str) -> None:
    outcome = compare([_item(0, 0), _item(1, 0), _item(2, 0)], [_item(0, 0), _item(1, 2), _item(2, 0)])
    at = _run_page(_store(db, "parity", outcome))
    assert "Parity" in [h.value for h in at.subheader]
    metrics = {m.label: str(m.value) for m in at.metric}
    assert metrics["Agreement"] == "66.7%" and metrics["Items (n)"] == "3"
    assert metrics["Accuracy B − A"] == "-0.333" and metrics["McNemar p"] == "1"
    assert any("B = llamacpp:bundled:gemma-3-270m" in c.value for c in at.caption)
    assert any("Wilson" in (m.help or "") for m in at.metric)
    (frame,) = [d.value for d in at.dataframe if "answer_b" in d.value.columns]
    assert frame.to_dict("records") == [
        {
            "task": "smoke_mc_geography",
            "doc_id": 1,
            "item": "geography-02",
            "prompt": "Question: Which city is capital number 1?\nAnswer:",
            "answer_a": "Paris",
            "answer_b": "<b>Oslo</b>",  # model-side text stays plain text, never markup
            "gold": "Paris",
        }
    ]


def test_full_agreement_says_so_and_eval_runs_have_no_parity_panel(db: str) -> None:
    # Both runs first: the dashboard caches the run list for a few seconds.
    parity_run = _store(db, "parity", compare([_item(0, 1)], [_item(0, 1)]))
    eval_run = _store(db, "eval", None)
    at = _run_page(parity_run)
    assert [s.value for s in at.success] == ["Both targets chose the same answer on every item."]
    at = _run_page(eval_run)
    assert at.header[0].value.startswith(f"Run #{eval_run} ")
    assert "Parity" not in [h.value for h in at.subheader]
