"""The install registry on the real broker: the topic created compacted, installs written by one
instance and read whole (decrypted, latest per account, tombstones applied) by another, followed
in the background, and the encryption key rotated."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from cryptography.fernet import Fernet

from connector.config import Settings, load_settings
from connector.installs.admin import InstallAdmin
from connector.installs.model import Install
from connector.installs.registry import InstallTable, InstallTableReader, open_registry
from connector.installs.secrets import SecretCipher
from connector.installs.topic import InstallCodec
from connector.kafka.admin import topic_config

pytestmark = pytest.mark.integration

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
NOW = 1_767_225_600.0
GUARD = 30.0  # longest wait for the broker: a guard, never a timing


@pytest.fixture
def topic(kafka_admin: AdminClient) -> Iterator[str]:
    name = f"connector.installs-{uuid.uuid4().hex[:8]}"
    yield name
    for future in kafka_admin.delete_topics([name], operation_timeout=30).values():
        with contextlib.suppress(KafkaException):  # never created, or gone already
            future.result(30)


def settings(bootstrap: str, topic: str, keys: str = KEY_A) -> Settings:
    return load_settings({"CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                          "CONNECTOR_TOPICS__INSTALLS": topic,
                          "CONNECTOR_INSTALLS__ENCRYPTION_KEYS": keys})


def oauth(account: str, hub_id: int, access: str, updated_at: float = NOW) -> Install:
    return Install(platform_account=account, kind="oauth", hub_id=hub_id,
                   scopes=("oauth", "crm.objects.marketing_events.write"), status="active",
                   refresh_token=f"na1-refresh-{account}", access_token=access,
                   access_expires_at=updated_at + 1800, installed_at=NOW, updated_at=updated_at)


def test_one_instance_writes_another_reads_the_latest_of_each_account(
        kafka_bootstrap: str, kafka_admin: AdminClient, topic: str) -> None:
    with open_registry(settings(kafka_bootstrap, topic), timeout=GUARD) as first:
        assert len(first.table) == 0  # a new, empty topic is caught up at once
        config = topic_config(kafka_admin, topic)
        assert config["cleanup.policy"].value == "compact"

        first.writer.put(oauth("acct-1", 111, "access-1"))
        first.writer.put(oauth("acct-2", 111, "access-2"))  # one hub, two platform accounts
        first.writer.put(Install.private_app("acct-3", "pat-na1-static", now=NOW))
        first.writer.put(oauth("acct-1", 111, "access-1-refreshed", updated_at=NOW + 1500))
        first.writer.put(oauth("gone", 222, "access-gone"))
        first.writer.delete("gone")
        assert first.table.get("acct-1") == oauth("acct-1", 111, "access-1-refreshed",
                                                  updated_at=NOW + 1500)  # its own writes

    with open_registry(settings(kafka_bootstrap, topic), timeout=GUARD) as second:
        assert [i.platform_account for i in second.table.all()] == ["acct-1", "acct-2",
                                                                   "acct-3"]
        acct_1 = second.table.get("acct-1")
        assert acct_1 is not None
        assert (acct_1.access_token, acct_1.refresh_token, acct_1.hub_id) == (
            "access-1-refreshed", "na1-refresh-acct-1", 111)
        assert acct_1.access_expires_at == NOW + 1500 + 1800
        link = second.table.get("acct-3")
        assert link is not None and (link.kind, link.access_token) == ("private-app",
                                                                       "pat-na1-static")
        assert second.table.get("gone") is None


def test_a_following_table_sees_another_instances_writes(kafka_bootstrap: str,
                                                          topic: str) -> None:
    seen = threading.Event()

    class Watched(InstallTable):
        def put(self, install: Install, *, current_key: bool = True) -> bool:
            held = super().put(install, current_key=current_key)
            if install.platform_account == "late":
                seen.set()
            return held

    with open_registry(settings(kafka_bootstrap, topic), timeout=GUARD) as writer_side:
        codec = InstallCodec(SecretCipher([KEY_A]))
        reader = InstallTableReader(settings(kafka_bootstrap, topic).kafka, topic, codec,
                                    Watched())
        try:
            reader.catch_up(GUARD)
            reader.follow(poll_seconds=0.1)
            writer_side.writer.put(oauth("late", 333, "access-late"))
            assert seen.wait(GUARD)
            late = reader.table.get("late")
            assert late is not None and late.access_token == "access-late"
        finally:
            reader.close()


def test_the_key_is_rotated_and_an_unknown_key_names_the_accounts(kafka_bootstrap: str,
                                                                  topic: str) -> None:
    with open_registry(settings(kafka_bootstrap, topic, KEY_A), timeout=GUARD) as old:
        for n in range(3):
            old.writer.put(oauth(f"acct-{n}", 100 + n, f"access-{n}"))

    # 1. the new key first, the old one after: everything readable, all of it stale
    with open_registry(settings(kafka_bootstrap, topic, f"{KEY_B},{KEY_A}"),
                       timeout=GUARD) as both:
        assert both.table.stale() == {"acct-0", "acct-1", "acct-2"}
        report = InstallAdmin(both.table, both.writer).rotate_key()
        assert report.rewritten == ["acct-0", "acct-1", "acct-2"] and report.current == []

    # 2. the old key dropped: every install still reads, from its rotated record
    with open_registry(settings(kafka_bootstrap, topic, KEY_B), timeout=GUARD) as new:
        assert [i.access_token for i in new.table.all()] == ["access-0", "access-1",
                                                             "access-2"]
        assert new.table.unreadable() == {} and new.table.stale() == set()

    # a key that opens nothing: each account named, no crash
    other = Fernet.generate_key().decode()
    with open_registry(settings(kafka_bootstrap, topic, other), timeout=GUARD) as lost:
        assert lost.table.all() == []
        assert sorted(lost.table.unreadable()) == ["acct-0", "acct-1", "acct-2"]
        assert "is encrypted under a key that is not in" in lost.table.unreadable()["acct-0"]
