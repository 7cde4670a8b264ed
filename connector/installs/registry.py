"""The install registry on Kafka: a table every instance reads whole, and the writer.

Like the webinar table (connector.runtime.table) and a Kafka Streams GlobalKTable: each instance
reads *all* partitions of the compacted ``connector.installs`` topic from the beginning (assign,
no group, no commits) until it is caught up, then keeps following it on a background thread of
its own (:meth:`InstallTableReader.follow`), so a new install, a refresh written by another
instance or an unlink reaches every instance within a poll. :class:`InstallTable` is the state:
thread-safe, read by any thread.

During the catch-up the reader keeps only the latest raw value per account and decodes those at
the end: a log of many superseded records (refreshes every ~25 minutes per account until
compaction) costs one decryption per account, not one per record.

:class:`InstallWriter` writes installs (and tombstones) with an idempotent producer and waits
for each write's confirmation, bounded in time (:class:`InstallWriteFailed` after). It creates
the topic, compacted, when it is missing. :func:`open_registry` builds all three from settings.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from connector.config import Settings
from connector.errors import ConfigError
from connector.installs.errors import InstallError, InstallUnreadable, InstallWriteFailed
from connector.installs.model import Install
from connector.installs.secrets import KEYS_SETTING, SecretCipher
from connector.installs.topic import InstallCodec, install_topic
from connector.kafka import clients
from connector.kafka.admin import ensure_topics
from connector.kafka.clients import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from connector.kafka.lifecycle import close_within
from connector.kafka.protocols import ConsumerClient, DeliveryProducer
from connector.kafka.reader import is_partition_eof

log = logging.getLogger(__name__)

#: How long a write waits for the broker's confirmation.
FLUSH_TIMEOUT_SECONDS = 10.0
#: How long start-up waits for the table to reach the end of the topic.
CATCH_UP_SECONDS = 30.0


class InstallTable:
    """platform account -> its latest install; safe to read and write from any thread.

    A record older (``updated_at``) than the one held is ignored: a late write of a superseded
    version (a key rotation racing a refresh) never takes the table back.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, Install] = {}
        self._unreadable: dict[str, str] = {}
        self._stale: set[str] = set()

    def get(self, platform_account: str) -> Install | None:
        """The install of ``platform_account``, None if it has none; raises
        :class:`InstallUnreadable` when its latest record could not be read."""
        with self._lock:
            install = self._rows.get(platform_account)
            if install is None and platform_account in self._unreadable:
                raise InstallUnreadable(platform_account, self._unreadable[platform_account])
            return install

    def all(self) -> list[Install]:
        """Every readable install, by platform account."""
        with self._lock:
            return [self._rows[account] for account in sorted(self._rows)]

    def unreadable(self) -> dict[str, str]:
        """Platform accounts whose latest record could not be read, with the reason."""
        with self._lock:
            return dict(self._unreadable)

    def stale(self) -> set[str]:
        """Platform accounts whose secrets are not under the first key (to rotate)."""
        with self._lock:
            return set(self._stale)

    def put(self, install: Install, *, current_key: bool = True) -> bool:
        """Hold ``install`` unless an install updated later is held; True when held."""
        account = install.platform_account
        with self._lock:
            held = self._rows.get(account)
            if held is not None and held.updated_at > install.updated_at:
                return False
            self._rows[account] = install
            self._unreadable.pop(account, None)
            if current_key:
                self._stale.discard(account)
            else:
                self._stale.add(account)
            return True

    def remove(self, platform_account: str) -> bool:
        """Forget ``platform_account`` (a tombstone); True when it was held."""
        with self._lock:
            self._unreadable.pop(platform_account, None)
            self._stale.discard(platform_account)
            return self._rows.pop(platform_account, None) is not None

    def mark_unreadable(self, platform_account: str, reason: str) -> None:
        """The latest record of ``platform_account`` could not be read."""
        with self._lock:
            self._rows.pop(platform_account, None)
            self._stale.discard(platform_account)
            self._unreadable[platform_account] = reason

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)


def apply_record(table: InstallTable, codec: InstallCodec, key: bytes | None,
                 value: bytes | None) -> str | None:
    """Apply one registry record to ``table``; the platform account it changed (None for a
    record without a key, or an older version ignored). Never raises for a bad record: it is
    marked unreadable, naming the account."""
    if not key:
        return None
    account = key.decode("utf-8", "replace")
    if value is None:
        return account if table.remove(account) else None
    try:
        decoded = codec.decode(key, value)
    except InstallUnreadable as exc:
        table.mark_unreadable(account, exc.reason)
        return account
    return account if table.put(decoded.install, current_key=decoded.current_key) else None


class InstallTableReader:
    """Keeps an :class:`InstallTable` up to date from the whole registry topic.

    :meth:`catch_up` (on the caller's thread) reads to the end; :meth:`follow` then polls on a
    daemon thread of its own until :meth:`close`. Never poll from two threads at once.
    """

    def __init__(self, source: clients.Source, topic: str, codec: InstallCodec,
                 table: InstallTable | None = None) -> None:
        self.table = table if table is not None else InstallTable()
        self._topic = topic
        self._codec = codec
        # Assigned, never committed: librdkafka requires a group id all the same.
        self._consumer: ConsumerClient = clients.read_committed_consumer(
            source, clients.unique_group_id("installs-table"), {
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": 50,  # the end of a partition is known sooner (see table.py)
            })
        metadata = self._consumer.list_topics(topic, timeout=30).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            self._consumer.close()
            raise InstallError(f"the install registry topic {topic} does not exist (any "
                               f"`connector accounts` command or the install flow creates it)")
        self._partitions = set(metadata.partitions)
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                               for p in self._partitions])
        self._at_end: set[int] = set()
        self._pending: dict[bytes, bytes | None] | None = {}  # raw latest values until caught up
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def caught_up(self) -> bool:
        """Every partition was read to its end at least once."""
        return self._pending is None

    def poll(self, timeout: float = 0.0, max_records: int = 1000) -> list[str]:
        """Read what is available; the platform accounts whose install changed."""
        changed: list[str] = []
        for message in self._consumer.consume(max_records, timeout):
            error = message.error()
            if error is not None:
                if is_partition_eof(error):
                    self._at_end.add(message.partition() or 0)
                else:
                    log.warning("installs_table_error topic=%s error=%s", self._topic, error)
                continue
            key = message.key()
            if self._pending is not None:
                if key:
                    self._pending[key] = message.value()
                continue
            account = apply_record(self.table, self._codec, key, message.value())
            if account is not None:
                changed.append(account)
        if self._pending is not None and self._at_end >= self._partitions:
            changed += self._apply_pending()
        return changed

    def _apply_pending(self) -> list[str]:
        pending, self._pending = self._pending or {}, None
        changed = [account for key, value in pending.items()
                   if (account := apply_record(self.table, self._codec, key, value)) is not None]
        for account, reason in sorted(self.table.unreadable().items()):
            log.warning("install_unreadable account=%s reason=%s", account, reason)
        log.info("installs_table_loaded topic=%s installs=%s unreadable=%s", self._topic,
                 len(self.table), len(self.table.unreadable()))
        return changed

    def catch_up(self, timeout: float = CATCH_UP_SECONDS) -> None:
        """Read until every partition reached its end; :class:`InstallError` if it did not
        within ``timeout`` seconds (a partial table would route accounts as not installed)."""
        deadline = time.monotonic() + timeout
        while not self.caught_up:
            if time.monotonic() >= deadline:
                raise InstallError(f"reading the install registry {self._topic} did not reach "
                                   f"its end within {timeout:.0f}s")
            self.poll(0.05)

    def follow(self, poll_seconds: float = 0.5) -> None:
        """Keep reading on a daemon thread (``installs-table``) until :meth:`close`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, args=(poll_seconds,),
                                        name="installs-table", daemon=True)
        self._thread.start()

    def _run(self, poll_seconds: float) -> None:
        while not self._stop.is_set():
            try:
                self.poll(poll_seconds)
            except Exception as exc:  # a reader that dies silently would freeze every route
                log.warning("installs_table_poll_failed topic=%s error=%s", self._topic, exc)
                self._stop.wait(1.0)

    def close(self) -> None:
        """Stop following and close the consumer (each bounded in time)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        close_within(self._consumer.close, 10.0, "installs-table")


class InstallWriter:
    """Writes installs and tombstones to the registry topic, each confirmed or an error.

    Thread-safe (several accounts' refreshes may write at once). ``table``: written installs
    are also put there once confirmed, so this instance reads its own writes at once.
    """

    def __init__(self, producer: DeliveryProducer, topic: str, codec: InstallCodec, *,
                 table: InstallTable | None = None,
                 flush_timeout: float = FLUSH_TIMEOUT_SECONDS) -> None:
        self._producer = producer
        self._topic = topic
        self._codec = codec
        self._table = table
        self._flush_timeout = flush_timeout

    @classmethod
    def create(cls, source: clients.Source, topic: str, codec: InstallCodec, *,
               table: InstallTable | None = None, ensure_topic: bool = True,
               flush_timeout: float = FLUSH_TIMEOUT_SECONDS) -> InstallWriter:
        """An idempotent producer's writer; creates ``topic`` (compacted) when missing."""
        if ensure_topic:
            try:
                ensure_topics(source, [install_topic(topic)])
            except KafkaException as exc:
                raise InstallError(f"the install registry topic {topic} could not be "
                                   f"created: {exc.args[0]}") from exc
        producer = clients.producer(source, {"linger.ms": 5})
        return cls(producer, topic, codec, table=table, flush_timeout=flush_timeout)

    def put(self, install: Install) -> None:
        """Write ``install`` (its secrets encrypted under the first key)."""
        self._write(install.platform_account, self._codec.encode(install))
        if self._table is not None:
            self._table.put(install)

    def delete(self, platform_account: str) -> None:
        """Write the tombstone of ``platform_account`` (unlink)."""
        self._write(platform_account, None)
        if self._table is not None:
            self._table.remove(platform_account)

    def _write(self, account: str, value: bytes | None) -> None:
        done = threading.Event()
        outcome: list[KafkaError | None] = []

        def delivered(error: KafkaError | None, _message: object) -> None:
            outcome.append(error)
            done.set()

        try:
            self._producer.produce(topic=self._topic, key=InstallCodec.key(account), value=value,
                                   on_delivery=delivered)
        except (KafkaException, BufferError) as exc:
            raise InstallWriteFailed(f"writing the install of {account!r} to {self._topic} "
                                     f"failed: {exc}", account=account) from exc
        left = self._producer.flush(self._flush_timeout)
        # Nothing left in flight but no callback yet: another thread's flush is serving it.
        if not done.is_set() and (left > 0 or not done.wait(self._flush_timeout)):
            raise InstallWriteFailed(f"writing the install of {account!r} to {self._topic} was "
                                     f"not confirmed within {self._flush_timeout:.0f}s",
                                     account=account)
        if outcome[0] is not None:
            raise InstallWriteFailed(f"writing the install of {account!r} to {self._topic} "
                                     f"failed: {outcome[0]}", account=account)

    def close(self) -> None:
        """Wait (bounded) for anything still in flight."""
        self._producer.flush(self._flush_timeout)


def cipher_from(settings: Settings) -> SecretCipher:
    """The cipher of ``[installs] encryption_keys``; ConfigError when it is not set."""
    keys = settings.installs.encryption_keys
    if keys is None:
        raise ConfigError(f"{KEYS_SETTING} ([installs] encryption_keys) is required for the "
                          f"install registry: one or more Fernet keys separated by commas")
    return SecretCipher.from_setting(keys.get_secret_value())


@dataclass
class Registry:
    """The registry of one process: the table (caught up), its reader and the writer."""

    table: InstallTable
    reader: InstallTableReader
    writer: InstallWriter

    def close(self) -> None:
        self.reader.close()
        self.writer.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_registry(settings: Settings, *, follow: bool = False,
                  timeout: float = CATCH_UP_SECONDS) -> Registry:
    """The registry as ``settings`` name it: the topic created if missing, the table read to
    its end, and (``follow``) kept up to date on a background thread."""
    codec = InstallCodec(cipher_from(settings))
    table = InstallTable()
    topic = settings.topics.installs
    writer = InstallWriter.create(settings.kafka, topic, codec, table=table)
    try:
        reader = InstallTableReader(settings.kafka, topic, codec, table)
    except KafkaException as exc:
        raise InstallError(f"reading the install registry {topic} failed: {exc.args[0]}") from exc
    try:
        reader.catch_up(timeout)
    except BaseException:
        reader.close()
        raise
    if follow:
        reader.follow()
    return Registry(table, reader, writer)
