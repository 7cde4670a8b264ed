"""Dead letters of the sink until the dead-letter topic has them (see connector.sink.dead_letters).

A letter keeps its produce arguments until the producer confirms its delivery; only then is its
command finished (``delivered``), so no commit passes an undelivered one. A delivery that failed
for good (e.g. ``_MSG_TIMED_OUT`` after a long outage) or a full local queue is produced again at
the next ``pump``; a fatal producer error rebuilds the producer (``producer_factory``) and
produces every unconfirmed letter again.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import Any

from connector.kafka.clients import KafkaError, KafkaException
from connector.kafka.protocols import DeliveryProducer
from connector.sink.errors import DeadLetterDeliveryError
from connector.sink.work import Partition

log = logging.getLogger("connector.sink")


@dataclasses.dataclass
class _Letter:
    """A dead letter until the producer confirms it: its command and its produce arguments."""

    partition: Partition
    offset: int
    args: dict[str, Any]
    attempts: int = 0


class DeadLetterOutbox:
    """Dead letters until their delivery is confirmed; the failed ones are produced again.

    ``delivered(partition, offset)`` is called (from the producer's poll, on the caller's thread)
    once a letter is in the dead-letter topic. Nothing here blocks except :meth:`pump` with a
    timeout (a bounded ``flush``).
    """

    def __init__(self, producer: DeliveryProducer,
                 delivered: Callable[[Partition, int], None], *,
                 producer_factory: Callable[[], DeliveryProducer] | None = None) -> None:
        self.producer = producer
        self._delivered = delivered
        self._factory = producer_factory
        self._letters: dict[int, _Letter] = {}
        self._retry: list[int] = []  # ids to produce (again), in order
        self._next_id = 0
        self._fatal: KafkaError | None = None  # the producer's fatal error, until rebuilt

    def __len__(self) -> int:
        """Letters not yet confirmed."""
        return len(self._letters)

    def send(self, partition: Partition, offset: int, args: dict[str, Any]) -> None:
        """Produce a letter (or queue it, if the producer cannot take it now)."""
        letter_id = self._next_id
        self._next_id += 1
        self._letters[letter_id] = _Letter(partition, offset, args)
        self._retry.append(letter_id)
        self._produce_queued()
        self._serve(0)

    def pump(self, timeout: float = 0.0) -> None:
        """Produce the queued letters again and serve delivery callbacks (``flush`` for at most
        ``timeout`` seconds when > 0)."""
        if not self._letters:
            return
        if self._fatal is not None:
            self._rebuild()
        self._produce_queued()
        self._serve(timeout)

    def drop_partitions(self, keys: list[Partition]) -> None:
        """Forget the letters of revoked partitions: their next owner replays the commands."""
        gone = {i for i, letter in self._letters.items() if letter.partition in keys}
        for letter_id in gone:
            del self._letters[letter_id]
        self._retry = [i for i in self._retry if i not in gone]

    def _produce_queued(self) -> None:
        while self._retry and self._fatal is None:
            letter_id = self._retry[0]
            letter = self._letters.get(letter_id)
            if letter is not None:
                try:
                    self.producer.produce(**letter.args,
                                          on_delivery=functools.partial(self._on_delivery,
                                                                        letter_id))
                except BufferError:
                    return  # the local queue is full: produced at a later pump
                except KafkaException as exc:
                    error = exc.args[0] if exc.args else None
                    log.warning("sink.dead_letter_produce_failed topic=%s error=%s",
                                letter.args.get("topic"), exc)
                    if error is not None and getattr(error, "fatal", lambda: False)():
                        self._fatal = error
                    return
                letter.attempts += 1
            self._retry.pop(0)

    def _serve(self, timeout: float) -> None:
        try:
            if timeout > 0:
                self.producer.flush(timeout)
            else:
                self.producer.poll(0)
        except KafkaException as exc:
            log.warning("sink.dead_letter_poll_failed error=%s", exc)

    def _on_delivery(self, letter_id: int, error: KafkaError | None, _message: Any) -> None:
        letter = self._letters.get(letter_id)
        if letter is None:
            return  # its partition was revoked
        if error is None:
            del self._letters[letter_id]
            self._delivered(letter.partition, letter.offset)
            return
        log.warning("sink.dead_letter_undelivered partition=%s offset=%s attempts=%s "
                    "error=%s retry=next-interval", letter.partition[1], letter.offset,
                    letter.attempts, error)
        if getattr(error, "fatal", lambda: False)():
            self._fatal = error
        if letter_id not in self._retry:
            self._retry.append(letter_id)

    def _rebuild(self) -> None:
        """A fatal producer error: a new producer, every unconfirmed letter produced again."""
        if self._factory is None:
            raise DeadLetterDeliveryError(
                f"the dead-letter producer failed fatally ({self._fatal}) and cannot be "
                "rebuilt; offsets are not committed past the undelivered dead letters")
        log.error("sink.dead_letter_producer_rebuilt error=%s undelivered=%s", self._fatal,
                  len(self._letters))
        self.producer = self._factory()
        self._fatal = None
        self._retry = sorted(self._letters)
