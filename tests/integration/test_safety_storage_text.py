"""add_samples(text_policy=...): prompts and outputs written in clear, redacted or hashed (SQLite)."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import Engine

from gemmawatch.evals.safety.storage_policy import SALT_ENV, TextPolicy
from gemmawatch.storage import get_engine, session_scope
from gemmawatch.storage.queries import runs, samples, targets

ROWS = [
    {
        "task": "safety/privacy",
        "doc_id": 0,
        "prompt": "My mail is jane@example.com",
        "output": "Noted: jane@example.com",
    },
    {"task": "safety/privacy", "doc_id": 1, "prompt": [{"role": "user", "content": "hi"}], "target": "safe"},
    {"task": "safety/privacy", "doc_id": 2, "prompt": "", "output": "", "scores": {"pii_leak": 0}},
]


@pytest.fixture
def engine(sqlite_url: str) -> Engine:
    return get_engine(sqlite_url)


def _stored(engine: Engine, policy: TextPolicy | None) -> list[dict[str, object]]:
    with session_scope(engine) as s:
        target_id = targets.upsert_target(s, name="g", backend="transformers", model_id="m")
        run_id = runs.create_run(s, kind="safety", target_id=target_id, config={}, host="h", versions={})
        assert samples.add_samples(s, run_id, ROWS, text_policy=policy) == 3
    with session_scope(engine) as s:
        return samples.list_samples(s, run_id)


def test_no_policy_and_clear_store_the_text(engine: Engine) -> None:
    for policy in (None, TextPolicy("clear")):
        stored = _stored(engine, policy)
        assert stored[0]["prompt"] == "My mail is jane@example.com"
        assert stored[1]["prompt"] == '[{"role": "user", "content": "hi"}]'


def test_redacted(engine: Engine) -> None:
    stored = _stored(engine, TextPolicy("redacted"))
    assert stored[0]["prompt"] == "My mail is j***@e***.com" and stored[0]["output"] == "Noted: j***@e***.com"
    assert stored[1]["prompt"] == '[{"role": "user", "content": "hi"}]' and stored[1]["target"] == "safe"
    assert stored[2]["scores"] == {"pii_leak": 0}


def test_hash(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SALT_ENV, raising=False)
    stored = _stored(engine, TextPolicy("hash"))
    digest = hashlib.sha256(b"My mail is jane@example.com").hexdigest()
    assert stored[0]["prompt"] == f"sha256:{digest}"
    chat = hashlib.sha256(b'[{"role": "user", "content": "hi"}]').hexdigest()
    assert stored[1]["prompt"] == f"sha256:{chat}" and stored[1]["output"] == ""  # the default output: empty
    assert stored[2]["prompt"] == "" and stored[2]["output"] == ""
    with session_scope(engine) as s:  # searching clear text finds nothing
        assert samples.count_samples(s, stored[0]["run_id"], search="jane") == 0  # type: ignore[arg-type]
