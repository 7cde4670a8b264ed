"""The arithmetic of bench/sink_accounts.py: whole windows only (no figure above the limit),
the end read it keeps, nearest-rank percentiles, the backlog's size."""

from __future__ import annotations

import pytest

from bench.sink_accounts import (
    ACCOUNT_CEILING,
    HubSample,
    backlog_per_account,
    honest_rate,
    per_hub_figures,
    percentile,
    pick_end,
    summarize,
)


def test_whole_windows_divide_the_count() -> None:
    assert honest_rate(3300, 30.0) == 110.0
    assert honest_rate(3300, 29.98) == 110.0  # read a little early: still 3 windows


def test_a_read_past_the_mark_counts_one_window_more() -> None:
    # 3 windows' limit plus a burst caught 0.2 s after the mark: never above the limit.
    assert honest_rate(3300 + 110, 30.2) == pytest.approx(3410 / 40)
    assert honest_rate(3300 + 110, 30.2) <= 110.0


def test_pick_end_keeps_the_latest_read_at_or_before_the_mark() -> None:
    early, aimed, late = HubSample(29.5, 1, 1, 0), HubSample(29.99, 2, 2, 0), HubSample(
        30.01, 3, 3, 0)
    assert pick_end([early, aimed], 30.0) == aimed
    assert pick_end([early, late], 30.0) == early
    assert pick_end([late, HubSample(30.5, 4, 4, 0)], 30.0) == late


def test_percentile_is_a_measured_value() -> None:
    values = [0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 1.0]
    assert percentile(values, 10) == 0.1
    assert percentile(values, 50) == 0.5
    assert percentile(values, 100) == 1.0
    assert percentile([0.42], 10) == 0.42
    with pytest.raises(ValueError):
        percentile([], 50)


def test_summary_counts_accounts_at_the_goal() -> None:
    summary = summarize([0.95, 0.9, 0.89, 0.5])
    assert summary == {"min": 0.5, "p10": 0.5, "median": 0.89, "at_goal": 2, "accounts": 4}


def test_per_hub_figures_sum_accounts_and_flag_starved_ones() -> None:
    starts = {1: HubSample(100.0, 0, 0, 0), 2: HubSample(100.5, 1000, 10, 0)}
    ends = {1: HubSample(129.99, 33_000, 330, 0),  # the whole limit: efficiency 1.0
            2: HubSample(130.5, 17_500, 175, 2)}
    figures = per_hub_figures(starts, ends, windows=3, per_account=33_600)
    assert figures["per_account_efficiency"] == {"1": 1.0, "2": 0.5}
    assert figures["records_per_s"] == pytest.approx(1100 + 550)
    assert figures["requests_per_s"] == pytest.approx(11 + 5.5)
    assert figures["allowed_requests_per_s"] == 22
    assert figures["inputs_per_request"] == 100
    assert figures["http_429_measured"] == 2
    assert figures["starved_accounts"] == 1  # hub 1 applied 33,000 of 33,600
    assert figures["late_end_reads"] == 0


def test_backlog_covers_the_ceiling_or_the_assumed_rate() -> None:
    # 10 accounts: each could reach its ceiling; 200: the assumed rate shared.
    assert backlog_per_account(10, 1, 3, 20_000) == round(ACCOUNT_CEILING * 10 * 5 * 1.2)
    assert backlog_per_account(200, 1, 3, 20_000) == round(100 * 10 * 5 * 1.2)
    assert backlog_per_account(200, 2, 3, 20_000) == round(200 * 10 * 5 * 1.2)
