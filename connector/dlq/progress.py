"""Which dead letters were already redriven, kept as the offsets of a consumer group.

Kafka topics are append-only, so a redrive cannot remove what it resent. Instead, after a
successful redrive, the group `connector-dlq-redrive-<dlq topic>` commits per partition:

- the offset: every record below it has been redriven (the usual consumer-group meaning), and
- the commit metadata: the redriven offsets at or above it (`v1:12-15,18`), for the records a
  filtered redrive sent while skipping earlier ones.

So a redrive of `--reason A` followed by one of `--reason B` sends each record once, and records a
filter left out stay pending. `--from-start` ignores this (and sends again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

METADATA_VERSION = "v1:"
#: Kafka's default offset.metadata.max.bytes is 4096.
MAX_METADATA_CHARS = 4000


def redrive_group(dlq_topic: str) -> str:
    """The consumer group whose offsets record what was redriven from `dlq_topic`."""
    return f"connector-dlq-redrive-{dlq_topic}"


class ProgressError(ValueError):
    """The progress cannot be recorded (the metadata would be too large)."""


@dataclass(frozen=True)
class PartitionProgress:
    """Redriven records of one dead-letter partition."""

    watermark: int = 0
    done: frozenset[int] = frozenset()

    def is_redriven(self, offset: int) -> bool:
        return offset < self.watermark or offset in self.done

    def advance(self, sent: Iterable[int], scanned: Iterable[int]) -> PartitionProgress:
        """After sending `sent`, having read every record offset in `scanned` (ascending, from at
        most the watermark to the end): the watermark moves to the first record not redriven."""
        done = self.done | frozenset(sent)
        watermark = self.watermark
        for offset in sorted(scanned):
            if offset < watermark:
                continue
            if offset not in done:
                break
            watermark = offset + 1
        return PartitionProgress(watermark, frozenset(o for o in done if o >= watermark))

    def metadata(self) -> str:
        """The commit metadata: `v1:` and the redriven offsets above the watermark as ranges."""
        return METADATA_VERSION + ",".join(
            f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in _ranges(sorted(self.done)))

    @classmethod
    def from_commit(cls, offset: int, metadata: str | None) -> PartitionProgress:
        """From a committed offset (negative: none) and its metadata (unknown forms ignored)."""
        watermark = max(offset, 0)
        done: set[int] = set()
        if metadata and metadata.startswith(METADATA_VERSION):
            for part in metadata[len(METADATA_VERSION):].split(","):
                lo, _, hi = part.partition("-")
                if lo.isdigit() and (not hi or hi.isdigit()):
                    done.update(range(int(lo), int(hi or lo) + 1))
        return cls(watermark, frozenset(o for o in done if o >= watermark))

    def check(self) -> None:
        if len(self.metadata()) > MAX_METADATA_CHARS:
            raise ProgressError(
                f"the redriven offsets above {self.watermark} make {len(self.done)} scattered "
                "records, too many to record in the group's commit metadata; redrive the records "
                "a filter left out first (or redrive without filters)")


#: A dead-letter topic's redrive progress: partition -> its :class:`PartitionProgress`.
RedriveProgress = dict[int, PartitionProgress]


def _ranges(offsets: list[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for offset in offsets:
        if out and out[-1][1] + 1 == offset:
            out[-1] = (out[-1][0], offset)
        else:
            out.append((offset, offset))
    return out
