"""The install table (records applied, older versions ignored, unreadable ones named) and the
writer (confirmed writes, failures as errors), without a broker."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector.installs.admin import InstallAdmin
from connector.installs.errors import (
    InstallExists,
    InstallNotFound,
    InstallUnreadable,
    InstallWriteFailed,
)
from connector.installs.registry import InstallTable, InstallWriter, apply_record
from connector.installs.secrets import SecretCipher
from connector.installs.topic import TOPIC_CONFIG, InstallCodec, install_topic
from tests.unit.installs_helpers import KEY_A, KEY_B, NOW, FakeClock, MemoryWriter, oauth_install

CODEC_A = InstallCodec(SecretCipher([KEY_A]))


def test_records_tombstones_and_older_versions() -> None:
    table = InstallTable()
    v1 = oauth_install("acct-1", access="t1", updated_at=NOW)
    v2 = oauth_install("acct-1", access="t2", updated_at=NOW + 60)

    assert apply_record(table, CODEC_A, b"acct-1", CODEC_A.encode(v1)) == "acct-1"
    assert apply_record(table, CODEC_A, b"acct-1", CODEC_A.encode(v2)) == "acct-1"
    assert apply_record(table, CODEC_A, b"acct-1", CODEC_A.encode(v1)) is None  # older: ignored
    assert table.get("acct-1") == v2
    assert apply_record(table, CODEC_A, None, b"{}") is None  # no key: nothing
    assert apply_record(table, CODEC_A, b"acct-1", None) == "acct-1"  # tombstone
    assert table.get("acct-1") is None
    assert apply_record(table, CODEC_A, b"acct-1", None) is None  # nothing left to remove
    assert len(table) == 0


def test_an_unreadable_record_names_its_account_and_a_later_one_mends_it() -> None:
    table = InstallTable()
    only_b = InstallCodec(SecretCipher([KEY_B]))
    apply_record(table, only_b, b"acct-1", CODEC_A.encode(oauth_install("acct-1")))
    apply_record(table, only_b, b"acct-2", only_b.encode(oauth_install("acct-2")))

    with pytest.raises(InstallUnreadable, match="'acct-1'"):
        table.get("acct-1")
    assert list(table.unreadable()) == ["acct-1"]
    assert [i.platform_account for i in table.all()] == ["acct-2"]  # the others are fine

    apply_record(table, only_b, b"acct-1", only_b.encode(oauth_install("acct-1")))
    assert table.get("acct-1") is not None and table.unreadable() == {}


def test_the_table_knows_which_installs_to_rotate() -> None:
    table = InstallTable()
    rotating = InstallCodec(SecretCipher([KEY_B, KEY_A]))
    apply_record(table, rotating, b"old", CODEC_A.encode(oauth_install("old")))
    apply_record(table, rotating, b"new", rotating.encode(oauth_install("new")))
    assert table.stale() == {"old"}


def test_the_topic_is_compacted() -> None:
    spec = install_topic("connector.installs")
    assert (spec.name, spec.partitions, spec.config["cleanup.policy"]) == (
        "connector.installs", 1, "compact")
    assert spec.config == TOPIC_CONFIG and spec.config is not TOPIC_CONFIG


class FakeProducer:
    """A DeliveryProducer that confirms, fails, or never answers."""

    def __init__(self, outcome: str = "ok") -> None:
        self.outcome = outcome
        self.records: list[tuple[str, bytes | None, bytes | None]] = []
        self.pending: list[Any] = []

    def produce(self, *, topic: str, on_delivery: Any, key: Any = None, value: Any = None,
                headers: Any = None) -> None:
        if self.outcome == "full":
            raise BufferError("queue full")
        self.records.append((topic, key, value))
        self.pending.append(on_delivery)

    def poll(self, timeout: float, /) -> int:
        return 0

    def flush(self, timeout: float, /) -> int:
        if self.outcome == "silent":
            return len(self.pending)
        for callback in self.pending:
            callback("broker says no" if self.outcome == "error" else None, None)
        self.pending.clear()
        return 0


def test_the_writer_writes_keyed_records_and_tombstones_and_echoes_to_its_table() -> None:
    producer = FakeProducer()
    table = InstallTable()
    writer = InstallWriter(producer, "connector.installs", CODEC_A, table=table)
    install = oauth_install("acct-1", access="secret-access-token")

    writer.put(install)
    writer.delete("acct-2")

    (topic, key, value), (_, key2, value2) = producer.records
    assert (topic, key, key2, value2) == ("connector.installs", b"acct-1", b"acct-2", None)
    assert value is not None and b"secret-access-token" not in value
    assert CODEC_A.decode(b"acct-1", value).install == install
    assert table.get("acct-1") == install


@pytest.mark.parametrize(("outcome", "message"), [
    ("error", "failed: broker says no"),
    ("full", "failed: queue full"),
    ("silent", "not confirmed within 10s"),
])
def test_a_write_that_fails_is_an_error_naming_the_account(outcome: str, message: str) -> None:
    table = InstallTable()
    writer = InstallWriter(FakeProducer(outcome), "connector.installs", CODEC_A, table=table)
    with pytest.raises(InstallWriteFailed, match=message) as info:
        writer.put(oauth_install("acct-1"))
    assert info.value.account == "acct-1"
    assert table.get("acct-1") is None  # nothing echoed that the broker did not confirm


# --------------------------------------------------------------------------- admin (CLI logic)


def admin_with(*installs: Any) -> tuple[InstallAdmin, MemoryWriter, FakeClock]:
    table = InstallTable()
    for install in installs:
        table.put(install)
    writer = MemoryWriter(table)
    clock = FakeClock(NOW + 100)
    return InstallAdmin(table, writer, clock=clock), writer, clock


def test_link_refuses_to_replace_unless_asked_and_keeps_the_token_single_line() -> None:
    admin, writer, _ = admin_with(oauth_install("acct-1"))
    with pytest.raises(InstallExists, match="--replace"):
        admin.link_private_app("acct-1", "pat-na1-x")
    with pytest.raises(Exception, match="one word"):
        admin.link_private_app("acct-2", "pat na1")
    linked = admin.link_private_app("acct-1", " pat-na1-xyz\n", hub_id=42, replace=True)
    assert (linked.kind, linked.access_token, linked.hub_id, linked.updated_at) == (
        "private-app", "pat-na1-xyz", 42, NOW + 100)
    assert writer.written == [linked]


def test_revoke_unlink_and_show() -> None:
    admin, writer, _ = admin_with(oauth_install("acct-1"))
    revoked = admin.revoke("acct-1")
    assert (revoked.status, revoked.revoked_reason, revoked.updated_at) == (
        "revoked", "revoked-by-operator", NOW + 100)
    assert admin.revoke("acct-1") == revoked and len(writer.written) == 1  # already: no write
    assert admin.show("acct-1") == revoked
    admin.unlink("acct-1")
    assert writer.deleted == ["acct-1"]
    with pytest.raises(InstallNotFound):
        admin.show("acct-1")
    with pytest.raises(InstallNotFound):
        admin.unlink("acct-1")


def test_an_unreadable_install_can_still_be_unlinked_or_replaced() -> None:
    admin, writer, _ = admin_with()
    writer.table.mark_unreadable("acct-1", "key gone")
    with pytest.raises(InstallUnreadable):
        admin.link_private_app("acct-1", "pat-na1-x")
    admin.link_private_app("acct-1", "pat-na1-x", replace=True)
    writer.table.mark_unreadable("acct-1", "key gone")
    admin.unlink("acct-1")
    assert writer.deleted == ["acct-1"]


def test_rotate_key_rewrites_only_what_is_not_under_the_first_key() -> None:
    table = InstallTable()
    rotating = InstallCodec(SecretCipher([KEY_B, KEY_A]))
    for account, codec in (("old-1", CODEC_A), ("old-2", CODEC_A), ("new", rotating)):
        apply_record(table, rotating, account.encode(), codec.encode(oauth_install(account)))
    table.mark_unreadable("lost", "under a key not configured")
    producer = FakeProducer()
    admin = InstallAdmin(table, InstallWriter(producer, "t", rotating, table=table))

    report = admin.rotate_key()

    assert (report.rewritten, report.current) == (["old-1", "old-2"], ["new"])
    assert report.unreadable == {"lost": "under a key not configured"}
    assert [key for _, key, _ in producer.records] == [b"old-1", b"old-2"]
    for _, key, value in producer.records:  # now readable with the new key alone
        assert value is not None
        only_b = InstallCodec(SecretCipher([KEY_B]))
        assert only_b.decode(key or b"", value).install.updated_at == NOW  # unchanged
        assert json.loads(value)["platformAccount"] == (key or b"").decode()
    assert table.stale() == set()
    assert admin.rotate_key().rewritten == []  # nothing left to do
