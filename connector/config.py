"""Frozen, validated settings: one section per concept.

Sources, later wins: built-in defaults < an optional TOML file < environment variables.
Environment variables are named `CONNECTOR_<SECTION>__<FIELD>`, e.g.
`CONNECTOR_KAFKA__BOOTSTRAP_SERVERS`, `CONNECTOR_SERDE__ACTIVITY_FRAMING`. The TOML file has one
table per section (`[kafka]`, `[serde]`, ...). Only connector.cli passes the real environment in.

Secrets are `SecretStr`: they print as `**********` everywhere, including `check-config`.
"""

from __future__ import annotations

import base64
import json
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.errors import ConfigError
from connector.kafka.settings import KafkaSettings
from connector.serde.settings import SerdeSettings

ENV_PREFIX = "CONNECTOR_"
ENV_NESTING = "__"
CONFIG_FILE_ENV = "CONNECTOR_CONFIG_FILE"

PositiveInt = Annotated[int, Field(gt=0)]
PositiveFloat = Annotated[float, Field(gt=0)]


class Section(BaseModel):
    """Base of every settings section: frozen, unknown keys rejected (typos fail loudly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class TopicSettings(Section):
    """Topic names; the platform's defaults come from its contract."""

    activity: str = "webinar.activity"
    webinars: str = "webinar.webinars"
    commands: str = "connector.commands"
    commands_dlq: str = "connector.commands.dlq"
    #: The install registry (app mode): compacted, key = platform account (connector.installs).
    installs: str = "connector.installs"
    #: Dead letters of a source topic go to `<source topic><dlq_suffix>`.
    dlq_suffix: str = ".dlq"

    def dlq_for(self, topic: str) -> str:
        """The dead-letter topic of `topic`."""
        return f"{topic}{self.dlq_suffix}"


class ListAssociation(Section):
    """HubSpot lists the marketing event of some webinars joins: one webinar, or every webinar
    of one account (`[[hubspot.list_associations]]` in the TOML file)."""

    webinar_id: str | None = None
    account_id: str | None = None
    #: ILS list ids ("List IDs for API integrations" in HubSpot's UI).
    list_ids: tuple[str, ...] = Field(min_length=1)

    @field_validator("list_ids", mode="before")
    @classmethod
    def _ids_as_text(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):  # list_ids = [123] is as clear as ["123"]
            return tuple(str(item).strip() if isinstance(item, int | str) else item
                         for item in value)
        return value

    @field_validator("list_ids")
    @classmethod
    def _non_empty_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not item for item in value):
            raise ValueError("list ids must not be empty")
        return value

    @model_validator(mode="after")
    def _one_selector(self) -> ListAssociation:
        if (self.webinar_id is None) == (self.account_id is None):
            raise ValueError("give exactly one of webinar_id or account_id")
        return self


#: The marketing-events scopes an app asks for by default (writing needs the write scope).
MARKETING_EVENT_SCOPES = ("crm.objects.marketing_events.read",
                          "crm.objects.marketing_events.write")


def _scope_list(value: Any) -> Any:
    """Scopes from the environment: a JSON array, or names separated by spaces or commas."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f'expected a JSON array of scopes or names separated by spaces '
                                 f'({exc.msg})') from None
        return tuple(part for part in text.replace(",", " ").split() if part)
    return value


def _http_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value


class HubSpotSettings(Section):
    """The HubSpot app the connector writes as."""

    base_url: str = "https://api.hubapi.com"
    access_token: SecretStr | None = None
    app_id: PositiveInt | None = None
    client_secret: SecretStr | None = None
    request_timeout_seconds: PositiveFloat = 10.0
    #: private-app: one token (access_token) for every platform account, as before.
    #: app: a public app; each platform account writes to the HubSpot account that installed it
    #: (the install registry, [installs]).
    mode: Literal["private-app", "app"] = "private-app"
    #: The public app's OAuth client id (app mode; its secret is client_secret).
    client_id: str | None = None
    #: The app's redirect URL, as registered in HubSpot: `connector serve`'s OAuth callback.
    redirect_url: str | None = None
    #: HubSpot's authorize page (the sandbox serves one at <its URL>/oauth/authorize).
    authorize_url: str = "https://app.hubspot.com/oauth/authorize"
    #: Scopes the install asks for (JSON array, or names separated by spaces).
    scopes: tuple[str, ...] = MARKETING_EVENT_SCOPES
    #: Scopes asked for if the installing account has them (dropped silently otherwise).
    optional_scopes: tuple[str, ...] = ()
    #: Lists each created event is associated with; from the environment a JSON array, e.g.
    #: [{"account_id": "acct-1", "list_ids": ["123"]}, {"webinar_id": "w-9", "list_ids": ["7"]}].
    list_associations: tuple[ListAssociation, ...] = ()

    @field_validator("scopes", "optional_scopes", mode="before")
    @classmethod
    def _scopes(cls, value: Any) -> Any:
        return _scope_list(value)

    @field_validator("redirect_url", "authorize_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return _http_url(value)

    @field_validator("list_associations", mode="before")
    @classmethod
    def _json_array(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f'expected a JSON array, e.g. [{{"account_id": "a", '
                                 f'"list_ids": ["123"]}}] ({exc.msg})') from None
        return value


class NormalizerSettings(Section):
    """The attendance normalizer (platform activity -> HubSpot commands)."""

    group_id: str = "webinar-hubspot-normalizer"
    #: Stream time after a person's last Left before their attendance counts as closed.
    rejoin_grace_seconds: PositiveInt = 600
    #: Wall-clock idle time after which a quiet partition's stream time is advanced.
    idle_punctuation_seconds: PositiveInt = 30
    #: How long state of an ended webinar is kept (for late records and corrections).
    ended_retention_hours: PositiveInt = 72
    #: Activity further than this before the scheduled start / after the end is dead-lettered.
    max_days_before_start: PositiveInt = 365
    max_days_after_end: PositiveInt = 30
    #: Stable per instance (defaults to the host name): a restarted instance with the same id
    #: fences its predecessor's open transaction at once instead of waiting for it to time out.
    instance_id: str = Field(default_factory=socket.gethostname)
    #: Records per transaction at most (one transaction commits commands, changelog and
    #: offsets). A person changed several times in one transaction is written to the changelog
    #: once, so larger transactions write fewer changelog records per activity
    #: (docs/performance.md). A quiet topic commits what it has after 0.1 s anyway.
    max_records_per_transaction: Annotated[int, Field(gt=0, le=100_000)] = 20_000
    transaction_timeout_ms: Annotated[int, Field(ge=1000)] = 30_000
    #: Partitions of topics the normalizer creates (commands, changelogs, dead letters) when
    #: they do not exist; 0 = as many as the activity topic has.
    partitions: Annotated[int, Field(ge=0)] = 0


class SinkSettings(Section):
    """The sink worker (commands -> HubSpot)."""

    group_id: str = "webinar-hubspot-sink"
    max_inputs_per_request: Annotated[int, Field(gt=0, le=1000)] = 100
    linger_ms: Annotated[int, Field(ge=0)] = 200
    #: Commands held at most while the rate budget is spent (groups keep filling until then);
    #: at this many the sink pauses its partitions. A replay's commands touch every webinar at
    #: once, so this bounds how full its requests get, and memory grows with it
    #: (docs/performance.md; bench/sink_backlog.py ranks bounds).
    max_buffered_commands: PositiveInt = 100_000
    #: App mode: commands one platform account may hold; beyond it the account's records stay
    #: in Kafka and are read again once it holds half of it (connector.sink.shares), so one
    #: slow or throttled account never fills max_buffered_commands for everybody.
    max_held_per_account: PositiveInt = 20_000
    #: Requests per rolling window for this app (HubSpot: 100-250 per 10 s depending on tier).
    window_limit: PositiveInt = 100
    window_seconds: PositiveInt = 10
    daily_limit: PositiveInt = 250_000
    retry_budget_seconds: PositiveFloat = 900.0
    #: Requests in flight together at most (one thread each; the sink keeps about rate x
    #: HubSpot's latency in flight, up to this). 1: one at a time, on the consumer's thread.
    max_in_flight: Annotated[int, Field(ge=1, le=256)] = 64


class ReplaySettings(Section):
    """`connector replay backfill`."""

    #: Commands a backfill holds at most while it plans their order (connector.replay.planned):
    #: a range with more is planned in several passes over the commands, never more in memory.
    plan_held_commands: PositiveInt = 200_000


class TelemetrySettings(Section):
    """Traces, metrics and logs (connector.telemetry)."""

    enabled: bool = True
    service_name: str = "webinar-hubspot-connector"
    traces: Literal["none", "console", "otlp"] = "none"
    metrics: Literal["none", "prometheus", "otlp", "console"] = "prometheus"
    otlp_endpoint: str = "http://localhost:4318"
    otlp_headers: SecretStr | None = None
    #: Share of records without a sampled trace context that start a trace.
    trace_sample_ratio: Annotated[float, Field(ge=0, le=1)] = 0.01
    metric_export_interval_seconds: PositiveFloat = 30.0
    lag_interval_seconds: PositiveFloat = 5.0
    #: Send traceparent to HubSpot (useful against the sandbox only).
    propagate_to_hubspot: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False
    #: A worker with work (lag or work in hand) and no progress for this long is stalled:
    #: logged, /healthz 503, gauge connector.worker.stalled (connector.telemetry.progress).
    stall_after_seconds: PositiveFloat = 120.0
    #: `connector run` serves /metrics and /healthz on this port (0 = off).
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 0
    metrics_host: str = "0.0.0.0"
    #: Accounts with series of their own in the per-account metrics (connector.sink.account.*);
    #: later ones share account="other", so a metric has at most this + 1 series per process
    #: (connector.telemetry.accounts). 0: every account is "other".
    account_series_limit: Annotated[int, Field(ge=0)] = 100


class ServeSettings(Section):
    """`connector serve`: HubSpot's event-details callback, health checks and metrics."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8080
    #: scheme://host[:port][/prefix] HubSpot calls, when a proxy in front of serve changes it
    #: (TLS termination, a path prefix): signatures cover the URL HubSpot called. None = the URL
    #: as serve sees it (Host header, X-Forwarded-Proto from trusted proxies).
    public_url: str | None = None
    #: How often /readyz's Kafka check asks the cluster for its metadata.
    kafka_check_seconds: PositiveFloat = 15.0

    @field_validator("public_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL, e.g. https://connector.example.com")
        return value.rstrip("/") if value is not None else None


def _fernet_keys(value: SecretStr | None) -> SecretStr | None:
    """One or more Fernet keys separated by commas (32 bytes, URL-safe base64 each)."""
    if value is None:
        return None
    keys = [key.strip() for key in value.get_secret_value().split(",")]
    if not any(keys):
        raise ValueError("expected one or more Fernet keys separated by commas")
    for position, key in enumerate(keys, 1):
        try:
            raw = base64.urlsafe_b64decode(key.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise ValueError(
                f"key {position} of {len(keys)} is not a Fernet key (32 bytes, URL-safe base64; "
                f"make one with: python -c 'from cryptography.fernet import Fernet; "
                f"print(Fernet.generate_key().decode())')")
    return value


class InstallsSettings(Section):
    """The install registry of app mode (connector.installs): encryption, install flow, tokens."""

    #: Fernet keys, comma-separated: the first encrypts, every one decrypts. Rotation: put a new
    #: key first, run `connector accounts rotate-key`, then drop the old key.
    encryption_keys: SecretStr | None = None
    #: Signs the OAuth `state` of the install flow (HMAC-SHA256); 16 characters at least.
    state_secret: SecretStr | None = None
    #: Shared with the webinar platform, which signs each customer's install link with it
    #: (HMAC-SHA256, connector.installs.links); 16 characters at least.
    install_link_secret: SecretStr | None = None
    #: An access token is refreshed when it expires within this many seconds.
    refresh_margin_seconds: Annotated[int, Field(ge=0, le=1500)] = 300
    #: How long an install link (its signed `state`) stays valid.
    state_ttl_seconds: PositiveInt = 600

    @field_validator("encryption_keys")
    @classmethod
    def _keys(cls, value: SecretStr | None) -> SecretStr | None:
        return _fernet_keys(value)

    @field_validator("state_secret", "install_link_secret")
    @classmethod
    def _hmac_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("expected 16 characters at least (a random string of 32 or more "
                             "is better)")
        return value


#: What app mode cannot run without: (section, field, why).
APP_MODE_NEEDS = (
    ("hubspot", "client_id", "the app's OAuth client id"),
    ("hubspot", "client_secret", "the app's OAuth client secret"),
    ("hubspot", "redirect_url", "the app's redirect URL, as registered in HubSpot"),
    ("installs", "encryption_keys", "encrypts the tokens in the install registry"),
    ("installs", "state_secret", "signs the install flow's state"),
    ("installs", "install_link_secret", "verifies the install links the platform signs"),
)


class Settings(Section):
    """Every section of the connector's configuration."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    serde: SerdeSettings = Field(default_factory=SerdeSettings)
    hubspot: HubSpotSettings = Field(default_factory=HubSpotSettings)
    normalizer: NormalizerSettings = Field(default_factory=NormalizerSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    installs: InstallsSettings = Field(default_factory=InstallsSettings)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)

    @model_validator(mode="after")
    def _app_mode_complete(self) -> Settings:
        if self.hubspot.mode != "app":
            return self
        missing = [f"{ENV_PREFIX}{section.upper()}{ENV_NESTING}{name.upper()} ({why})"
                   for section, name, why in APP_MODE_NEEDS
                   if getattr(getattr(self, section), name) is None]
        if missing:
            raise ValueError(f"{ENV_PREFIX}HUBSPOT{ENV_NESTING}MODE=app needs "
                             + "; ".join(missing))
        return self

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets masked (safe to print)."""
        return self.model_dump(mode="json")


def env_overrides(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Nested overrides from `CONNECTOR_<SECTION>__<FIELD>` variables (others are ignored)."""
    nested: dict[str, dict[str, Any]] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_FILE_ENV:
            continue
        section, sep, key = name[len(ENV_PREFIX):].lower().partition(ENV_NESTING)
        if not sep or not key:
            raise ConfigError(f"{name}: expected the form CONNECTOR_<SECTION>__<FIELD>, "
                              f"e.g. CONNECTOR_KAFKA__BOOTSTRAP_SERVERS")
        # Map-valued settings (e.g. CONNECTOR_KAFKA__EXTRA) take a JSON object.
        nested.setdefault(section, {})[key] = _json_object(name, value) \
            if value.lstrip().startswith("{") else value
    return nested


def _json_object(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name}: expected a JSON object, e.g. {{\"key\": \"value\"}} "
                          f"({exc.msg})") from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from exc


def _merge(base: dict[str, Any], override: dict[str, dict[str, Any]]) -> dict[str, Any]:
    merged = dict(base)
    for section, values in override.items():
        current = merged.get(section)
        merged[section] = {**current, **values} if isinstance(current, dict) else values
    return merged


def _setting_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(part) for part in loc]
    if len(parts) >= 2:
        return f"{ENV_PREFIX}{parts[0].upper()}{ENV_NESTING}{parts[1].upper()} ([{parts[0]}] " \
               f"{'.'.join(parts[1:])})"
    return f"section [{parts[0]}]" if parts else "configuration"


def _explain(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = str(item["loc"])
        secret = any(word in where for word in ("secret", "password", "token", "headers",
                                                "auth", "keys"))
        # A whole-section or whole-settings error's input holds every value: never shown.
        shown = "" if secret or len(item["loc"]) < 2 else f" (got {item.get('input')!r})"
        lines.append(f"  {_setting_name(item['loc'])}: {item['msg']}{shown}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_settings(environ: Mapping[str, str] | None = None,
                  config_file: Path | None = None) -> Settings:
    """Defaults < TOML file (`config_file` or $CONNECTOR_CONFIG_FILE) < environment."""
    environ = environ or {}
    file_name = config_file or (Path(environ[CONFIG_FILE_ENV]) if environ.get(CONFIG_FILE_ENV)
                                else None)
    data = _read_file(file_name) if file_name else {}
    try:
        return Settings.model_validate(_merge(data, env_overrides(environ)))
    except ValidationError as exc:
        raise ConfigError(_explain(exc)) from None
