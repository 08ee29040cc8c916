"""Typed shapes of what Mattermost sends the bot and what the bot answers.

Raw dicts stop here: handlers receive these models, never request bodies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=20_000)


class SlashCommand(_Inbound):
    """The form Mattermost POSTs when a user types the bot's slash command (protocol.md §1.2)."""

    token: str
    team_id: str = ""
    team_domain: str = ""
    channel_id: str = Field(min_length=1)
    channel_name: str = ""
    user_id: str = Field(min_length=1)
    user_name: str = ""
    command: str = ""
    text: str = ""
    trigger_id: str = ""
    response_url: str = ""
    root_id: str = ""
    user_mentions: tuple[str, ...] = ()
    user_mentions_ids: tuple[str, ...] = ()
    channel_mentions: tuple[str, ...] = ()
    channel_mentions_ids: tuple[str, ...] = ()
    via_dm: bool = False  # typed as a direct message to the bot rather than as a slash command
    file_ids: tuple[str, ...] = ()  # files attached to that direct message (never set from a slash request)

    @property
    def words(self) -> list[str]:
        return self.text.split()

    def vouches_for_team(self, team_id: str) -> bool:
        """Whether Mattermost has checked that the user may act in ``team_id``: it is this slash
        command's team (api4/command.go ``executeCommand`` takes it from the channel the user may
        post in, or checks the session's teams in a direct message; the command token is per team)."""
        return not self.via_dm and bool(self.team_id) and team_id == self.team_id

    @property
    def subcommand(self) -> str:
        words = self.words
        return words[0].lower() if words else ""

    @property
    def arguments(self) -> str:
        """Everything after the subcommand, with surrounding whitespace removed."""
        text = self.text.strip()
        parts = text.split(None, 1)
        return parts[1].strip() if len(parts) == 2 else ""


class ActionCallback(_Inbound):
    """A verified button click or menu selection (protocol.md §2.2); ``action``/``args`` come from
    the signed context."""

    user_id: str = Field(min_length=1)
    user_name: str = ""
    channel_id: str = Field(min_length=1)
    channel_name: str = ""
    team_id: str = ""
    team_domain: str = ""
    post_id: str = ""
    trigger_id: str = ""
    type: str = ""
    action: str
    args: dict[str, Any] = {}
    selected_option: str | None = None


class DialogSubmission(_Inbound):
    """A verified dialog submission or cancellation (protocol.md §3.4)."""

    callback_id: str
    user_id: str = Field(min_length=1)
    channel_id: str = ""
    team_id: str = ""
    submission: dict[str, Any] = {}
    cancelled: bool = False
    args: dict[str, Any] = {}


@dataclass
class CommandReply:
    """What the slash command answers: ephemeral text and/or navigation."""

    text: str = ""
    goto_location: str = ""
    attachments: list[dict[str, Any]] = field(default_factory=list)
    response_type: Literal["ephemeral", "in_channel"] = "ephemeral"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"response_type": self.response_type, "text": self.text}
        if self.goto_location:
            body["goto_location"] = self.goto_location
        if self.attachments:
            body["props"] = {"attachments": self.attachments}
        return body


@dataclass
class ActionReply:
    """What a button click answers: an optional replacement of the clicked post and ephemeral text."""

    ephemeral_text: str = ""
    update: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.update is not None:
            body["update"] = self.update
        if self.ephemeral_text:
            body["ephemeral_text"] = self.ephemeral_text
        return body


@dataclass
class DialogReply:
    """Empty closes the dialog; ``errors`` (per field) or ``error`` keep it open."""

    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.errors:
            body["errors"] = self.errors
        if self.error:
            body["error"] = self.error
        return body

    @property
    def closes(self) -> bool:
        return not self.errors and not self.error


# Mattermost's own objects, as the REST API and the event stream return them --------------------
# (server/public/model/*.go). Only the fields the bot reads; anything else Mattermost adds is ignored.
# No length limits: these come from the server, not from a person's request.


class _Mattermost(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Reaction(_Mattermost):
    """A reaction on a post (model/reaction.go), as ``reaction_added`` and ``GET /posts/{id}/reactions`` carry it."""

    user_id: str = ""
    post_id: str = ""
    emoji_name: str = ""
    channel_id: str = ""
    create_at: int = 0
    delete_at: int = 0


class User(_Mattermost):
    """A person or bot account (model/user.go)."""

    id: str
    username: str = ""
    roles: str = ""  # space-separated role names, e.g. "system_user system_admin"
    is_bot: bool = False
    delete_at: int = 0

    @property
    def is_system_admin(self) -> bool:
        return "system_admin" in self.roles.split()

    @property
    def role_names(self) -> list[str]:
        return self.roles.split()

    @property
    def active(self) -> bool:
        return not self.delete_at


class Team(_Mattermost):
    """A team (model/team.go)."""

    id: str
    name: str = ""
    display_name: str = ""
    type: str = ""
    delete_at: int = 0


class TeamMember(_Mattermost):
    """Someone's membership of a team (model/team_member.go); ``delete_at`` set once they left."""

    team_id: str = ""
    user_id: str = ""
    roles: str = ""
    delete_at: int = 0
    scheme_guest: bool = False

    @property
    def is_guest(self) -> bool:
        """A guest's membership (``scheme_guest``; its roles then read ``team_guest``)."""
        return self.scheme_guest or "team_guest" in self.roles.split()


class Channel(_Mattermost):
    """A channel (model/channel.go). ``type``: O public, P private, D direct, G group."""

    id: str
    team_id: str = ""
    type: str = ""
    name: str = ""
    display_name: str = ""
    purpose: str = ""
    header: str = ""
    creator_id: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0

    @property
    def is_public(self) -> bool:
        return self.type == "O"

    @property
    def archived(self) -> bool:
        return bool(self.delete_at)


class ChannelMember(_Mattermost):
    """Someone's membership of a channel (model/channel_member.go)."""

    channel_id: str = ""
    user_id: str = ""
    roles: str = ""


class PostMetadata(_Mattermost):
    """The part of a post's ``metadata`` the bot reads: its current reactions (absent when none)."""

    reactions: tuple[Reaction, ...] | None = None


class Post(_Mattermost):
    """A post (model/post.go)."""

    id: str
    create_at: int = 0
    update_at: int = 0
    edit_at: int = 0
    delete_at: int = 0
    #: Set on the copies an edit leaves behind (served by ``since`` queries): the edited post's id.
    original_id: str = ""
    is_pinned: bool = False
    user_id: str = ""
    channel_id: str = ""
    root_id: str = ""
    message: str = ""
    type: str = ""
    props: dict[str, Any] = {}
    file_ids: tuple[str, ...] = ()
    has_reactions: bool = False
    pending_post_id: str = ""  # the client's id for a post being made (repeats return the same post)
    metadata: PostMetadata = PostMetadata()

    @property
    def is_system(self) -> bool:
        """A message Mattermost wrote itself (joins, header changes, ...), not a person's."""
        return self.type.startswith("system_")

    @property
    def from_integration(self) -> bool:
        """Posted by a webhook or a slash command's answer (its author may never have been in the channel)."""
        return self.props.get("from_webhook") == "true" or self.props.get("from_bot") == "true"


class PostList(_Mattermost):
    """A page of posts (model/post_list.go): ``order`` lists the page newest first; ``posts`` holds
    those and, for replies, their roots."""

    order: tuple[str, ...] = ()
    posts: dict[str, Post] = {}

    @property
    def listed(self) -> list[Post]:
        """The posts of the page itself, in ``order`` (roots brought along for replies left out)."""
        return [self.posts[post_id] for post_id in self.order if post_id in self.posts]


class FileInfo(_Mattermost):
    """An uploaded file (model/file_info.go)."""

    id: str
    user_id: str = ""
    post_id: str = ""
    channel_id: str = ""
    name: str = ""
    extension: str = ""
    size: int = 0
    mime_type: str = ""
    create_at: int = 0


class ClientConfig(_Mattermost):
    """The server's client configuration (config/client.go, ``format=old``: every value a string)."""

    post_edit_time_limit: str = Field(default="-1", alias="PostEditTimeLimit")
    version: str = Field(default="", alias="Version")
    #: The address people's browsers use for Mattermost (``ServiceSettings.SiteURL``; "" when unset).
    site_url: str = Field(default="", alias="SiteURL")


class Broadcast(_Inbound):
    """Who a WebSocket event was sent to (its ``broadcast`` part)."""

    channel_id: str = ""
    team_id: str = ""
    user_id: str = ""


class WebSocketEvent(_Inbound):
    """One WebSocket event (live, or replayed by catch-up), as ``on_event`` handlers receive it.

    ``data`` keeps the event's own fields, with the ones Mattermost sends as JSON strings decoded.
    """

    event: str
    data: dict[str, Any] = {}
    broadcast: Broadcast = Broadcast()
    seq: int = 0
    replayed: bool = False
    #: When it happened (server ms), for events the catch-up rebuilt from what it read; 0 when live.
    at: int = 0

    @property
    def reaction(self) -> Reaction | None:
        """The reaction of a ``reaction_added``/``reaction_removed`` event (None for other events)."""
        raw = self.data.get("reaction")
        return Reaction.model_validate(raw) if isinstance(raw, dict) else None

    @property
    def post(self) -> Post | None:
        """The post of a ``post_edited``/``post_deleted`` event (or the catch-up's ``post_changed``)."""
        raw = self.data.get("post")
        try:
            return Post.model_validate(raw) if isinstance(raw, dict) else None
        except ValueError:
            return None

    @property
    def member_id(self) -> str:
        """The user a ``user_added``/``user_removed`` event is about ("" in the copy sent to the
        removed user, which names the channel instead)."""
        return str(self.data.get("user_id") or "")

    @property
    def actor_id(self) -> str:
        """Who did it, when the event says: ``remover_id`` (user_removed), ``delete_by``
        (post_deleted), ``adder_id`` (the catch-up's user_added, from the system post)."""
        for key in ("remover_id", "delete_by", "adder_id"):
            value = self.data.get(key)
            if isinstance(value, str) and value:
                return value
        return ""

    @property
    def channel_id(self) -> str:
        """The channel the event happened in (the broadcast's, else the reaction's or post's own,
        else the one the data names)."""
        if self.broadcast.channel_id:
            return self.broadcast.channel_id
        for key in ("reaction", "post"):
            raw = self.data.get(key)
            if isinstance(raw, dict) and isinstance(raw.get("channel_id"), str):
                return raw["channel_id"]
        value = self.data.get("channel_id")
        return value if isinstance(value, str) else ""
