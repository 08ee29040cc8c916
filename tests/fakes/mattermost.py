"""A recording fake Mattermost client: :class:`gateway.api.MattermostAPI` over a tiny world in memory.

It keeps users, teams, channels (public, private, direct), memberships, posts, pins, reactions and
files, answers every call with the models of gateway.models, and refuses what the real server
refuses the bot (a non-admin bot account, as the sandbox and api4/ answer it) with the same
:class:`MattermostError` status and id:

* a channel's members, or one membership, only from inside the channel: 403
  ``api.context.permissions.app_error`` outside it; 404 ``app.channel.get_member.missing.app_error``
  for someone who is not in it (api4/channel.go ``getChannelMember``, ``read_channel``);
* a team member only in a team the bot is in: 403 outside it, 404 ``app.team.get_member.missing.app_error``;
* a channel: 404 when unknown; a public one to any member of its team, a private one to its members
  (403 otherwise); by name, a private channel the bot is not in is 404 (names do not leak);
* posting needs membership (403); a post older than ``PostEditTimeLimit`` cannot be patched or
  pinned (400 ``api.post.update_post.permissions_time_limit.app_error``, Mattermost 11.7+);
* a channel name taken in the team: 400 ``store.sql_channel.save_channel.exists.app_error``;
* ephemeral posts only when ``may_post_ephemeral`` (403 otherwise).

Every call is recorded in :attr:`FakeMattermost.calls` as ``Call(method, args)`` for assertions.
No sockets, no threads, no sleeps: a call returns at once.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from gateway.errors import EDIT_TIME_LIMIT_ERROR, MattermostError
from gateway.models import (
    Channel,
    ChannelMember,
    ClientConfig,
    FileInfo,
    Post,
    PostList,
    Reaction,
    Team,
    TeamMember,
    User,
)

PERMISSIONS = "api.context.permissions.app_error"


@dataclass(frozen=True)
class Call:
    method: str
    args: tuple[Any, ...] = ()


@dataclass
class OpenedDialog:
    trigger_id: str
    url: str
    dialog: dict[str, Any]


@dataclass
class Ephemeral:
    user_id: str
    channel_id: str
    message: str
    props: dict[str, Any] = field(default_factory=dict)


def _refused(status: int, error_id: str, message: str, method: str = "") -> MattermostError:
    return MattermostError(status, error_id, message, method=method)


class FakeMattermost:
    """The bot's view of a small Mattermost server (see the module docstring)."""

    base_url = "http://mattermost.test"

    def __init__(self, *, bot_username: str = "incident", clock_ms: int = 1_700_000_000_000,
                 edit_time_limit_s: int = -1) -> None:
        self._ids = (f"{n:026d}" for n in itertools.count(1))
        self.now_ms = clock_ms
        self.edit_time_limit_s = edit_time_limit_s
        self.may_post_ephemeral = False
        self.calls: list[Call] = []
        self.users: dict[str, User] = {}
        self.teams: dict[str, Team] = {}
        self.team_members: dict[str, set[str]] = {}
        self.channels: dict[str, Channel] = {}
        self.channel_members_of: dict[str, set[str]] = {}
        self.posts: dict[str, Post] = {}
        self.reactions: dict[str, list[Reaction]] = {}
        self.files: dict[str, tuple[FileInfo, bytes]] = {}
        self.dialogs: list[OpenedDialog] = []
        self.ephemerals: list[Ephemeral] = []
        self.executed: list[tuple[str, str]] = []
        #: Channel roles of some members, by (channel id, user id); everyone else is a channel_user.
        self.member_roles: dict[tuple[str, str], str] = {}
        bot = self.add_user(bot_username, is_bot=True)
        self.user_id, self.username = bot.id, bot.username

    # Building the world ------------------------------------------------------------------------

    def new_id(self) -> str:
        return next(self._ids)

    def tick(self, ms: int = 1) -> int:
        self.now_ms += ms
        return self.now_ms

    def add_user(self, username: str, *, admin: bool = False, is_bot: bool = False) -> User:
        user = User(id=self.new_id(), username=username, is_bot=is_bot,
                    roles="system_user system_admin" if admin else "system_user")
        self.users[user.id] = user
        return user

    def deactivate(self, user_id: str) -> None:
        self.users[user_id] = self.users[user_id].model_copy(update={"delete_at": self.tick()})

    def add_team(self, name: str, members: Sequence[User] = ()) -> Team:
        team = Team(id=self.new_id(), name=name, display_name=name.title(), type="O")
        self.teams[team.id] = team
        self.team_members[team.id] = {self.user_id, *(user.id for user in members)}
        return team

    def add_channel(self, team: Team, name: str, members: Sequence[User] = (), *,
                    private: bool = False, bot_in: bool = True) -> Channel:
        channel = Channel(id=self.new_id(), team_id=team.id, type="P" if private else "O", name=name,
                          display_name=name.replace("-", " ").title(), creator_id="", create_at=self.tick())
        self.channels[channel.id] = channel
        self.channel_members_of[channel.id] = {user.id for user in members} | ({self.user_id} if bot_in else set())
        return channel

    def join(self, channel_id: str, user_id: str) -> None:
        self.channel_members_of[channel_id].add(user_id)

    def leave(self, channel_id: str, user_id: str) -> None:
        self.channel_members_of[channel_id].discard(user_id)

    def post_as(self, user: User, channel: Channel, message: str, **fields: Any) -> Post:
        """A post someone else made (e.g. the alert an incident is started from)."""
        post = Post(id=self.new_id(), create_at=self.tick(), update_at=self.now_ms, user_id=user.id,
                    channel_id=channel.id, message=message, **fields)
        self.posts[post.id] = post
        return post

    # Reading what happened (for assertions) ----------------------------------------------------

    def methods(self) -> list[str]:
        return [call.method for call in self.calls]

    def count(self, method: str) -> int:
        return sum(1 for call in self.calls if call.method == method)

    def channel_by_name_in(self, team: Team, name: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.team_id == team.id and c.name == name), None)

    def posts_in(self, channel_id: str) -> list[Post]:
        """The channel's live posts, oldest first."""
        return sorted((p for p in self.posts.values() if p.channel_id == channel_id and not p.delete_at),
                      key=lambda p: (p.create_at, p.id))

    def pinned(self, channel_id: str) -> list[Post]:
        return [p for p in self.posts_in(channel_id) if p.is_pinned]

    def dm_between(self, user_id: str) -> Channel | None:
        return self.channels.get(self._dm_ids.get(user_id, ""))

    def dms_to(self, user: User) -> list[Post]:
        """What the bot said to ``user`` in their direct channel, oldest first."""
        channel = self.dm_between(user.id)
        return self.posts_in(channel.id) if channel else []

    @property
    def _dm_ids(self) -> dict[str, str]:
        found = {}
        for channel in self.channels.values():
            if channel.type == "D":
                other = channel.name.replace(self.user_id, "").strip("_") or self.user_id
                found[other] = channel.id
        return found

    # Checks ------------------------------------------------------------------------------------

    def _record(self, method: str, *args: Any) -> None:
        self.calls.append(Call(method, args))

    def _channel(self, channel_id: str, method: str) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise _refused(404, "app.channel.get.existing.app_error", "Unable to find the existing channel.", method)
        return channel

    def _readable(self, channel_id: str, method: str) -> Channel:
        channel = self._channel(channel_id, method)
        if self.user_id in self.channel_members_of.get(channel.id, set()):
            return channel
        if channel.type == "O" and self.user_id in self.team_members.get(channel.team_id, set()):
            return channel
        raise _refused(403, PERMISSIONS, "You do not have the appropriate permissions.", method)

    def _inside(self, channel_id: str, method: str) -> Channel:
        channel = self._channel(channel_id, method)
        if self.user_id not in self.channel_members_of.get(channel.id, set()):
            raise _refused(403, PERMISSIONS, "You do not have the appropriate permissions.", method)
        return channel

    def _post(self, post_id: str, method: str) -> Post:
        post = self.posts.get(post_id)
        if post is None or post.delete_at:
            raise _refused(404, "app.post.get.app_error", "Unable to get the post.", method)
        return post

    def _editable(self, post: Post, method: str) -> None:
        limit = self.edit_time_limit_s
        if limit >= 0 and self.now_ms - post.create_at > limit * 1000:
            raise _refused(400, EDIT_TIME_LIMIT_ERROR, "Unable to update the post: past the edit time limit.", method)

    # MattermostAPI: people and teams -----------------------------------------------------------

    async def client_config(self) -> ClientConfig:
        self._record("client_config")
        return ClientConfig.model_validate({"PostEditTimeLimit": str(self.edit_time_limit_s)})

    async def my_teams(self) -> list[Team]:
        self._record("my_teams")
        return [team for team in self.teams.values() if self.user_id in self.team_members[team.id]]

    async def get_user(self, user_id: str) -> User:
        self._record("get_user", user_id)
        if user_id not in self.users:
            raise _refused(404, "app.user.missing_account.const", "Unable to find the user.", "GET")
        return self.users[user_id]

    async def get_user_by_username(self, username: str) -> User:
        self._record("get_user_by_username", username)
        user = next((u for u in self.users.values() if u.username == username.lower()), None)
        if user is None:
            raise _refused(404, "app.user.missing_account.const", "Unable to find the user.", "GET")
        return user

    async def users_by_ids(self, user_ids: list[str]) -> list[User]:
        self._record("users_by_ids", tuple(user_ids))
        return [self.users[i] for i in dict.fromkeys(user_ids) if i in self.users]

    async def get_team_member(self, team_id: str, user_id: str) -> TeamMember:
        self._record("get_team_member", team_id, user_id)
        members = self.team_members.get(team_id)
        if members is None or self.user_id not in members:
            raise _refused(403, PERMISSIONS, "You do not have the appropriate permissions.", "GET")
        if user_id not in members:
            raise _refused(404, "app.team.get_member.missing.app_error", "No team member found.", "GET")
        return TeamMember(team_id=team_id, user_id=user_id, roles="team_user")

    # Channels ----------------------------------------------------------------------------------

    async def get_channel(self, channel_id: str) -> Channel:
        self._record("get_channel", channel_id)
        return self._readable(channel_id, "GET")

    async def channel_by_name(self, team_id: str, name: str) -> Channel:
        self._record("channel_by_name", team_id, name)
        channel = next((c for c in self.channels.values()
                        if c.team_id == team_id and c.name == name.lower() and not c.delete_at), None)
        missing = _refused(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.", "GET")
        if channel is None:
            raise missing
        if channel.type == "O":
            if self.user_id not in self.team_members.get(team_id, set()):
                raise _refused(403, PERMISSIONS, "You do not have the appropriate permissions.", "GET")
        elif self.user_id not in self.channel_members_of[channel.id]:
            raise missing
        return channel

    async def my_channels(self, team_id: str) -> list[Channel]:
        self._record("my_channels", team_id)
        return [c for c in self.channels.values() if self.user_id in self.channel_members_of[c.id]
                and (c.team_id == team_id or c.type in ("D", "G"))]

    async def create_channel(self, team_id: str, name: str, display_name: str, *, private: bool,
                             purpose: str = "") -> Channel:
        self._record("create_channel", team_id, name, display_name, private)
        if self.user_id not in self.team_members.get(team_id, set()):
            raise _refused(403, PERMISSIONS, "You do not have the appropriate permissions.", "POST")
        taken = next((c for c in self.channels.values() if c.team_id == team_id and c.name == name), None)
        if taken is not None:
            which = "previously" if taken.delete_at else "exists"
            raise _refused(400, f"store.sql_channel.save_channel.{which}.app_error",
                           "A channel with that name already exists on the same team.", "POST")
        channel = Channel(id=self.new_id(), team_id=team_id, type="P" if private else "O", name=name,
                          display_name=display_name, purpose=purpose, creator_id=self.user_id,
                          create_at=self.tick(), update_at=self.now_ms)
        self.channels[channel.id] = channel
        self.channel_members_of[channel.id] = {self.user_id}
        return channel

    async def archive_channel(self, channel_id: str) -> None:
        self._record("archive_channel", channel_id)
        channel = self._inside(channel_id, "DELETE")
        self.channels[channel_id] = channel.model_copy(update={"delete_at": channel.delete_at or self.tick()})

    async def direct_channel_with(self, user_id: str) -> Channel:
        self._record("direct_channel_with", user_id)
        if user_id not in self.users:
            raise _refused(400, "api.context.invalid_url_param.app_error", "Invalid user id.", "POST")
        known = self._dm_ids.get(user_id)
        if known:
            return self.channels[known]
        channel = Channel(id=self.new_id(), type="D", name="__".join(sorted((self.user_id, user_id))),
                          create_at=self.tick())
        self.channels[channel.id] = channel
        self.channel_members_of[channel.id] = {self.user_id, user_id}
        return channel

    async def get_channel_member(self, channel_id: str, user_id: str) -> ChannelMember:
        self._record("get_channel_member", channel_id, user_id)
        self._inside(channel_id, "GET")
        if user_id not in self.channel_members_of[channel_id]:
            raise _refused(404, "app.channel.get_member.missing.app_error", "No channel member found.", "GET")
        return ChannelMember(channel_id=channel_id, user_id=user_id,
                             roles=self.member_roles.get((channel_id, user_id), "channel_user"))

    async def roles_grant(self, role_names: list[str], permission: str) -> bool:
        self._record("roles_grant", tuple(role_names), permission)
        return "system_admin" in role_names or (permission == "create_post" and "channel_user" in role_names)

    async def channel_members(self, channel_id: str, *, page: int = 0, per_page: int = 200) -> list[ChannelMember]:
        self._record("channel_members", channel_id, page, per_page)
        self._inside(channel_id, "GET")
        ids = sorted(self.channel_members_of[channel_id])[page * per_page:(page + 1) * per_page]
        return [ChannelMember(channel_id=channel_id, user_id=i, roles="channel_user") for i in ids]

    async def add_channel_member(self, channel_id: str, user_id: str) -> ChannelMember:
        self._record("add_channel_member", channel_id, user_id)
        channel = self._channel(channel_id, "POST")
        joining_public = channel.type == "O" and user_id == self.user_id
        if not joining_public:
            self._inside(channel_id, "POST")
        if user_id not in self.team_members.get(channel.team_id, set()):
            raise _refused(400, "api.channel.add_user.to.channel.failed.app_error",
                           "Failed to add user to channel.", "POST")
        self.channel_members_of[channel_id].add(user_id)
        return ChannelMember(channel_id=channel_id, user_id=user_id, roles="channel_user")

    async def remove_channel_member(self, channel_id: str, user_id: str) -> None:
        self._record("remove_channel_member", channel_id, user_id)
        self._channel(channel_id, "DELETE")
        if user_id not in self.channel_members_of[channel_id]:
            raise _refused(404, "app.channel.get_member.missing.app_error", "No channel member found.", "DELETE")
        self.channel_members_of[channel_id].discard(user_id)

    # Posts -------------------------------------------------------------------------------------

    async def get_post(self, post_id: str) -> Post:
        self._record("get_post", post_id)
        post = self._post(post_id, "GET")
        self._readable(post.channel_id, "GET")
        return post

    async def create_post(self, channel_id: str, message: str, *, props: dict | None = None,
                          root_id: str = "", file_ids: list[str] | None = None) -> Post:
        self._record("create_post", channel_id, message)
        self._inside(channel_id, "POST")
        post = Post(id=self.new_id(), create_at=self.tick(), update_at=self.now_ms, user_id=self.user_id,
                    channel_id=channel_id, root_id=root_id, message=message, props=dict(props or {}),
                    file_ids=tuple(file_ids or ()))
        self.posts[post.id] = post
        return post

    async def create_ephemeral_post(self, user_id: str, channel_id: str, message: str,
                                    props: dict | None = None) -> Post:
        self._record("create_ephemeral_post", user_id, channel_id, message)
        if not self.may_post_ephemeral:
            raise _refused(403, PERMISSIONS, "You do not have the appropriate permissions.", "POST")
        self.ephemerals.append(Ephemeral(user_id, channel_id, message, dict(props or {})))
        return Post(id=self.new_id(), create_at=self.tick(), user_id=self.user_id, channel_id=channel_id,
                    message=message, type="system_ephemeral", props=dict(props or {}))

    async def patch_post(self, post_id: str, patch: dict) -> Post:
        self._record("patch_post", post_id)
        post = self._post(post_id, "PUT")
        self._editable(post, "PUT")
        update: dict[str, Any] = {"update_at": self.tick(), "edit_at": self.now_ms}
        if "message" in patch:
            update["message"] = patch["message"]
        if "props" in patch:
            update["props"] = dict(patch["props"])
        self.posts[post_id] = post = post.model_copy(update=update)
        return post

    async def delete_post(self, post_id: str) -> None:
        self._record("delete_post", post_id)
        post = self._post(post_id, "DELETE")
        self.posts[post_id] = post.model_copy(update={"delete_at": self.tick(), "is_pinned": False})

    async def pin_post(self, post_id: str) -> None:
        self._record("pin_post", post_id)
        post = self._post(post_id, "POST")
        self._editable(post, "POST")
        self.posts[post_id] = post.model_copy(update={"is_pinned": True, "update_at": self.tick()})

    async def channel_posts(self, channel_id: str, *, before: str = "", page: int = 0,
                            per_page: int = 200) -> PostList:
        self._record("channel_posts", channel_id, before, page, per_page)
        self._readable(channel_id, "GET")
        newest_first = list(reversed(self.posts_in(channel_id)))
        if before:
            anchor = self.posts[before].create_at
            newest_first = [p for p in newest_first if p.create_at < anchor]
        window = newest_first[page * per_page:(page + 1) * per_page]
        return PostList(order=tuple(p.id for p in window), posts={p.id: p for p in window})

    async def channel_posts_since(self, channel_id: str, since: int) -> PostList:
        self._record("channel_posts_since", channel_id, since)
        self._readable(channel_id, "GET")
        changed = [p for p in self.posts.values() if p.channel_id == channel_id and p.update_at > since]
        return PostList(order=tuple(p.id for p in changed), posts={p.id: p for p in changed})

    async def post_reactions(self, post_id: str) -> list[Reaction]:
        self._record("post_reactions", post_id)
        return list(self.reactions.get(post_id, []))

    # Files -------------------------------------------------------------------------------------

    def _store_file(self, channel_id: str, filename: str, data: bytes, content_type: str) -> FileInfo:
        self._inside(channel_id, "POST")
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        info = FileInfo(id=self.new_id(), user_id=self.user_id, channel_id=channel_id, name=filename,
                        extension=extension, size=len(data), mime_type=content_type, create_at=self.tick())
        self.files[info.id] = (info, data)
        return info

    def upload_as(self, user: User, channel: Channel, filename: str, data: bytes) -> FileInfo:
        """A file someone attached to a message to the bot."""
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        info = FileInfo(id=self.new_id(), user_id=user.id, channel_id=channel.id, name=filename,
                        extension=extension, size=len(data), create_at=self.tick())
        self.files[info.id] = (info, data)
        return info

    async def upload_file(self, channel_id: str, filename: str, data: bytes,
                          content_type: str = "application/octet-stream") -> FileInfo:
        self._record("upload_file", channel_id, filename)
        return self._store_file(channel_id, filename, data, content_type)

    async def upload_file_stream(self, channel_id: str, filename: str, stream: IO[bytes],
                                 content_type: str = "text/csv") -> FileInfo:
        self._record("upload_file_stream", channel_id, filename)
        stream.seek(0)
        return self._store_file(channel_id, filename, stream.read(), content_type)

    async def file_info(self, file_id: str) -> FileInfo:
        self._record("file_info", file_id)
        if file_id not in self.files:
            raise _refused(404, "app.file_info.get.app_error", "Unable to get the file info.", "GET")
        return self.files[file_id][0]

    async def file_content(self, file_id: str) -> bytes:
        self._record("file_content", file_id)
        if file_id not in self.files:
            raise _refused(404, "app.file_info.get.app_error", "Unable to get the file info.", "GET")
        return self.files[file_id][1]

    # Integrations ------------------------------------------------------------------------------

    async def execute_command(self, channel_id: str, command: str, team_id: str = "") -> dict[str, Any]:
        self._record("execute_command", channel_id, command)
        self._inside(channel_id, "POST")
        self.executed.append((channel_id, command))
        return {}

    async def open_dialog(self, trigger_id: str, url: str, dialog: dict) -> None:
        self._record("open_dialog", trigger_id)
        if not trigger_id:
            raise _refused(400, "api.context.invalid_body_param.app_error", "Invalid trigger_id.", "POST")
        self.dialogs.append(OpenedDialog(trigger_id, url, dialog))
