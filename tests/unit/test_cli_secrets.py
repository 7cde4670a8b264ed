"""Secret settings are registered for log masking by every command, not only `connector accounts`:
protect_secrets covers every SecretStr setting, every command reaches settings through
settings_from (which calls it), and a command outside `accounts` shows it."""

from __future__ import annotations

import ast
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from pydantic import BaseModel, SecretStr

from connector.cli import main
from connector.cli.common import protect_secrets, secret_settings
from connector.config import Settings, load_settings
from connector.telemetry.logs import redact

CLI = Path(__file__).resolve().parents[2] / "connector" / "cli"


def secret_fields() -> list[tuple[str, str]]:
    """(section, field) of every SecretStr setting."""
    found = []
    for section, info in Settings.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        for name, field in model.model_fields.items():
            if "SecretStr" in str(field.annotation):
                found.append((section, name))
    return found


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}"


def every_secret_env() -> tuple[dict[str, str], dict[str, str]]:
    """An environment setting every secret to a fresh value; and the values to look for (the
    encryption keys one by one)."""
    key_1, key_2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env: dict[str, str] = {}
    for section, name in secret_fields():
        variable = f"CONNECTOR_{section.upper()}__{name.upper()}"
        env[variable] = (f"{key_1},{key_2}" if name == "encryption_keys"
                         else unique(f"{section}-{name}"))
    wanted = {k: v for k, v in env.items() if not k.endswith("ENCRYPTION_KEYS")}
    wanted |= {"key 1": key_1, "key 2": key_2}
    return env, wanted


def assert_masked(values: dict[str, str]) -> None:
    for what, value in values.items():
        assert value not in redact(f"event value={value} tail"), what


def test_the_secret_settings_include_the_install_and_app_secrets() -> None:
    names = set(secret_fields())
    assert {("installs", "encryption_keys"), ("installs", "state_secret"),
            ("installs", "install_link_secret"), ("hubspot", "client_secret")} <= names
    env, _wanted = every_secret_env()
    listed = {s.get_secret_value() for s in secret_settings(load_settings(env))
              if isinstance(s, SecretStr)}
    assert listed == set(env.values())  # every SecretStr setting, none forgotten


def test_protect_secrets_masks_every_secret_and_each_encryption_key() -> None:
    env, wanted = every_secret_env()
    protect_secrets(load_settings(env))
    assert_masked(wanted)


def test_only_settings_from_loads_settings_in_the_cli() -> None:
    # so every command gets protect_secrets before it can log (the demo calls it itself)
    callers = []
    for path in sorted(CLI.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id == "load_settings"):
                callers.append(path.name)
    assert callers == ["common.py"]


@pytest.mark.parametrize("args", [["serve", "--port", "0"], ["accounts", "install-link", "a"]])
def test_a_command_registers_the_secrets_before_it_works(args: list[str]) -> None:
    env, wanted = every_secret_env()
    # serve fails on the missing app id after loading settings (exit 2); install-link succeeds
    result = CliRunner().invoke(main, args, env={**env, "CONNECTOR_TELEMETRY__METRICS": "none"})
    assert result.exit_code in (0, 2), result.output
    assert_masked(wanted)
    for value in wanted.values():
        assert value not in result.output
