"""Command Center's configuration: one pydantic-settings class read from the environment.

Every variable carries the ``CC_`` prefix (``CC_MATTERMOST_URL``, ``CC_BOT_TOKEN`` ...) and may
also come from an optional ``.env`` file.  A missing or invalid value stops start-up with one
message naming the variable (see :func:`load_settings`).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "CC_"
SECRET_FILE_NAME = "signing-secret"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(Exception):
    """A setting is missing or invalid; the message names the environment variable."""


def _check_http_url(value: str, variable: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"must not contain a query or fragment, got {value!r}")
    return value.rstrip("/")


class TeamWebhook(BaseModel):
    """One team-wide outgoing webhook (``CC_TEAM_WEBHOOKS``, docs/webhooks.md): every incident of the
    team, with the operator's own signing secret; private incidents are sent redacted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    team_id: str = Field(pattern=r"^[a-z0-9]{26}$")
    url: str = Field(min_length=1, max_length=500)
    events: tuple[str, ...] = ()
    secret: str = Field(min_length=16, max_length=256)


class Settings(BaseSettings):
    """All of Command Center's settings, validated at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    mattermost_url: str = Field(description="Base URL of the Mattermost server, e.g. https://chat.example.com")
    bot_token: str = Field(min_length=1, description="Access token of the bot account")
    listen_host: str = Field("127.0.0.1", description="Address the bot's HTTP server binds to")
    listen_port: int = Field(8080, ge=0, le=65535, description="Port of the bot's HTTP server (0 = any free port)")
    public_url: str | None = Field(
        None,
        description="Base URL Mattermost uses to reach the bot's HTTP server (callbacks); "
        "defaults to http://LISTEN_HOST:LISTEN_PORT when that address is concrete",
    )
    data_dir: Path = Field(Path("data"), description="Directory for the database and the generated signing secret")
    database_url: str | None = Field(None, description="Database URL; default sqlite:///DATA_DIR/command-center.db")
    database_pool_size: int = Field(10, ge=1, le=200,
                                    description="Most connections to the database at once (PostgreSQL's pool)")
    signing_secret: str | None = Field(
        None, min_length=32, description="Secret for signing buttons and dialogs; generated and kept in DATA_DIR if unset"
    )
    command_trigger: str = Field("incident", pattern=r"^[a-z0-9][a-z0-9_.-]{0,127}$", description="Slash command trigger")
    reaction_emoji: str = Field("rotating_light", pattern=r"^[a-z0-9_+-]{1,64}$", description="Emoji that offers to start an incident")
    timeline_emoji: str = Field("pushpin", pattern=r"^[a-z0-9_+-]{1,64}$",
                                description="Emoji that adds a post of an incident channel to the incident's timeline")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    request_timeout: float = Field(10.0, gt=0, le=120, description="Seconds before a call to Mattermost is abandoned")
    event_loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio", description="The event loop the bot runs on: asyncio's own, or uvloop (less CPU per request; "
        "see README, Benchmarks)")
    replica_id: str | None = Field(
        None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+$",
        description="This replica's name among several on one database (docs/replicas.md); "
        "default: host, process id and a random part, new at every start")
    lease_ms: int = Field(
        10_000, ge=300, le=300_000,
        description="Length of the replicas' leases in ms: a dead leader is replaced within 4/3 of it")
    telemetry_enabled: bool = Field(True, description="Master switch; telemetry also needs both keys below")
    rudder_write_key: str | None = None
    # Alerts (README "Alerts"): the routing rules file and one secret per source; a source without
    # a secret is refused (404), so nothing is accepted unless it was configured.
    alerts_rules_file: Path | None = Field(None, description="YAML file of alert routing rules")
    alerts_alertmanager_secret: str | None = Field(None, min_length=16, description="Secret of POST /alerts/alertmanager")
    alerts_grafana_secret: str | None = Field(None, min_length=16, description="Secret of POST /alerts/grafana")
    alerts_generic_secret: str | None = Field(None, min_length=16, description="Secret of POST /alerts/generic")
    rudder_data_plane_url: str | None = None
    team_webhooks: list[TeamWebhook] = Field(
        default_factory=list, description="Team-wide outgoing webhooks, a JSON list of "
        '{"team_id", "url", "events", "secret"} (docs/webhooks.md)')
    job_retention_days: int = Field(7, ge=1, le=3650, description="Days a done or cancelled scheduler job is kept")
    failed_job_retention_days: int = Field(
        30, ge=1, le=3650, description="Days a failed scheduler job (the record of a give-up) is kept")
    # Backstage "Sign in with Mattermost" (README, Backstage): the OAuth 2.0 app an admin registered.
    oauth_client_id: str | None = Field(None, pattern=r"^[a-z0-9]{26}$",
                                        description="Client id of the bot's OAuth app in Mattermost")
    oauth_client_secret: str | None = Field(None, min_length=1, max_length=128,
                                            description="Client secret of that OAuth app")
    webhook_allowed_internal: str = Field(
        "", description="Internal hosts, IPs and CIDRs webhooks may be sent to, separated by spaces or commas "
        "(like Mattermost's AllowedUntrustedInternalConnections); none by default")

    @field_validator("mattermost_url")
    @classmethod
    def _mattermost_url(cls, value: str) -> str:
        return _check_http_url(value, "mattermost_url")

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if not value else _check_http_url(value, "public_url")

    @field_validator("rudder_data_plane_url")
    @classmethod
    def _rudder_url(cls, value: str | None) -> str | None:
        return None if not value else _check_http_url(value, "rudder_data_plane_url")

    @field_validator("oauth_client_id", "oauth_client_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value  # `CC_OAUTH_CLIENT_ID=` in an env file: not configured

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _public_url_needs_concrete_host(self) -> Settings:
        if self.public_url is None and _is_wildcard(self.listen_host):
            raise ValueError(
                f"{ENV_PREFIX}PUBLIC_URL is required when {ENV_PREFIX}LISTEN_HOST is {self.listen_host!r}: "
                "set it to the URL Mattermost uses to reach the bot, e.g. http://bot:8080"
            )
        return self

    @model_validator(mode="after")
    def _oauth_both_or_neither(self) -> Settings:
        if bool(self.oauth_client_id) != bool(self.oauth_client_secret):
            given, missing = (("CLIENT_ID", "CLIENT_SECRET") if self.oauth_client_id
                              else ("CLIENT_SECRET", "CLIENT_ID"))
            raise ValueError(f"{ENV_PREFIX}OAUTH_{given} is set but {ENV_PREFIX}OAUTH_{missing} is not: set both "
                             "(the OAuth app's client id and secret from Mattermost) or neither")
        return self

    @property
    def oauth_configured(self) -> bool:
        """True when "Sign in with Mattermost" is set up (both OAuth settings)."""
        return bool(self.oauth_client_id and self.oauth_client_secret)

    # Derived values -------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file under the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'command-center.db').resolve()}"

    def alert_secrets(self) -> dict[str, str]:
        """The secret of each alert source that has one (``alertmanager``, ``grafana``, ``generic``)."""
        found = {"alertmanager": self.alerts_alertmanager_secret, "grafana": self.alerts_grafana_secret,
                 "generic": self.alerts_generic_secret}
        return {source: secret for source, secret in found.items() if secret}

    @property
    def telemetry_configured(self) -> bool:
        """True when telemetry is switched on and both RudderStack keys are present."""
        return bool(self.telemetry_enabled and self.rudder_write_key and self.rudder_data_plane_url)

    def callback_base_url(self, bound_port: int) -> str:
        """The URL Mattermost should call back, given the port the HTTP server really bound."""
        if self.public_url:
            return self.public_url
        host = self.listen_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{bound_port}"

    def resolve_signing_secret(self) -> str:
        """Return the signing secret, generating and persisting one (mode 0600) on first start."""
        if self.signing_secret:
            return self.signing_secret
        path = self.data_dir / SECRET_FILE_NAME
        try:
            existing = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            existing = ""
        except OSError as exc:
            raise SettingsError(f"{ENV_PREFIX}DATA_DIR: cannot read {path}: {exc.strerror}") from exc
        if len(existing) >= 32:
            return existing
        secret = secrets.token_urlsafe(48)
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secret + "\n")
        except OSError as exc:
            raise SettingsError(
                f"{ENV_PREFIX}DATA_DIR: cannot write the signing secret to {path}: {exc.strerror}; "
                f"make the directory writable or set {ENV_PREFIX}SIGNING_SECRET"
            ) from exc
        return secret


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def load_settings(**overrides: object) -> Settings:
    """Read the settings, turning validation failures into one readable :class:`SettingsError`."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            variable = f"{ENV_PREFIX}{field.upper()}" if field else "configuration"
            message = error["msg"]
            if error["type"] == "missing":
                message = "is required but not set"
            elif message.startswith("Value error, "):
                message = message[len("Value error, "):]
            if message.startswith(ENV_PREFIX):
                problems.append(message)
            else:
                problems.append(f"{variable} {message}")
        raise SettingsError("Invalid configuration: " + "; ".join(problems)) from None
