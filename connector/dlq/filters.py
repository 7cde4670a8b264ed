"""Which dead letters an operator means: parsing `--since`, `--status`, ... and matching records.

Pure: the current time is passed in, and so is how a record's platform account is found
(`account_of`, connector.dlq.account: the header, else the decoded value). A value that cannot be
parsed raises `FilterError` whose message says what a valid value looks like (the CLI turns it
into a usage error, exit 2).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from connector.dlq.envelope import H_BACKFILL, H_HTTP_STATUS, H_REASON, H_TIME
from connector.dlq.record import DeadLetterRecord

_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"(\d+)([smhdw])")
_STATUS_CLASS = re.compile(r"([1-5])xx", re.IGNORECASE)
_RECORD = re.compile(r"(\d+):(\d+)")
_EPOCH_MS_DIGITS = 12  # 12+ digits: epoch milliseconds (from 2001-09-09 on), as headers carry

TIME_EXAMPLES = "an ISO-8601 time (2026-01-01, 2026-01-01T10:00Z, 2026-01-01T10:00:00+02:00), " \
                "a duration ago (90s, 15m, 1h, 2d, 1w, 1h30m) or epoch milliseconds"


#: The platform account of a dead letter, None when it cannot be told (the value does not decode).
AccountOf = Callable[[DeadLetterRecord], str | None]


class FilterError(ValueError):
    """A filter value cannot be parsed or makes no sense; the message shows a valid form."""


class Verdict(Enum):
    """Whether a dead letter is selected; NO_ACCOUNT: every other criterion matches, but an
    --account filter cannot tell whose it is (never selected, counted as undecodable)."""

    MATCH = "match"
    NO_MATCH = "no-match"
    NO_ACCOUNT = "no-account"


def parse_duration_ms(text: str) -> int | None:
    """`1h30m` -> 5_400_000; None when `text` is not a duration."""
    compact = text.strip().lower()
    if not compact or _DURATION.sub("", compact):
        return None
    return sum(int(n) * _UNITS_MS[unit] for n, unit in _DURATION.findall(compact))


def parse_time_ms(text: str, now_ms: int) -> int:
    """An absolute time or a duration ago, as epoch milliseconds (a time without zone is UTC)."""
    value = text.strip()
    duration = parse_duration_ms(value)
    if duration is not None:
        return now_ms - duration
    if value.isdigit() and len(value) >= _EPOCH_MS_DIGITS:
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{text!r} is not a time: expected {TIME_EXAMPLES}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def parse_status(text: str) -> tuple[int, int]:
    """`429` -> (429, 429); `5xx` -> (500, 599): an inclusive range of HTTP statuses."""
    value = text.strip()
    if value.isdigit() and 100 <= int(value) <= 599:
        return int(value), int(value)
    match = _STATUS_CLASS.fullmatch(value)
    if match:
        base = int(match.group(1)) * 100
        return base, base + 99
    raise FilterError(f"{text!r} is not an HTTP status: expected a number from 100 to 599 "
                      "(e.g. 429) or a class such as 4xx or 5xx")


def parse_record(text: str) -> tuple[int, int]:
    """`0:12` -> (partition 0, offset 12) of the dead-letter topic."""
    match = _RECORD.fullmatch(text.strip())
    if match is None:
        raise FilterError(f"{text!r} is not a record position: expected PARTITION:OFFSET, "
                          "e.g. 0:12")
    return int(match.group(1)), int(match.group(2))


def format_ms(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds, e.g. 2026-01-01T10:00:00.000Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class RecordFilter:
    """The selection: every given criterion must match; several values of one criterion OR."""

    reasons: frozenset[str] = frozenset()
    statuses: tuple[tuple[int, int], ...] = ()
    webinars: frozenset[str] = frozenset()
    records: frozenset[tuple[int, int]] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None
    #: platform accounts (externalAccountId / accountId)
    accounts: frozenset[str] = frozenset()
    #: backfill ids (connector.errors.backfill): dead letters of those backfills' runs
    backfills: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, *, now_ms: int, reasons: tuple[str, ...] = (), statuses: tuple[str, ...] = (),
              webinars: tuple[str, ...] = (), records: tuple[str, ...] = (),
              since: str | None = None, until: str | None = None,
              accounts: tuple[str, ...] = (), backfills: tuple[str, ...] = ()) -> RecordFilter:
        """From option values; raises FilterError naming the option that is wrong."""
        since_ms = _option_time("--since", since, now_ms)
        until_ms = _option_time("--until", until, now_ms)
        if since_ms is not None and since_ms > now_ms:
            raise FilterError(f"--since {since} is in the future ({format_ms(since_ms)}, now is "
                              f"{format_ms(now_ms)}): dead letters cannot come from there")
        if since_ms is not None and until_ms is not None and since_ms > until_ms:
            raise FilterError(f"--since {since} ({format_ms(since_ms)}) is after --until {until} "
                              f"({format_ms(until_ms)})")
        try:
            parsed_statuses = tuple(parse_status(s) for s in statuses)
        except FilterError as exc:
            raise FilterError(f"--status: {exc}") from None
        try:
            parsed_records = frozenset(parse_record(r) for r in records)
        except FilterError as exc:
            raise FilterError(f"--record: {exc}") from None
        if any(not w for w in webinars):
            raise FilterError("--webinar: expected a webinarId (the record key), got ''")
        if any(not a.strip() for a in accounts):
            raise FilterError("--account: expected a platform account id (a command's "
                              "externalAccountId, a record's accountId), got ''")
        if any(not b.strip() for b in backfills):
            raise FilterError("--backfill: expected a backfill id (connector.errors.backfill, "
                              "as `connector replay backfill` printed it), got ''")
        return cls(frozenset(reasons), parsed_statuses, frozenset(webinars), parsed_records,
                   since_ms, until_ms, frozenset(a.strip() for a in accounts),
                   frozenset(b.strip() for b in backfills))

    @property
    def is_everything(self) -> bool:
        return self == RecordFilter()

    def matches(self, record: DeadLetterRecord, account_of: AccountOf | None = None) -> bool:
        """Does this dead letter belong to the selection?"""
        return self.verdict(record, account_of) is Verdict.MATCH

    def verdict(self, record: DeadLetterRecord, account_of: AccountOf | None = None) -> Verdict:
        """Whether the selection takes this dead letter. The account is looked up last, and only
        with an --account filter: the cheap header criteria first, so fewer values are decoded.
        `account_of` is required when the filter has accounts."""
        if not self._matches_headers(record):
            return Verdict.NO_MATCH
        if not self.accounts:
            return Verdict.MATCH
        if account_of is None:
            raise ValueError("an --account filter needs account_of to find a record's account")
        account = account_of(record)
        if account is None:
            return Verdict.NO_ACCOUNT
        return Verdict.MATCH if account in self.accounts else Verdict.NO_MATCH

    def _matches_headers(self, record: DeadLetterRecord) -> bool:
        headers = record.header_map
        if self.reasons and headers.get(H_REASON) not in self.reasons:
            return False
        if self.backfills and headers.get(H_BACKFILL) not in self.backfills:
            return False
        if self.statuses:
            status = _int_or_none(headers.get(H_HTTP_STATUS))
            if status is None or not any(lo <= status <= hi for lo, hi in self.statuses):
                return False
        if self.webinars and record.key_text not in self.webinars:
            return False
        if self.records and (record.partition, record.offset) not in self.records:
            return False
        if self.since_ms is not None or self.until_ms is not None:
            when = failure_time_ms(record)
            if when is None:
                return False
            if self.since_ms is not None and when < self.since_ms:
                return False
            if self.until_ms is not None and when > self.until_ms:
                return False
        return True


def failure_time_ms(record: DeadLetterRecord) -> int | None:
    """When the record was dead-lettered: its Kafka timestamp, else the `connector.errors.time`
    header."""
    if record.timestamp_ms is not None:
        return record.timestamp_ms
    return _int_or_none(record.header_map.get(H_TIME))


def _option_time(option: str, text: str | None, now_ms: int) -> int | None:
    if text is None:
        return None
    try:
        return parse_time_ms(text, now_ms)
    except FilterError as exc:
        raise FilterError(f"{option}: {exc}") from None


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
