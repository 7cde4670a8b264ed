"""Optional SQLite persistence: one row per record, written after each mutating request."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key  TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
)
"""


class SqlitePersistence:
    """Stores JSON bodies keyed by (kind, key) in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def load(self) -> Iterator[tuple[str, str, Any]]:
        """Every stored (kind, key, body)."""
        for kind, key, body in self._db.execute("SELECT kind, key, body FROM records"):
            yield kind, key, json.loads(body)

    def write(
        self, upserts: Iterable[tuple[str, str, Any]], deletes: Iterable[tuple[str, str]]
    ) -> None:
        """Apply one batch of changes atomically."""
        rows = [(k, key, json.dumps(body, separators=(",", ":"))) for k, key, body in upserts]
        gone = list(deletes)
        if not rows and not gone:
            return
        with self._db:
            self._db.execute("BEGIN")
            if gone:
                self._db.executemany("DELETE FROM records WHERE kind = ? AND key = ?", gone)
            if rows:
                self._db.executemany(
                    "INSERT OR REPLACE INTO records (kind, key, body) VALUES (?, ?, ?)", rows
                )

    def clear(self) -> None:
        """Delete everything."""
        self._db.execute("DELETE FROM records")

    def close(self) -> None:
        """Close the database."""
        self._db.close()
