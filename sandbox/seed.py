"""The seed file: a declarative description of the world the sandbox starts with.

Loaded from YAML or JSON (or given as a dict). See sandbox/README.md for the format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .ids import is_valid_id


class SeedError(ValueError):
    """The seed is malformed or refers to something that does not exist."""


def _check_id(value: str | None) -> str | None:
    if value is not None and not is_valid_id(value):
        raise ValueError(f"{value!r} is not a valid 26-character Mattermost id")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SeedTeam(_Model):
    """A team: ``name`` is the URL handle, ``display_name`` the shown title."""

    id: str | None = None
    name: str
    display_name: str | None = None
    description: str = ""
    type: str = "O"

    _v_id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class SeedMembership(_Model):
    """A user's membership of a team with its team roles."""

    name: str
    roles: str = "team_user"


class SeedUser(_Model):
    """A user or bot account and its access tokens and team memberships."""

    id: str | None = None
    username: str
    email: str | None = None
    first_name: str = ""
    last_name: str = ""
    nickname: str = ""
    position: str = ""
    roles: str = "system_user"
    is_bot: bool = False
    bot_description: str = ""
    owner: str | None = None
    token: str | None = None
    tokens: list[str] = Field(default_factory=list)
    #: The password of the sandbox's login page (sandbox/oauth.py); none: the user cannot log in there.
    password: str | None = Field(None, min_length=1, max_length=72)
    teams: list[str | SeedMembership] = Field(default_factory=list)

    _v_id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))

    @field_validator("token")
    @classmethod
    def _v_token(cls, v: str | None) -> str | None:
        return _check_id(v)

    @field_validator("tokens")
    @classmethod
    def _v_tokens(cls, v: list[str]) -> list[str]:
        for t in v:
            _check_id(t)
        return v

    @field_validator("teams", mode="before")
    @classmethod
    def _v_teams(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [v]
        return v

    def memberships(self) -> list[SeedMembership]:
        """Team memberships with plain names expanded to ``team_user``."""
        return [SeedMembership(name=t) if isinstance(t, str) else t for t in self.teams]

    def all_tokens(self) -> list[str]:
        toks = list(self.tokens)
        if self.token and self.token not in toks:
            toks.insert(0, self.token)
        return toks


class SeedChannel(_Model):
    """A public (O) or private (P) channel of a team, with its members by username."""

    id: str | None = None
    team: str
    name: str
    display_name: str | None = None
    type: str = "O"
    purpose: str = ""
    header: str = ""
    members: list[str] = Field(default_factory=list)
    admins: list[str] = Field(default_factory=list)

    _v_id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))

    @field_validator("type")
    @classmethod
    def _v_type(cls, v: str) -> str:
        if v not in ("O", "P"):
            raise ValueError("channel type must be O or P")
        return v


class SeedWebhook(_Model):
    """An incoming webhook posting into ``channel`` ("name" in ``team`` or "team/name") as ``user``."""

    id: str | None = None
    team: str | None = None
    channel: str
    user: str
    display_name: str = ""
    description: str = ""
    username: str = ""
    icon_url: str = ""
    channel_locked: bool = False

    _v_id = field_validator("id")(classmethod(lambda cls, v: _check_id(v)))


class Seed(_Model):
    """The whole seed document."""

    teams: list[SeedTeam] = Field(default_factory=list)
    users: list[SeedUser] = Field(default_factory=list)
    channels: list[SeedChannel] = Field(default_factory=list)
    incoming_webhooks: list[SeedWebhook] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_refs(self) -> Seed:
        team_names = {t.name for t in self.teams}
        if len(team_names) != len(self.teams):
            raise ValueError("duplicate team name")
        usernames = {u.username for u in self.users}
        if len(usernames) != len(self.users):
            raise ValueError("duplicate username")
        for u in self.users:
            for m in u.memberships():
                if m.name not in team_names:
                    raise ValueError(f"user {u.username}: unknown team {m.name!r}")
            if u.owner and u.owner not in usernames:
                raise ValueError(f"bot {u.username}: unknown owner {u.owner!r}")
        for c in self.channels:
            if c.team not in team_names:
                raise ValueError(f"channel {c.name}: unknown team {c.team!r}")
            for name in [*c.members, *c.admins]:
                if name not in usernames:
                    raise ValueError(f"channel {c.team}/{c.name}: unknown user {name!r}")
        for h in self.incoming_webhooks:
            if h.user not in usernames:
                raise ValueError(f"webhook: unknown user {h.user!r}")
        return self


def load_seed(source: str | Path | dict | Seed | None) -> Seed:
    """Load a seed from a path (.yaml/.yml/.json), a dict, or pass a Seed through."""
    if source is None:
        return Seed()
    if isinstance(source, Seed):
        return source
    try:
        if isinstance(source, dict):
            return Seed.model_validate(source)
        path = Path(source)
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return Seed.model_validate(data or {})
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise SeedError(f"invalid seed: {exc}") from exc
