"""Parity statistics with known answers, pairing of items, and the rows stored for a parity run."""

from __future__ import annotations

import math

import pytest

from gemmawatch.dashboard.tables import PARITY_COLUMNS, parity_disagreements_frame
from gemmawatch.errors import RunFailedError
from gemmawatch.evals.parity import ItemPrediction, compare, mcnemar_exact_p, parity_stats


def _closed_form_mcnemar(b: int, c: int) -> float:
    """Exact two-sided binomial test at 1/2: twice the smaller tail, capped at 1."""
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@pytest.mark.parametrize(
    ("a_only", "b_only", "expected"),
    [(1, 6, 0.125), (0, 5, 0.0625), (6, 1, 0.125), (3, 3, 1.0), (0, 0, 1.0), (2, 10, 0.0385742)],
)
def test_mcnemar_exact_p_known_values(a_only: int, b_only: int, expected: float) -> None:
    p = mcnemar_exact_p(a_only, b_only)
    assert p == pytest.approx(expected, abs=1e-6)
    if a_only + b_only:
        assert p == pytest.approx(_closed_form_mcnemar(a_only, b_only))


def test_stats_of_ten_items_with_two_disagreements() -> None:
    gold = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    pred_a = [0, 1, 2, 3, 0, 1, 2, 3, 1, 2]  # 8/10 right
    pred_b = [0, 1, 2, 3, 0, 1, 2, 0, 0, 2]  # 8/10 right: misses item 7, fixes item 8
    s = parity_stats(pred_a, pred_b, gold)
    assert (s.n, s.agreement, s.acc_a, s.acc_b, s.acc_diff) == (10, 0.8, 0.8, 0.8, 0.0)
    assert s.agreement_ci == pytest.approx((0.490, 0.943), abs=1e-3)  # Wilson 8/10
    assert s.acc_a_ci == s.acc_b_ci == s.agreement_ci
    assert (s.a_only, s.b_only, s.mcnemar_p) == (1, 1, 1.0)
    lo, hi = s.acc_diff_ci
    assert -0.3 <= lo < 0.0 < hi <= 0.3  # two discordant items of opposite sign


def test_identical_predictions_agree_fully_with_a_zero_difference() -> None:
    gold, preds = [0, 1, 2, 3] * 5, [0, 1, 2, 0] * 5
    s = parity_stats(preds, list(preds), gold)
    assert (s.agreement, s.acc_diff, s.acc_diff_ci, s.mcnemar_p) == (1.0, 0.0, (0.0, 0.0), 1.0)
    assert s.agreement_ci[1] == 1.0 and s.agreement_ci[0] == pytest.approx(0.8389, abs=1e-4)  # Wilson 20/20


def test_paired_bootstrap_resamples_items_jointly() -> None:
    # 40 items, B fixes one item A got wrong and otherwise answers the same. The paired
    # difference per item is 39 zeros and one +1, so resampled means are k/40 with
    # k ~ Binomial(40, 1/40): the interval is about [0, 0.075], far narrower than the
    # difference of two independent accuracy intervals would be.
    gold = [0] * 40
    pred_a = [0] * 20 + [1] * 20
    pred_b = [0] * 21 + [1] * 19
    s = parity_stats(pred_a, pred_b, gold)
    assert s.acc_diff == pytest.approx(1 / 40)
    lo, hi = s.acc_diff_ci
    assert lo == 0.0 and 0.05 <= hi <= 0.075
    assert (s.a_only, s.b_only) == (0, 1) and s.mcnemar_p == 1.0
    naive_width = (s.acc_b_ci[1] - s.acc_b_ci[0]) + (s.acc_a_ci[1] - s.acc_a_ci[0])
    assert hi - lo < naive_width / 5


def test_empty_and_misaligned_input() -> None:
    s = parity_stats([], [], [])
    assert s.n == 0 and math.isnan(s.agreement) and math.isnan(s.acc_diff_ci[0]) and s.mcnemar_p == 1.0
    with pytest.raises(ValueError, match="aligned"):
        parity_stats([0], [0, 1], [0])


def _pred(task: str, doc_id: int, pred: int, gold: int = 0, lls: tuple[float, ...] = (-1.0, -2.0)) -> ItemPrediction:
    return ItemPrediction(
        task=task,
        doc_id=doc_id,
        item_id=f"{task}-{doc_id}",
        prompt=f"Question: q{doc_id}?\nAnswer:",
        choices=("yes", "no"),
        gold=gold,
        pred=pred,
        loglikelihoods=lls,
    )


def test_compare_pairs_by_task_and_doc_and_builds_rows() -> None:
    side_a = [_pred("t1", 0, 0), _pred("t1", 1, 0), _pred("t2", 0, 1, gold=1)]
    side_b = [_pred("t2", 0, 0, gold=1, lls=(-1.5, -2.0)), _pred("t1", 1, 0), _pred("t1", 0, 0)]  # other order
    outcome = compare(side_a, side_b)
    assert outcome.stats.n == 3 and outcome.stats.agreement == pytest.approx(2 / 3)
    assert (outcome.stats.acc_a, outcome.stats.acc_b, outcome.stats.a_only) == (1.0, pytest.approx(2 / 3), 1)
    (diff,) = outcome.disagreements()
    assert diff == {
        "task": "t2",
        "doc_id": 0,
        "item_id": "t2-0",
        "question": "Question: q0?\nAnswer:",
        "gold": "no",
        "answer_a": "no",
        "answer_b": "yes",
        "correct_a": True,
        "correct_b": False,
    }
    gap = outcome.loglikelihood_gap()
    assert gap == {"mean_abs_ll_diff": pytest.approx(0.5 / 6), "max_abs_ll_diff": 0.5}

    summary = outcome.summary()
    assert {"agreement", "n", "acc_a", "acc_b", "acc_diff", "ci", "mcnemar_p"} <= set(summary)
    assert summary["ci"] == list(outcome.stats.acc_diff_ci)

    metrics = {m["metric"]: m for m in outcome.metric_rows()}
    assert set(metrics) == {"agreement", "acc_a", "acc_b", "acc_diff", "mcnemar_p"}
    assert all(m["task"] == "parity" and m["producer"] == "gemmawatch.parity" and m["n"] == 3 for m in metrics.values())
    assert metrics["agreement"]["ci_low"] == pytest.approx(outcome.stats.agreement_ci[0])
    assert metrics["acc_diff"]["details"]["sign"] == "acc_b - acc_a"
    assert metrics["mcnemar_p"]["ci_low"] is None and metrics["mcnemar_p"]["details"]["a_only"] == 1

    samples = outcome.sample_rows()
    assert [(r["task"], r["doc_id"]) for r in samples] == [("t1", 0), ("t1", 1), ("t2", 0)]
    last = samples[-1]
    assert last["output"] == "A: no | B: yes" and last["target"] == "no"
    assert {k: last["scores"][k] for k in ("pred_a", "pred_b", "gold", "agree")} == {
        "pred_a": 1,
        "pred_b": 0,
        "gold": 1,
        "agree": 0.0,
    }
    frame = parity_disagreements_frame(samples)  # what the dashboard lists
    assert list(frame.columns) == PARITY_COLUMNS
    assert frame.to_dict("records") == [
        {
            "task": "t2",
            "doc_id": 0,
            "item": "t2-0",
            "prompt": "Question: q0?\nAnswer:",
            "answer_a": "no",
            "answer_b": "yes",
            "gold": "no",
        }
    ]


def test_compare_refuses_different_item_sets() -> None:
    with pytest.raises(RunFailedError, match="answered different items"):
        compare([_pred("t1", 0, 0), _pred("t1", 1, 0)], [_pred("t1", 0, 0)])
