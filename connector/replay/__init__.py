"""Replay: move a consumer group's offsets (with the normalizer's state), or backfill a range.

    spec.py      parsing what operators type (datetimes, durations, topic specs, offsets files)
    plan.py      reset targets per partition, clamped to [low, high]; the dry-run table (pure)
    cluster.py   what replay asks Kafka (groups, watermarks, offsets by time, commits, reads)
    state.py     the normalizer state as of an offset: rebuilt, truncated, committed atomically
    reset.py     `connector replay reset`: plan_reset (dry run) and execute_reset
    backfill_plan.py  what a backfill will do (ranges, temporary topics and groups) and did
    backfill.py  `connector replay backfill`: a bounded re-run through temporary topics/groups
    run.py       the cluster connection around an operation; a backfill SIGINT/SIGTERM stop
    progress.py  a progress bar with rate and ETA on a terminal, plain lines otherwise
    errors.py    ReplayError and its subclasses, each naming what to do instead

The CLI is connector.cli.replay (`replay_group`): it parses options and prints; run.py and the
modules above do the work.
"""

from connector.replay.backfill import Backfill
from connector.replay.backfill_plan import BackfillPlan, plan_backfill
from connector.replay.errors import (
    GroupActiveError,
    OffsetCommitError,
    ReplayError,
    UnknownGroupError,
    UnknownTopicError,
)
from connector.replay.reset import ResetPlan, ResetRequest, execute_reset, plan_reset

__all__ = [
    "Backfill",
    "BackfillPlan",
    "GroupActiveError",
    "OffsetCommitError",
    "ReplayError",
    "ResetPlan",
    "ResetRequest",
    "UnknownGroupError",
    "UnknownTopicError",
    "execute_reset",
    "plan_backfill",
    "plan_reset",
]
