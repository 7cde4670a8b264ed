"""Settings: defaults from the contract, env over file, clear errors, secrets never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.config import load_settings
from connector.errors import ConfigError
from connector.serde.codec import Framing


def test_defaults_follow_the_platform_contract() -> None:
    settings = load_settings({})
    assert settings.topics.activity == "webinar.activity"
    assert settings.topics.webinars == "webinar.webinars"
    assert settings.topics.dlq_for("webinar.activity") == "webinar.activity.dlq"
    assert settings.serde.activity_framing is Framing.RAW
    assert settings.normalizer.rejoin_grace_seconds == 600


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[kafka]\nbootstrap_servers = "a:1"\nclient_id = "from-file"\n'
                    '[serde]\nactivity_framing = "single-object"\n')
    settings = load_settings({"CONNECTOR_KAFKA__BOOTSTRAP_SERVERS": "b:2"}, file)
    assert settings.kafka.bootstrap_servers == "b:2"
    assert settings.kafka.client_id == "from-file"
    assert settings.serde.activity_framing is Framing.SINGLE_OBJECT


def test_config_file_from_environment(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[sink]\nmax_inputs_per_request = 50\n')
    assert load_settings({"CONNECTOR_CONFIG_FILE": str(file)}).sink.max_inputs_per_request == 50


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("CONNECTOR_SERDE__ACTIVITY_FRAMING", "avro", "'raw', 'single-object' or 'confluent'"),
    ("CONNECTOR_KAFKA__BOOTSTRAP_SERVERS", "localhost", "host:port"),
    ("CONNECTOR_SINK__MAX_INPUTS_PER_REQUEST", "0", "greater than 0"),
    ("CONNECTOR_SERDE__SCHEMA_REGISTRY_URL", "ftp://x", "http://"),
    ("CONNECTOR_KAFKA__BOOTSTRAP_SERVER", "a:1", "Extra inputs are not permitted"),
])
def test_bad_value_names_the_setting_and_what_is_valid(name: str, value: str,
                                                       expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({name: value})
    assert name in str(info.value) and expected in str(info.value)


def test_malformed_variable_name_is_explained() -> None:
    with pytest.raises(ConfigError, match="CONNECTOR_<SECTION>__<FIELD>"):
        load_settings({"CONNECTOR_KAFKA": "x"})


def test_missing_or_broken_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({}, tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings({}, broken)


def test_secrets_are_masked_when_printed_and_in_errors() -> None:
    settings = load_settings({"CONNECTOR_HUBSPOT__ACCESS_TOKEN": "pat-na1-secret",
                              "CONNECTOR_HUBSPOT__CLIENT_SECRET": "cs-secret",
                              "CONNECTOR_KAFKA__SASL_PASSWORD": "kafka-secret"})
    printed = json.dumps(settings.masked()) + repr(settings) + str(settings)
    for secret in ("pat-na1-secret", "cs-secret", "kafka-secret"):
        assert secret not in printed
    assert settings.kafka.client_config()["sasl.password"] == "kafka-secret"
    with pytest.raises(ConfigError) as info:
        load_settings({"CONNECTOR_HUBSPOT__ACCESS_TOKEN": "pat-x",
                       "CONNECTOR_HUBSPOT__APP_ID": "-5"})
    assert "pat-x" not in str(info.value)


def test_settings_are_frozen() -> None:
    settings = load_settings({})
    with pytest.raises(Exception, match="frozen"):
        settings.kafka.bootstrap_servers = "x:1"  # type: ignore[misc]


def test_map_settings_take_json_from_the_environment() -> None:
    settings = load_settings({"CONNECTOR_KAFKA__EXTRA": '{"socket.keepalive.enable": "true"}'})
    assert settings.kafka.client_config()["socket.keepalive.enable"] == "true"
    with pytest.raises(ConfigError, match="CONNECTOR_KAFKA__EXTRA: expected a JSON object"):
        load_settings({"CONNECTOR_KAFKA__EXTRA": "{nope"})


def test_the_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    settings = load_settings({})
    for section in type(settings).model_fields:
        for name in type(getattr(settings, section)).model_fields:
            assert f"CONNECTOR_{section.upper()}__{name.upper()}" in readme


APP_MODE = {"CONNECTOR_HUBSPOT__MODE": "app", "CONNECTOR_HUBSPOT__CLIENT_ID": "client-id",
            "CONNECTOR_HUBSPOT__CLIENT_SECRET": "client-secret-value",
            "CONNECTOR_HUBSPOT__REDIRECT_URL": "https://c.example.com/hubspot/oauth/callback",
            "CONNECTOR_INSTALLS__ENCRYPTION_KEYS": "A" * 43 + "=",
            "CONNECTOR_INSTALLS__STATE_SECRET": "state-secret-0123456789",
            "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": "link-secret-0123456789"}


def test_app_mode_needs_the_install_link_secret_next_to_the_state_secret() -> None:
    settings = load_settings(APP_MODE)
    assert settings.installs.install_link_secret is not None
    assert settings.installs.install_link_secret.get_secret_value() == "link-secret-0123456789"
    without = {k: v for k, v in APP_MODE.items() if k != "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET"}
    with pytest.raises(ConfigError) as info:
        load_settings(without)
    assert "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET" in str(info.value)
    assert "CONNECTOR_INSTALLS__STATE_SECRET" not in str(info.value)
    assert "link-secret" not in str(info.value) and "client-secret-value" not in str(info.value)
    # private-app mode needs none of it
    assert load_settings({}).installs.install_link_secret is None


def test_the_install_link_secret_is_16_characters_and_never_shown() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"CONNECTOR_INSTALLS__INSTALL_LINK_SECRET": "too-short-123"})
    assert "CONNECTOR_INSTALLS__INSTALL_LINK_SECRET" in str(info.value)
    assert "16 characters" in str(info.value) and "too-short-123" not in str(info.value)
    settings = load_settings(APP_MODE)
    printed = json.dumps(settings.masked()) + repr(settings)
    assert "link-secret-0123456789" not in printed
