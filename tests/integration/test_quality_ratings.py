"""User satisfaction ratings on samples (``rate_sample``), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, select

from gemmawatch.errors import UnknownNameError, UserError
from gemmawatch.storage import get_engine, session_scope
from gemmawatch.storage.models import Sample
from gemmawatch.storage.queries import rate_sample, runs, samples, targets


@pytest.fixture
def engine(db_url: str) -> Engine:
    return get_engine(db_url)


def _sample(engine: Engine, scores: dict[str, object] | None = None) -> int:
    with session_scope(engine) as s:
        target_id = targets.upsert_target(s, name="gemma-3-270m", backend="transformers", model_id="m")
        run_id = runs.create_run(s, kind="eval", target_id=target_id, config={}, host="box", versions={})
        samples.add_samples(
            s, run_id, [{"task": "qa", "doc_id": 0, "prompt": "Q?", "output": "A.", "scores": scores or {}}]
        )
        sample_id = s.scalar(select(Sample.id).where(Sample.run_id == run_id))
        assert sample_id is not None
        return sample_id


def test_ratings_append_and_average(engine: Engine) -> None:
    sample_id = _sample(engine, {"acc": 1.0})
    with session_scope(engine) as s:
        first = rate_sample(s, sample_id, 4, "  Clear and correct.  ")
    assert first["user_rating"] == 4.0 and first["acc"] == 1.0  # other scores are kept
    with session_scope(engine) as s:
        rate_sample(s, sample_id, 1)
    with session_scope(engine) as s:
        stored = s.get(Sample, sample_id)
        assert stored is not None
        scores = stored.scores
    assert scores["user_rating"] == 2.5 and scores["acc"] == 1.0
    entries = scores["user_ratings"]
    assert [(e["rating"], e["comment"]) for e in entries] == [(4, "Clear and correct."), (1, None)]
    assert all(datetime.fromisoformat(e["at"]).utcoffset() is not None for e in entries)


def test_unicode_comment_round_trips(engine: Engine) -> None:
    sample_id = _sample(engine)
    with session_scope(engine) as s:
        rate_sample(s, sample_id, 5, "Très bien 👍 — 谢谢")
    with session_scope(engine) as s:
        stored = s.get(Sample, sample_id)
        assert stored is not None and stored.scores["user_ratings"][0]["comment"] == "Très bien 👍 — 谢谢"


@pytest.mark.parametrize("rating", [0, 6, 3.5, True, "4", None])
def test_invalid_ratings_are_rejected(engine: Engine, rating: object) -> None:
    sample_id = _sample(engine)
    with pytest.raises(UserError, match="whole number from 1 to 5"), session_scope(engine) as s:
        rate_sample(s, sample_id, rating)  # type: ignore[arg-type]


def test_invalid_comment_and_unknown_sample(engine: Engine) -> None:
    sample_id = _sample(engine)
    with pytest.raises(UserError, match="2000 characters"), session_scope(engine) as s:
        rate_sample(s, sample_id, 3, "x" * 2001)
    with pytest.raises(UserError, match="must be text"), session_scope(engine) as s:
        rate_sample(s, sample_id, 3, 42)  # type: ignore[arg-type]
    with pytest.raises(UnknownNameError, match="Unknown sample id"), session_scope(engine) as s:
        rate_sample(s, sample_id + 1000, 3)
    with session_scope(engine) as s:
        stored = s.get(Sample, sample_id)
        assert stored is not None and "user_rating" not in stored.scores  # nothing half-written
    with session_scope(engine) as s:
        assert rate_sample(s, sample_id, 5.0)["user_rating"] == 5.0  # an integral float is a whole number
