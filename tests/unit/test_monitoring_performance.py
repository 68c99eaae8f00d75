"""Live performance as labels arrive (issue #17): classification metrics against worked
values, decisions joined to labels in either order, windows closing on both watermarks,
the ratio to the reference level, Page-Hinkley on the error stream."""

from __future__ import annotations

import math

import numpy as np
import pytest

from streamsense.errors import ConfigError
from streamsense.monitoring import PageHinkley
from streamsense.monitoring.alerts import Observation
from streamsense.monitoring.classification import (
    auc_roc,
    average_precision,
    precision_recall_at,
)
from streamsense.monitoring.estimate import (
    EstimatedPerformance,
    expected_auc,
    expected_precision_recall,
)
from streamsense.monitoring.performance import PerformanceWindows

DAY = 86_400_000


def test_auc_counts_a_tie_between_classes_as_one_half() -> None:
    y = np.array([0, 0, 1, 1])
    assert auc_roc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert auc_roc(y, np.array([0.5, 0.1, 0.5, 0.9])) == pytest.approx(0.875)
    assert math.isnan(auc_roc(np.array([0, 0]), np.array([0.1, 0.2])))


def test_average_precision_is_the_stepwise_sum_over_distinct_thresholds() -> None:
    # Ranked 0.8 (hit), 0.4 (miss), 0.35 (hit), 0.1 (miss): 1/2 * 1 + 1/2 * 2/3.
    y = np.array([0, 0, 1, 1])
    assert average_precision(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(5 / 6)
    # A tie of a hit and a miss at the top counts as one threshold: precision 1/2 there.
    assert average_precision(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)
    assert math.isnan(average_precision(np.array([0, 0]), np.array([0.1, 0.2])))


def test_precision_and_recall_at_a_threshold() -> None:
    y = np.array([1, 0, 1, 0, 1])
    score = np.array([0.9, 0.8, 0.3, 0.1, 0.95])
    assert precision_recall_at(y, score, 0.5) == pytest.approx((2 / 3, 2 / 3))
    precision, recall = precision_recall_at(y, score, 0.99)
    assert math.isnan(precision) and recall == 0.0


def by(seen: list[Observation], subject: str, statistic: str = "value") -> list[float]:
    return [o.value for o in seen if o.subject == subject and o.statistic == statistic]


def test_labels_join_their_decisions_whichever_comes_first() -> None:
    windows = PerformanceWindows(DAY, thresholds=[0.5])
    windows.labels([2, 3], [1, 0], [DAY + 1, DAY + 2])  # before their decisions
    windows.decisions([1, 2, 3], [0.9, 0.7, 0.2], [0, 1, 2], [7, 7, 8])
    windows.labels([1], [1], [DAY + 3])
    assert windows.close() == []  # the decisions' watermark is still in the first day
    windows.decisions([4], [0.1], [2 * DAY], [9])
    windows.labels([4], [0], [2 * DAY + 5])
    seen = windows.close()
    assert by(seen, "auc") == [1.0]
    assert by(seen, "precision@0.5") == [1.0] and by(seen, "recall@0.5") == [1.0]
    assert {o.rows for o in seen} == {3} and {o.window_end_ms for o in seen} == {2 * DAY}


def test_windows_close_only_when_both_streams_have_passed_their_end() -> None:
    windows = PerformanceWindows(DAY)
    windows.decisions([1, 2], [0.9, 0.1], [0, 1], [1, 2])
    windows.labels([1, 2], [1, 0], [10, 11])
    windows.labels([9], [0], [3 * DAY])  # labels are ahead ...
    assert windows.close() == []  # ... but a decision of the first day may still come
    windows.decisions([9], [0.5], [3 * DAY - 1], [3])
    assert by(windows.close(), "average_precision") == [1.0]


def test_the_ratio_to_the_reference_and_the_apps_own_metric() -> None:
    def flagged_groups(y, score, groups, decided):  # type: ignore[no-untyped-def]
        return float(len(set(groups[score > 0.5].tolist())))

    windows = PerformanceWindows(
        DAY, reference={"auc": 0.8}, metrics={"flagged_groups": flagged_groups}
    )
    windows.decisions([1, 2, 3, 4], [0.9, 0.6, 0.7, 0.1], [0, 1, 2, 3], [5, 5, 6, 7])
    windows.labels([1, 2, 3, 4], [1, 0, 1, 0], [10, 11, 12, 13])
    seen = windows.flush()
    assert by(seen, "auc") == [1.0]
    assert by(seen, "auc", "vs_reference") == [pytest.approx(1.25)]
    assert by(seen, "flagged_groups") == [2.0]
    assert all(o.kind == "performance" and o.window_ms == DAY for o in seen)


def test_a_label_whose_window_closed_is_not_counted_and_old_decisions_are_forgotten() -> None:
    windows = PerformanceWindows(DAY, max_label_delay_ms=2 * DAY)
    windows.decisions([1], [0.9], [0], [1])
    windows.decisions([2], [0.1], [5 * DAY], [1])
    assert 1 not in windows._decisions  # its label was overdue
    windows.labels([2], [0], [5 * DAY + 1])
    windows.labels([3], [1], [6 * DAY])
    windows.decisions([5], [0.1], [7 * DAY], [1])
    assert by(windows.close(), "positive_rate") == [0.0]  # day 5: the one joined label
    windows.labels([2], [1], [5 * DAY + 2])  # its window has closed
    assert by(windows.flush(), "positive_rate") == []


def test_page_hinkley_sees_the_error_stream_rise() -> None:
    rng = np.random.default_rng(3)
    windows = PerformanceWindows(
        DAY, page_hinkley=PageHinkley(delta=0.005, threshold=20.0, min_samples=100)
    )
    n = 4_000
    times = np.arange(n) * (4 * DAY // n)
    y = (rng.random(n) < 0.05).astype(int)
    good = np.where(y == 1, 0.9, 0.05)
    score = np.where(times < 2 * DAY, good, 1 - good)  # from day 2 on, the model is wrong
    ids = list(range(n))
    windows.decisions(ids, score.tolist(), times.tolist(), [0] * n)
    windows.labels(ids, y.tolist(), (times + 1).tolist())
    changes = [o for o in windows.flush() if o.statistic == "page_hinkley"]
    assert changes and all(o.window_end_ms >= 2 * DAY for o in changes)
    assert changes[0].subject == "error" and changes[0].value > 20.0


def test_settings_are_checked() -> None:
    with pytest.raises(ConfigError):
        PerformanceWindows(0)


def test_expected_auc_is_the_auc_averaged_over_labels_drawn_from_the_scores() -> None:
    scores = np.array([0.2, 0.2, 0.8])
    # Every labelling, weighted by its chance: E[pairs won] / E[pairs] (ties one half).
    won = pairs = 0.0
    for labels in np.ndindex(2, 2, 2):
        y = np.array(labels)
        chance = float(np.prod(np.where(y == 1, scores, 1 - scores)))
        for i in range(3):
            for j in range(3):
                if y[i] == 1 and y[j] == 0:
                    pairs += chance
                    won += chance * float(np.sign(scores[i] - scores[j]) + 1) / 2
    assert expected_auc(scores) == pytest.approx(won / pairs)


def test_estimates_per_window_of_decision_time() -> None:
    estimate = EstimatedPerformance(DAY, thresholds=[0.5])
    assert estimate.update([0.9, 0.1, 0.6, 0.2], [0, 1, 2, 3]) == []
    seen = estimate.update([0.3], [DAY + 1])
    assert by(seen, "precision@0.5") == [pytest.approx(0.75)]
    assert by(seen, "recall@0.5") == [pytest.approx(1.5 / 1.8)]
    assert by(seen, "positive_rate") == [pytest.approx(0.45)]
    assert {o.kind for o in seen} == {"estimated_performance"}
    assert expected_precision_recall(np.array([0.1]), 0.5)[1] == 0.0
