"""Per-account metrics: the bounded ``account`` label (the first N accounts a series each, the
rest ``other``), the series and their counts, the Prometheus names, and the setting."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import pytest

from connector.config import load_settings
from connector.telemetry import OTHER_ACCOUNTS, AccountLabels, Telemetry

USED = "connector.sink.account.budget.used"
LIMIT = "connector.sink.account.budget.limit"
THROTTLED = "connector.sink.account.throttled"
DEAD = "connector.sink.account.dead_letters"


@dataclass
class Budget:
    """What the budget gauges read of a RateBudget."""

    used: int
    window_limit: int


def by_label(telemetry: Telemetry, name: str) -> dict[tuple[tuple[str, str], ...], int]:
    return {tuple(sorted(k)): v for k, v in telemetry.metric_points(name).items()}


def test_the_first_n_accounts_get_their_own_label_and_the_rest_other() -> None:
    labels = AccountLabels(2)
    assert [labels.label(a) for a in ("a", "b", "c", "a", "d", "b")] == [
        "a", "b", OTHER_ACCOUNTS, "a", OTHER_ACCOUNTS, "b"]
    assert len(labels) == 2  # the table never holds more than the limit


def test_a_limit_of_zero_puts_every_account_in_other_and_a_negative_one_is_refused() -> None:
    labels = AccountLabels(0)
    assert {labels.label(a) for a in ("a", "b", "c")} == {OTHER_ACCOUNTS}
    with pytest.raises(ValueError):
        AccountLabels(-1)


def test_reaching_the_limit_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    labels = AccountLabels(1, kind="hubspot-account")
    with caplog.at_level(logging.WARNING, logger="connector.telemetry"):
        for account in ("111", "222", "333", "222"):
            labels.label(account)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "telemetry.account_series_full" in lines[0]
    assert "account=222" in lines[0] and "limit=1" in lines[0]


def test_labels_are_bounded_and_stable_across_threads() -> None:
    labels = AccountLabels(50)
    seen: list[dict[str, str]] = [{} for _ in range(8)]
    start = threading.Barrier(8)

    def work(index: int) -> None:
        start.wait()
        for n in range(200):
            account = f"acct-{(n * 7 + index) % 200}"
            seen[index][account] = labels.label(account)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    own = {a for answers in seen for a, label in answers.items() if label != OTHER_ACCOUNTS}
    assert len(own) == len(labels) == 50
    for answers in seen:  # every thread got the same answer for an account
        for account, label in answers.items():
            assert label == (account if account in own else OTHER_ACCOUNTS)


def test_per_account_series_have_the_account_label_and_the_counts() -> None:
    with Telemetry.for_tests() as telemetry:
        m = telemetry.metrics
        m.watch_account_budget("111", Budget(used=40, window_limit=110))
        m.watch_account_budget("private:0123456789ab", Budget(used=3, window_limit=190))
        for _ in range(3):
            m.account_throttled("111")
        m.account_dead_letter("acct-1", "no-hubspot-install")
        m.account_dead_letter("acct-1", "no-hubspot-install")
        m.account_dead_letter("acct-2", "rejected")

        v = telemetry.metric_value
        assert v(USED, account="111") == 40 and v(LIMIT, account="111") == 110
        assert v(USED, account="private:0123456789ab") == 3
        assert v(LIMIT, account="private:0123456789ab") == 190
        assert by_label(telemetry, THROTTLED) == {(("account", "111"),): 3}
        assert by_label(telemetry, DEAD) == {
            (("account", "acct-1"), ("reason", "no-hubspot-install")): 2,
            (("account", "acct-2"), ("reason", "rejected")): 1}


def test_budgets_are_read_when_collected() -> None:
    budget = Budget(used=1, window_limit=110)
    with Telemetry.for_tests() as telemetry:
        telemetry.metrics.watch_account_budget("111", budget)
        assert telemetry.metric_value(USED, account="111") == 1
        budget.used, budget.window_limit = 90, 100  # headers said the tier changed
        assert telemetry.metric_value(USED, account="111") == 90
        assert telemetry.metric_value(LIMIT, account="111") == 100


def test_account_n_plus_one_lands_in_other_and_other_adds_up() -> None:
    with Telemetry.for_tests(account_series_limit=2) as telemetry:
        m = telemetry.metrics
        for n, account in enumerate(("111", "222", "333", "444")):
            m.watch_account_budget(account, Budget(used=10 * (n + 1), window_limit=110))
            m.account_throttled(account)
        for account in ("acct-1", "acct-2", "acct-3", "acct-4", "acct-3"):
            m.account_dead_letter(account, "rejected")

        assert by_label(telemetry, USED) == {
            (("account", "111"),): 10, (("account", "222"),): 20,
            (("account", OTHER_ACCOUNTS),): 30 + 40}
        assert telemetry.metric_value(LIMIT, account=OTHER_ACCOUNTS) == 220
        assert by_label(telemetry, THROTTLED) == {
            (("account", "111"),): 1, (("account", "222"),): 1,
            (("account", OTHER_ACCOUNTS),): 2}
        # platform accounts are bounded on their own: the hub ids took none of their places
        assert by_label(telemetry, DEAD) == {
            (("account", "acct-1"), ("reason", "rejected")): 1,
            (("account", "acct-2"), ("reason", "rejected")): 1,
            (("account", OTHER_ACCOUNTS), ("reason", "rejected")): 3}


def test_a_limit_of_zero_gives_one_series_per_metric() -> None:
    with Telemetry.for_tests(account_series_limit=0) as telemetry:
        m = telemetry.metrics
        for account in ("111", "222"):
            m.watch_account_budget(account, Budget(used=5, window_limit=110))
            m.account_throttled(account)
        assert by_label(telemetry, USED) == {(("account", OTHER_ACCOUNTS),): 10}
        assert by_label(telemetry, THROTTLED) == {(("account", OTHER_ACCOUNTS),): 2}


def test_prometheus_names_of_the_per_account_series() -> None:
    with Telemetry.for_tests(prometheus=True) as telemetry:
        m = telemetry.metrics
        m.watch_account_budget("111", Budget(used=7, window_limit=110))
        m.account_throttled("111")
        m.account_dead_letter("acct-1", "rejected")
        lines = telemetry.prometheus_text()[0].decode().splitlines()

    def value(prefix: str, *labels: str) -> str:
        [line] = [x for x in lines if x.startswith(prefix + "{")
                  and all(label in x for label in labels)]
        return line.rsplit(" ", 1)[1]

    assert value("connector_sink_account_budget_used", 'account="111"') == "7.0"
    assert value("connector_sink_account_budget_limit", 'account="111"') == "110.0"
    assert value("connector_sink_account_throttled_total", 'account="111"') == "1.0"
    assert value("connector_sink_account_dead_letters_total", 'account="acct-1"',
                 'reason="rejected"') == "1.0"


def test_telemetry_off_records_nothing_per_account() -> None:
    metrics = Telemetry.disabled().metrics
    metrics.watch_account_budget("111", Budget(used=1, window_limit=110))
    metrics.account_throttled("111")
    metrics.account_dead_letter("acct-1", "rejected")


def test_the_setting_defaults_to_100_and_bounds_the_series() -> None:
    assert load_settings({}).telemetry.account_series_limit == 100
    settings = load_settings({"CONNECTOR_TELEMETRY__ACCOUNT_SERIES_LIMIT": "1",
                              "CONNECTOR_TELEMETRY__METRICS": "prometheus"})
    telemetry = Telemetry.from_settings(settings.telemetry)
    try:
        telemetry.metrics.account_throttled("111")
        telemetry.metrics.account_throttled("222")
        text = telemetry.prometheus_text()[0].decode()
    finally:
        telemetry.shutdown()
    throttled = [line for line in text.splitlines()
                 if line.startswith("connector_sink_account_throttled_total{")]
    assert len(throttled) == 2
    assert any('account="111"' in line and line.endswith(" 1.0") for line in throttled)
    assert any('account="other"' in line and line.endswith(" 1.0") for line in throttled)
    assert 'account="222"' not in text
