"""AccountShares: an account beyond its share is skipped from that offset on in the partition
(the first skipped offset is the floor no commit passes); once it holds half its share, the
partition is sought back and the account's records, and only those, are taken again, each once.
"""

from __future__ import annotations

from collections import Counter

import pytest

from connector.sink.shares import AccountShares, Decision

P0, P1 = ("commands", 0), ("commands", 1)


class Held(Counter[str]):
    def __call__(self, account: str) -> int:
        return self[account]


def shares(max_held: int = 4) -> tuple[AccountShares, Held, list[tuple[tuple[str, int], int]]]:
    held, seeks = Held(), []

    def rewind(key: tuple[str, int], offset: int) -> bool:
        seeks.append((key, offset))
        return True

    return AccountShares(max_held, held, rewind), held, seeks


def test_an_account_at_its_share_is_skipped_from_that_offset_on() -> None:
    s, held, seeks = shares()
    held["slow"] = 4
    assert s.decide(P0, "fast", 10) is Decision.TAKE
    assert s.decide(P0, "slow", 11) is Decision.FLOOR
    held["slow"] = 0  # even once it drained: every later record of it there is skipped ...
    assert s.decide(P0, "slow", 12) is Decision.SKIP
    assert s.decide(P1, "slow", 3) is Decision.TAKE  # ... in that partition only
    assert s.decide(P0, "fast", 13) is Decision.TAKE
    assert s.skipping == 1 and seeks == []


def test_half_a_share_rewinds_to_the_floor_and_takes_only_the_accounts_records_once() -> None:
    s, held, seeks = shares()
    held["slow"] = 4
    assert s.decide(P0, "slow", 11) is Decision.FLOOR
    held["slow"] = 3
    s.release()
    assert seeks == []  # more than half its share: not yet
    held["slow"] = 2
    s.release()
    assert seeks == [(P0, 11)] and s.rereading(P0) and s.skipping == 0
    # read again: the account's records from the floor; nobody else's, nothing below it
    assert [s.again(P0, a, o) for a, o in [("fast", 10), ("slow", 10), ("slow", 11),
                                          ("fast", 12), ("slow", 12), (None, 13)]] == [
        False, False, True, False, True, False]
    assert [s.again(P0, "slow", o) for o in (11, 12, 13)] == [False, False, True]  # once each


def test_a_second_rewind_seeks_to_the_lowest_offset_any_reread_still_needs() -> None:
    s, held, seeks = shares()
    held["a"] = held["b"] = 4
    assert s.decide(P0, "a", 5) is Decision.FLOOR
    assert s.decide(P0, "b", 8) is Decision.FLOOR
    held["a"] = 0
    s.release()
    assert seeks == [(P0, 5)]
    assert s.again(P0, "a", 5) and s.again(P0, "a", 6)  # a's re-read got to 7 ...
    held["b"] = 0
    s.release()  # ... when b is released: seek to a's 7, not to b's 8, or a loses 7
    assert seeks == [(P0, 5), (P0, 7)]
    assert [s.again(P0, "a", 7), s.again(P0, "b", 7), s.again(P0, "b", 8)] == [
        True, False, True]


def test_an_account_skipped_again_while_read_again_waits_for_its_next_release() -> None:
    s, held, seeks = shares()
    held["slow"] = 4
    assert s.decide(P0, "slow", 11) is Decision.FLOOR
    held["slow"] = 0
    s.release()
    assert s.again(P0, "slow", 11)
    held["slow"] = 4
    assert s.decide(P0, "slow", 11) is Decision.FLOOR  # full again at once
    assert not s.again(P0, "slow", 12)  # skipped, behind its new floor
    held["slow"] = 0
    s.release()
    assert seeks == [(P0, 11), (P0, 11)] and s.again(P0, "slow", 11)


def test_revoked_partitions_are_forgotten_and_a_share_must_be_positive() -> None:
    s, held, _ = shares()
    held["slow"] = 4
    s.decide(P0, "slow", 1)
    s.forget([P0])
    assert s.skipping == 0 and not s.rereading(P0)
    with pytest.raises(ValueError):
        AccountShares(0, held, lambda key, offset: True)


def test_a_refused_seek_keeps_the_account_skipping_until_the_next_release() -> None:
    held, answers = Held(), [False, True]
    s = AccountShares(4, held, lambda key, offset: answers.pop(0))
    held["slow"] = 4
    assert s.decide(P0, "slow", 11) is Decision.FLOOR
    held["slow"] = 0
    s.release()  # refused
    assert s.skipping == 1 and not s.rereading(P0)
    assert s.decide(P0, "slow", 12) is Decision.SKIP
    s.release()
    assert s.skipping == 0 and s.again(P0, "slow", 11)
