"""The in-memory Mattermost world: objects as served by REST, permissions, and events.

Everything runs on the sandbox's event loop; route handlers mutate the world through
the methods here, which keep derived fields (counts, ``update_at``, metadata) right,
emit WebSocket events to exactly the users Mattermost would address, and wake
``wait_for`` callers.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from . import errors
from .errors import AppError
from .ids import is_valid_id, new_id, now_ms
from .mention_text import post_mention_text
from .seed import Seed

MAX_MESSAGE_RUNES = 16383
#: model.PostPropsMaxRunes (server/public/model/post.go): ``Post.IsValid`` refuses a post whose props,
#: marshalled to JSON, are longer than this many runes; it is checked on create and on every update.
MAX_PROPS_RUNES = 800_000
MENTION_RE = re.compile(r"@([a-z0-9][a-z0-9._\-]*)", re.IGNORECASE)
HASHTAG_RE = re.compile(r"(?<![\w#])#([A-Za-z][A-Za-z0-9_\-.]*[A-Za-z0-9_])")
CHANNEL_NAME_RE = re.compile(r"^[a-z0-9]+([a-z\-_0-9]+|(__)?)[a-z0-9]+$")
# System posts that Mattermost leaves out of channel message counts.
UNCOUNTED_TYPES = {
    "system_join_channel", "system_leave_channel", "system_add_to_channel",
    "system_remove_from_channel", "system_join_team", "system_leave_team",
    "system_add_to_team", "system_remove_from_team",
}
DEFAULT_CHANNEL_NOTIFY = {
    "desktop": "default", "email": "default", "push": "default", "mark_unread": "all",
    "ignore_channel_mentions": "default", "channel_auto_follow_threads": "off",
}
# Props that survive an action `update` whatever props it sends (protocol §2.3).
RETAINED_PROPS = ("from_webhook", "override_username", "override_icon_url")


# Default role permissions (model/role.go MakeDefaultRoles, with the permissions migrations
# have added on every server: read_channel_content for channel members). Only the permissions
# the sandbox checks are listed; system_admin has every permission.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "channel_user": frozenset({
        "read_channel", "read_channel_content", "add_reaction", "remove_reaction",
        "manage_public_channel_members", "manage_private_channel_members", "upload_file",
        "get_public_link", "create_post", "use_channel_mentions", "use_slash_commands",
        "manage_public_channel_properties", "manage_private_channel_properties",
        "delete_public_channel", "delete_private_channel", "delete_post", "edit_post"}),
    "channel_admin": frozenset({"manage_channel_roles", "use_group_mentions"}),
    "team_user": frozenset({
        "list_team_channels", "join_public_channels", "read_public_channel", "view_team",
        "create_public_channel", "create_private_channel", "invite_user", "add_user_to_team"}),
    "team_admin": frozenset({
        "remove_user_from_team", "manage_team", "import_team", "manage_team_roles",
        "manage_channel_roles", "manage_others_incoming_webhooks", "manage_others_outgoing_webhooks",
        "manage_slash_commands", "manage_others_slash_commands", "manage_incoming_webhooks",
        "manage_outgoing_webhooks", "convert_public_channel_to_private",
        "convert_private_channel_to_public", "delete_post", "delete_others_posts"}),
    "system_user": frozenset({
        "list_public_teams", "join_public_teams", "create_direct_channel", "create_group_channel",
        "view_members", "create_team"}),
    # Guests (a user whose system roles are system_guest; their memberships are scheme_guest):
    # team_guest grants view_team only — no read_public_channel, so a guest reads only the channels
    # it is a member of (model/role.go MakeDefaultRoles, TeamGuestRoleId / ChannelGuestRoleId).
    "system_guest": frozenset({"create_direct_channel", "create_group_channel"}),
    "team_guest": frozenset({"view_team"}),
    "channel_guest": frozenset({
        "read_channel", "read_channel_content", "add_reaction", "remove_reaction", "upload_file", "edit_post",
        "create_post", "use_channel_mentions", "use_slash_commands"}),
    "system_post_all": frozenset({"create_post", "use_channel_mentions"}),
    "system_post_all_public": frozenset({"create_post_public", "use_channel_mentions"}),
}



def props_runes(props: dict) -> int:
    """The length Mattermost measures: runes of Go's ``json.Marshal`` output, which writes ``<``, ``>``,
    ``&``, U+2028 and U+2029 as six-character escapes (``StringInterfaceToJSON``)."""
    text = json.dumps(props, ensure_ascii=False, separators=(",", ":"))
    return len(text) + 5 * sum(text.count(c) for c in "<>&\u2028\u2029")


def check_props_size(props: dict) -> None:
    if props_runes(props) > MAX_PROPS_RUNES:
        raise AppError(400, "model.post.is_valid.props.app_error", "Invalid props.")

def roles_grant(roles: Iterable[str], permission: str) -> bool:
    """``RolesGrantPermission``: any of the roles has the permission (system_admin has all)."""
    return any(r == "system_admin" or permission in ROLE_PERMISSIONS.get(r, ()) for r in roles)


class Event:
    """One WebSocket event, serialised once and shared by every recipient connection."""

    __slots__ = ("_prefix", "broadcast", "data", "event")

    def __init__(self, event: str, data: dict, broadcast: dict) -> None:
        self.event = event
        self.data = data
        self.broadcast = broadcast
        self._prefix: str | None = None

    def frame(self, seq: int) -> str:
        """The JSON text frame for a connection whose next sequence number is ``seq``."""
        if self._prefix is None:
            self._prefix = json.dumps(
                {"event": self.event, "data": self.data, "broadcast": self.broadcast},
                separators=(",", ":"))[:-1] + ',"seq":'
        return f"{self._prefix}{seq}}}"


Sink = Callable[[Event], None]


@dataclass
class Hook:
    """A command ``response_url`` hook (30-minute lifetime, five uses)."""

    id: str
    command_id: str
    user_id: str
    channel_id: str
    root_id: str
    create_at: int
    uses: int = 0


@dataclass
class EphemeralRecord:
    """An ephemeral post kept server-side only so its buttons stay clickable."""

    post: dict
    target_user_id: str
    integrations: dict[str, dict] = field(default_factory=dict)


class World:
    """All sandbox state plus the event fan-out."""

    def __init__(self, seed: Seed, server_version: str) -> None:
        self.server_version = server_version
        self.teams: dict[str, dict] = {}
        self.team_by_name: dict[str, str] = {}
        self.users: dict[str, dict] = {}
        self.user_by_name: dict[str, str] = {}
        self.tokens: dict[str, str] = {}
        self.passwords: dict[str, str] = {}  # user id -> SHA-256 of the seed's password (sandbox/oauth.py)
        self.bots: dict[str, dict] = {}
        self.team_members: dict[str, dict[str, dict]] = {}
        self.channels: dict[str, dict] = {}
        self.channel_by_name: dict[tuple[str, str], str] = {}
        self.channel_members: dict[str, dict[str, dict]] = {}
        self.posts: dict[str, dict] = {}
        self.channel_posts: dict[str, list[str]] = {}
        # Per channel, the deleted copies that every edit leaves behind (served only by ``since``).
        self.post_history: dict[str, list[str]] = {}
        self.action_integrations: dict[str, dict[str, dict]] = {}
        self.reactions: dict[str, list[dict]] = {}
        self.files: dict[str, tuple[dict, bytes]] = {}
        self.commands: dict[str, dict] = {}
        self.command_hooks: dict[str, Hook] = {}
        self.incoming_hooks: dict[str, dict] = {}
        self.ephemeral: dict[str, EphemeralRecord] = {}
        self._sinks: dict[str, set[Sink]] = {}
        self._global_sinks: set[Callable[[Event, set[str]], None]] = set()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._waiters_lock = threading.Lock()  # wait_for may run on another thread's loop
        self.version = 0
        self.post_edit_time_limit = -1  # ServiceSettings.PostEditTimeLimit (seconds; -1 = unlimited)
        self._load(seed)

    # ------------------------------------------------------------------ change notification
    def touch(self) -> None:
        """Record a state change and wake every ``wait_for`` caller (on any loop)."""
        self.version += 1
        with self._waiters_lock:
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            def _wake(f: asyncio.Future = fut) -> None:
                if not f.done():
                    f.set_result(None)
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if loop is running:
                _wake()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_wake)

    def changed_future(self) -> asyncio.Future:
        """A future resolved at the next state change."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        with self._waiters_lock:
            self._waiters.append((loop, fut))
        return fut

    # ------------------------------------------------------------------ event fan-out
    def subscribe(self, user_id: str, sink: Sink) -> Callable[[], None]:
        """Deliver every event addressed to ``user_id`` to ``sink``; returns an unsubscribe."""
        self._sinks.setdefault(user_id, set()).add(sink)

        def _unsubscribe() -> None:
            self._sinks.get(user_id, set()).discard(sink)
        return _unsubscribe

    def emit(self, event: str, data: dict, *, channel_id: str = "", user_id: str = "",
             team_id: str = "", omit_users: Iterable[str] | None = None) -> None:
        """Send an event to the users Mattermost would address it to."""
        omit = {u: True for u in omit_users} if omit_users else None
        ev = Event(event, data, {
            "omit_users": omit, "user_id": user_id, "channel_id": channel_id,
            "team_id": team_id, "connection_id": "", "omit_connection_id": "",
        })
        if user_id:
            recipients = {user_id}
        elif channel_id:
            recipients = set(self.channel_members.get(channel_id, ()))
        elif team_id:
            recipients = set(self.team_members.get(team_id, ()))
        else:
            recipients = set(self.users)
        if omit:
            recipients -= set(omit)
        for uid in recipients:
            for sink in list(self._sinks.get(uid, ())):
                sink(ev)

    # ------------------------------------------------------------------ seeding
    def _load(self, seed: Seed) -> None:
        t0 = now_ms()
        for st in seed.teams:
            tid = st.id or new_id()
            team = {
                "id": tid, "create_at": t0, "update_at": t0, "delete_at": 0,
                "display_name": st.display_name or st.name, "name": st.name,
                "description": st.description, "email": "", "type": st.type,
                "company_name": "", "allowed_domains": "", "invite_id": new_id(),
                "allow_open_invite": False, "scheme_id": None, "group_constrained": None,
                "cloud_limits_archived": False,
            }
            self.teams[tid] = team
            self.team_by_name[st.name] = tid
            self.team_members[tid] = {}
        for su in seed.users:
            uid = su.id or new_id()
            user = {
                "id": uid, "create_at": t0, "update_at": t0, "delete_at": 0,
                "username": su.username, "auth_data": "", "auth_service": "",
                "email": su.email or f"{su.username}@example.com", "email_verified": True,
                "nickname": su.nickname, "first_name": su.first_name, "last_name": su.last_name,
                "position": su.position, "roles": su.roles, "props": {},
                "notify_props": {
                    "channel": "true", "comments": "never", "desktop": "mention",
                    "desktop_sound": "true", "email": "true", "first_name": "false",
                    "mention_keys": "", "push": "mention", "push_status": "away",
                },
                "last_password_update": t0, "locale": "en",
                "timezone": {"automaticTimezone": "", "manualTimezone": "", "useAutomaticTimezone": "true"},
                "disable_welcome_email": False,
            }
            if su.is_bot:
                user["is_bot"] = True
                user["bot_description"] = su.bot_description
            self.users[uid] = user
            self.user_by_name[su.username] = uid
            tokens = su.all_tokens() or [new_id()]
            for tok in tokens:
                self.tokens[tok] = uid
            if su.password:
                self.passwords[uid] = hashlib.sha256(su.password.encode()).hexdigest()
            for m in su.memberships():
                self._add_team_member(self.team_by_name[m.name], uid, m.roles)
        for su in seed.users:
            if su.is_bot:
                uid = self.user_by_name[su.username]
                owner = self.user_by_name.get(su.owner or "", "")
                self.bots[uid] = {
                    "user_id": uid, "username": su.username,
                    "display_name": " ".join(p for p in (su.first_name, su.last_name) if p),
                    "description": su.bot_description, "owner_id": owner or uid,
                    "last_icon_update": 0, "create_at": t0, "update_at": t0, "delete_at": 0,
                }
        listed = {(c.team, c.name) for c in seed.channels}
        for st in seed.teams:
            tid = self.team_by_name[st.name]
            all_members = list(self.team_members[tid])
            for name, display in (("town-square", "Town Square"), ("off-topic", "Off-Topic")):
                if (st.name, name) not in listed:
                    ch = self._new_channel(tid, name, display, "O", creator_id="")
                    for uid in all_members:
                        self._add_channel_member(ch["id"], uid)
        for sc in seed.channels:
            tid = self.team_by_name[sc.team]
            if sc.type == "O" or sc.type == "P":
                self._check_channel_name(sc.name)
            ch = self._new_channel(tid, sc.name, sc.display_name or sc.name, sc.type,
                                   creator_id="", channel_id=sc.id, purpose=sc.purpose, header=sc.header)
            members = [self.user_by_name[n] for n in sc.members]
            if sc.name == "town-square":
                members += [u for u in self.team_members[tid] if u not in members]
            for uid in members:
                if uid not in self.team_members[tid]:
                    raise ValueError(f"channel {sc.team}/{sc.name}: {self.users[uid]['username']} "
                                     f"is not a member of team {sc.team}")
                self._add_channel_member(ch["id"], uid,
                                         admin=self.users[uid]["username"] in sc.admins)
        for sh in seed.incoming_webhooks:
            team_name, _, ch_name = sh.channel.rpartition("/")
            team_name = team_name or sh.team or (seed.teams[0].name if seed.teams else "")
            tid = self.team_by_name.get(team_name, "")
            cid = self.channel_by_name.get((tid, ch_name))
            if not cid:
                raise ValueError(f"webhook: unknown channel {sh.channel!r}")
            hid = sh.id or new_id()
            self.incoming_hooks[hid] = {
                "id": hid, "create_at": t0, "update_at": t0, "delete_at": 0,
                "user_id": self.user_by_name[sh.user], "channel_id": cid, "team_id": tid,
                "display_name": sh.display_name, "description": sh.description,
                "username": sh.username, "icon_url": sh.icon_url, "channel_locked": sh.channel_locked,
            }

    def _is_guest(self, user_id: str) -> bool:
        user = self.users.get(user_id)
        return user is not None and "system_guest" in user["roles"].split()

    def _add_team_member(self, team_id: str, user_id: str, roles: str = "team_user") -> dict:
        guest = self._is_guest(user_id)
        is_admin = "team_admin" in roles.split() and not guest
        member = {
            "team_id": team_id, "user_id": user_id,
            "roles": "team_guest" if guest else ("team_user team_admin" if is_admin else "team_user"),
            "delete_at": 0, "scheme_guest": guest, "scheme_user": not guest,
            "scheme_admin": is_admin, "explicit_roles": "",
        }
        self.team_members[team_id][user_id] = member
        return member

    @staticmethod
    def _check_channel_name(name: str) -> None:
        if (len(name) < 2 or len(name) > 64 or not CHANNEL_NAME_RE.match(name)
                or re.fullmatch(r"[a-z0-9]{26}__[a-z0-9]{26}", name)
                or re.fullmatch(r"[a-f0-9]{40}", name)):
            raise AppError(400, "model.channel.is_valid.2_or_more.app_error",
                           "Name must be 2 or more lowercase alphanumeric characters.")

    def _new_channel(self, team_id: str, name: str, display_name: str, ctype: str, *,
                     creator_id: str, channel_id: str | None = None, purpose: str = "",
                     header: str = "") -> dict:
        existing = self.channel_by_name.get((team_id, name))
        if existing and self.channels[existing]["delete_at"]:
            raise AppError(400, "store.sql_channel.save_channel.previously.app_error",
                           "A channel with that name was previously created and is archived.")
        if existing:
            raise AppError(400, "store.sql_channel.save_channel.exists.app_error",
                           "A channel with that name already exists on the same team.")
        t = now_ms()
        cid = channel_id or new_id()
        ch = {
            "id": cid, "create_at": t, "update_at": t, "delete_at": 0, "team_id": team_id,
            "type": ctype, "display_name": display_name, "name": name, "header": header,
            "purpose": purpose, "last_post_at": t, "total_msg_count": 0, "extra_update_at": 0,
            "creator_id": creator_id, "scheme_id": None, "props": None, "group_constrained": None,
            "shared": None, "total_msg_count_root": 0, "policy_id": None, "last_root_post_at": t,
        }
        self.channels[cid] = ch
        self.channel_by_name[(team_id, name)] = cid
        self.channel_members[cid] = {}
        self.channel_posts[cid] = []
        return ch

    def _add_channel_member(self, channel_id: str, user_id: str, *, admin: bool = False) -> dict:
        t = now_ms()
        guest = self._is_guest(user_id)
        admin = admin and not guest
        member = {
            "channel_id": channel_id, "user_id": user_id,
            "roles": "channel_guest" if guest else ("channel_user channel_admin" if admin else "channel_user"),
            "last_viewed_at": t, "msg_count": 0, "mention_count": 0, "mention_count_root": 0,
            "urgent_mention_count": 0, "msg_count_root": 0,
            "notify_props": dict(DEFAULT_CHANNEL_NOTIFY), "last_update_at": t,
            "scheme_guest": guest, "scheme_user": not guest, "scheme_admin": admin, "explicit_roles": "",
        }
        self.channel_members[channel_id][user_id] = member
        return member

    # ------------------------------------------------------------------ lookups and permissions
    def user_of_token(self, token: str) -> dict | None:
        uid = self.tokens.get(token)
        return self.users.get(uid) if uid else None

    def is_admin(self, user_id: str) -> bool:
        user = self.users.get(user_id)
        return user is not None and "system_admin" in user["roles"].split()

    def has_role(self, user_id: str, role: str) -> bool:
        user = self.users.get(user_id)
        return user is not None and role in user["roles"].split()

    def is_team_member(self, team_id: str, user_id: str) -> bool:
        return user_id in self.team_members.get(team_id, {})

    def is_team_admin(self, team_id: str, user_id: str) -> bool:
        m = self.team_members.get(team_id, {}).get(user_id)
        return self.is_admin(user_id) or bool(m and m["scheme_admin"])

    def is_member(self, channel_id: str, user_id: str) -> bool:
        return user_id in self.channel_members.get(channel_id, {})

    # Permission checks, modelled on app/authorization.go with the default roles of
    # model/role.go MakeDefaultRoles (see ROLE_PERMISSIONS and sandbox/README.md).
    def has_system_permission(self, user_id: str, permission: str) -> bool:
        """``SessionHasPermissionTo``: the user's system roles grant it."""
        user = self.users.get(user_id)
        return user is not None and roles_grant(user["roles"].split(), permission)

    def has_team_permission(self, team_id: str, user_id: str, permission: str) -> bool:
        """``SessionHasPermissionToTeam``: the team member's roles, else the system roles."""
        if not team_id:
            return False
        m = self.team_members.get(team_id, {}).get(user_id)
        if m and roles_grant(m["roles"].split(), permission):
            return True
        return self.has_system_permission(user_id, permission)

    def has_channel_permission(self, user_id: str, ch: dict | None, permission: str) -> bool:
        """``SessionHasPermissionToChannel``: channel member roles, then manage_system, then the
        team (or, for DMs, system) roles. A channel that does not exist grants nothing, so
        callers answer 403 for it exactly as for one the user may not see."""
        if ch is None:
            return False
        m = self.channel_members.get(ch["id"], {}).get(user_id)
        if m and roles_grant(m["roles"].split(), permission):
            return True
        if self.is_admin(user_id):
            return True
        if ch["team_id"]:
            return self.has_team_permission(ch["team_id"], user_id, permission)
        return self.has_system_permission(user_id, permission)

    def can_read_channel(self, user_id: str, ch: dict) -> bool:
        """``SessionHasPermissionToReadChannel``: read_channel_content on the channel, or
        read_public_channel in its team for a public channel (posts, pinned, one post)."""
        if self.has_channel_permission(user_id, ch, "read_channel_content"):
            return True
        return ch["type"] == "O" and self.has_team_permission(ch["team_id"], user_id, "read_public_channel")

    def can_read_members(self, user_id: str, ch: dict | None) -> bool:
        """``read_channel`` checked at channel scope: team_user lacks it, so only members
        (and system admins) may list members, read one membership or the stats."""
        return self.has_channel_permission(user_id, ch, "read_channel")

    def can_post(self, user_id: str, ch: dict) -> bool:
        """``userCreatePostPermissionCheckWithContext``: create_post on the channel, or
        create_post_public in the team for a public channel (system_post_all[_public])."""
        if self.has_channel_permission(user_id, ch, "create_post"):
            return True
        return ch["type"] == "O" and self.has_team_permission(ch["team_id"], user_id, "create_post_public")

    def can_manage_members(self, user_id: str, ch: dict) -> bool:
        """manage_public/private_channel_members at channel scope (channel_user has both)."""
        permission = "manage_public_channel_members" if ch["type"] == "O" else "manage_private_channel_members"
        return self.has_channel_permission(user_id, ch, permission)

    def get_channel(self, channel_id: str) -> dict:
        ch = self.channels.get(channel_id)
        if ch is None:
            raise errors.channel_missing()
        return ch

    def get_user(self, user_id: str) -> dict:
        user = self.users.get(user_id)
        if user is None:
            raise errors.user_missing()
        return user

    def get_post(self, post_id: str, *, include_deleted: bool = False) -> dict:
        post = self.posts.get(post_id)
        if post is None or (post["delete_at"] and not include_deleted):
            raise errors.post_missing()
        return post

    def channel_team_name(self, ch: dict) -> str:
        team = self.teams.get(ch["team_id"])
        return team["name"] if team else ""

    # ------------------------------------------------------------------ channels
    def create_channel(self, *, team_id: str, name: str, display_name: str, ctype: str,
                       creator_id: str, purpose: str = "", header: str = "") -> dict:
        self._check_channel_name(name)
        if not display_name or len(display_name) > 64:
            raise AppError(400, "model.channel.is_valid.display_name.app_error", "Invalid display name.")
        if len(header) > 1024:
            raise AppError(400, "model.channel.is_valid.header.app_error", "Invalid header.")
        if len(purpose) > 250:
            raise AppError(400, "model.channel.is_valid.purpose.app_error", "Invalid purpose.")
        ch = self._new_channel(team_id, name, display_name, ctype, creator_id=creator_id,
                               purpose=purpose, header=header)
        self._add_channel_member(ch["id"], creator_id, admin=True)
        # app/channel.go CreateChannelWithUser: the creator's join message (public and private
        # alike, as postJoinChannelMessage makes it), then ``channel_created`` to the creator.
        creator = self.users[creator_id]
        self.create_post(user_id=creator_id, channel_id=ch["id"], type="system_join_channel",
                         message=f"{creator['username']} joined the channel.",
                         props={"username": creator["username"]})
        self.emit("channel_created", {"channel_id": ch["id"], "team_id": team_id}, user_id=creator_id)
        self.touch()
        return ch

    def direct_channel(self, a: str, b: str) -> tuple[dict, bool]:
        """The DM channel between two users, created if missing; returns (channel, created)."""
        name = "__".join(sorted((a, b)))
        cid = self.channel_by_name.get(("", name))
        if cid:
            return self.channels[cid], False
        ch = self._new_channel("", name, "", "D", creator_id="")
        for uid in {a, b}:
            self._add_channel_member(ch["id"], uid)
        self.emit("direct_added", {"creator_id": a, "teammate_id": b}, channel_id=ch["id"])
        self.touch()
        return ch, True

    def patch_channel(self, ch: dict, patch: dict) -> dict:
        if "name" in patch and patch["name"] != ch["name"]:
            self._check_channel_name(patch["name"])
            if (ch["team_id"], patch["name"]) in self.channel_by_name:
                raise AppError(400, "store.sql_channel.update.exists.app_error",
                               "A channel with that handle already exists.")
            del self.channel_by_name[(ch["team_id"], ch["name"])]
            ch["name"] = patch["name"]
            self.channel_by_name[(ch["team_id"], ch["name"])] = ch["id"]
        for key in ("display_name", "purpose", "header"):
            if key in patch and isinstance(patch[key], str):
                ch[key] = patch[key]
        ch["update_at"] = now_ms()
        self.emit("channel_updated", {"channel": json.dumps(ch)}, channel_id=ch["id"])
        self.touch()
        return ch

    def archive_channel(self, ch: dict, actor_id: str) -> None:
        """Archive (soft-delete) a channel, like DELETE /channels/{id}: its name stays taken."""
        if ch["delete_at"]:
            return
        ch["delete_at"] = ch["update_at"] = now_ms()
        self.create_post(user_id=actor_id, channel_id=ch["id"], type="system_channel_deleted",
                         message=f"{self.users[actor_id]['username']} archived the channel",
                         props={"username": self.users[actor_id]["username"]})
        self.emit("channel_deleted", {"channel_id": ch["id"], "delete_at": ch["delete_at"]}, channel_id=ch["id"])
        self.touch()

    def moderate_posting(self, ch: dict) -> str:
        """Take ``create_post`` from the channel's members, like channel moderation (System Console,
        PUT /channels/{id}/moderations/patch): the channel gets a scheme whose user role lacks it, and
        its members' ``roles`` name that role (``channelMemberWithSchemeRoles.ToModel``). Channel
        admins keep posting. Members added later get the default role. Returns the role's name."""
        role = f"{ch['id']}_channel_user"
        ROLE_PERMISSIONS[role] = ROLE_PERMISSIONS["channel_user"] - {"create_post"}
        for member in self.channel_members[ch["id"]].values():
            if not member["scheme_admin"]:
                member["roles"] = " ".join(role if r == "channel_user" else r for r in member["roles"].split())
        self.touch()
        return role

    def add_member(self, ch: dict, user_id: str, actor_id: str, post_root_id: str = "") -> dict:
        """Add a user (idempotent), with the system post and ``user_added`` event."""
        existing = self.channel_members[ch["id"]].get(user_id)
        if existing:
            return existing
        member = self._add_channel_member(ch["id"], user_id)
        user = self.users[user_id]
        if actor_id == user_id:
            self.create_post(user_id=user_id, channel_id=ch["id"], type="system_join_channel",
                             message=f"{user['username']} joined the channel.",
                             props={"username": user["username"]}, root_id=post_root_id)
        else:
            actor = self.users[actor_id]
            self.create_post(user_id=actor_id, channel_id=ch["id"], type="system_add_to_channel",
                             message=f"{user['username']} added to the channel by {actor['username']}.",
                             props={"userId": actor_id, "username": actor["username"],
                                    "addedUserId": user_id, "addedUsername": user["username"]},
                             root_id=post_root_id)
        # app/channel.go AddUserToChannel: one event to the channel without the added user, and
        # one to the added user (broadcast user_id and channel_id), both {user_id, team_id}.
        self.emit("user_added", {"user_id": user_id, "team_id": ch["team_id"]}, channel_id=ch["id"],
                  omit_users=[user_id])
        self.emit("user_added", {"user_id": user_id, "team_id": ch["team_id"]}, channel_id=ch["id"],
                  user_id=user_id)
        self.touch()
        return member

    def remove_member(self, ch: dict, user_id: str, actor_id: str) -> None:
        """Remove a user, post the system message, and notify channel and removed user."""
        if user_id not in self.channel_members[ch["id"]]:
            return
        user = self.users[user_id]
        if actor_id == user_id:
            # app/channel.go postLeaveChannelMessage writes the user as "@name" too.
            self.create_post(user_id=user_id, channel_id=ch["id"], type="system_leave_channel",
                             message=f"@{user['username']} left the channel.",
                             props={"username": user["username"]})
        else:
            # app/channel.go postRemoveFromChannelMessage writes the removed user as "@name".
            self.create_post(user_id=actor_id, channel_id=ch["id"], type="system_remove_from_channel",
                             message=f"@{user['username']} removed from the channel.",
                             props={"removedUserId": user_id, "removedUsername": user["username"]})
        del self.channel_members[ch["id"]][user_id]
        # app/channel.go removeUserFromChannel: {user_id, remover_id} to the channel (the removed
        # user is no longer in it), {channel_id, remover_id} to the removed user.
        self.emit("user_removed", {"user_id": user_id, "remover_id": actor_id}, channel_id=ch["id"])
        self.emit("user_removed", {"channel_id": ch["id"], "remover_id": actor_id}, user_id=user_id)
        self.touch()

    def channel_stats(self, ch: dict) -> dict:
        cid = ch["id"]
        return {
            "channel_id": cid,
            "member_count": len(self.channel_members[cid]),
            "guest_count": 0,
            "pinnedpost_count": sum(1 for pid in self.channel_posts[cid]
                                    if self.posts[pid]["is_pinned"] and not self.posts[pid]["delete_at"]),
            "files_count": sum(1 for info, _ in self.files.values()
                               if info["channel_id"] == cid and info.get("post_id") and not info["delete_at"]),
        }

    # ------------------------------------------------------------------ posts
    def _prepare_actions(self, props: dict, previous: dict[str, dict] | None = None) -> dict[str, dict]:
        """Give id-less actions ids and move ``integration`` out of the served props."""
        integrations: dict[str, dict] = {}
        attachments = props.get("attachments")
        if not isinstance(attachments, list):
            return integrations
        for att in attachments:
            if not isinstance(att, dict):
                continue
            for action in att.get("actions") or []:
                if not isinstance(action, dict):
                    continue
                if not action.get("id"):
                    action["id"] = new_id()
                integration = action.pop("integration", None)
                if isinstance(integration, dict):
                    integrations[str(action["id"])] = integration
                elif previous and str(action["id"]) in previous:
                    integrations[str(action["id"])] = previous[str(action["id"])]
        return integrations

    def mentions_for(self, ch: dict, sender_id: str, message: str) -> list[str]:
        members = self.channel_members[ch["id"]]
        found: list[str] = []
        if ch["type"] == "D":
            found = [u for u in members if u != sender_id]
        for m in MENTION_RE.finditer(message):
            name = m.group(1).lower().rstrip(".-_")
            if name in ("channel", "all", "here"):
                found += [u for u in members if u != sender_id]
                continue
            uid = self.user_by_name.get(name)
            if uid and uid in members and uid != sender_id:
                found.append(uid)
        return list(dict.fromkeys(found))

    def create_post(self, *, user_id: str, channel_id: str, message: str = "", root_id: str = "",
                    props: dict | None = None, file_ids: list[str] | None = None, type: str = "",
                    pending_post_id: str = "", from_webhook: bool = False,
                    override_username: str = "") -> dict:
        """Store a post exactly as Mattermost would and broadcast ``posted``."""
        ch = self.channels[channel_id]
        if len(message) > MAX_MESSAGE_RUNES:
            raise AppError(400, "model.post.is_valid.message_length.app_error",
                           "Message property length is greater than the maximum allowed.")
        root = None
        if root_id:
            root = self.posts.get(root_id)
            if root is None or root["channel_id"] != channel_id or root["delete_at"] or root["root_id"]:
                raise AppError(400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.")
        props = copy.deepcopy(props) if isinstance(props, dict) else {}
        check_props_size(props)
        if self.users[user_id].get("is_bot"):
            props["from_bot"] = "true"
        if from_webhook:
            props["from_webhook"] = "true"
        if override_username:
            props["override_username"] = override_username
        integrations = self._prepare_actions(props)
        t = now_ms()
        pid = new_id()
        post: dict[str, Any] = {
            "id": pid, "create_at": t, "update_at": t, "edit_at": 0, "delete_at": 0,
            "is_pinned": False, "user_id": user_id, "channel_id": channel_id, "root_id": root_id,
            "original_id": "", "message": message, "type": type, "props": props,
            "hashtags": hashtags_of(message), "pending_post_id": pending_post_id, "reply_count": 0,
            "last_reply_at": 0, "participants": None, "metadata": {},
        }
        files = []
        for fid in file_ids or []:
            rec = self.files.get(fid)
            if rec and rec[0]["user_id"] == user_id and not rec[0].get("post_id"):
                rec[0]["post_id"] = pid
                files.append(rec[0])
        if files:
            post["file_ids"] = [f["id"] for f in files]
            post["metadata"]["files"] = files
        if integrations:
            self.action_integrations[pid] = integrations
        self.posts[pid] = post
        self.channel_posts[channel_id].append(pid)
        if root is not None:
            root["update_at"] = t
            root["last_reply_at"] = t
            root["reply_count"] = sum(1 for p in self._thread_ids(root_id)
                                      if p != root_id and not self.posts[p]["delete_at"])
            post["reply_count"] = root["reply_count"]
        ch["last_post_at"] = t
        if not root_id:
            ch["last_root_post_at"] = t
        if type not in UNCOUNTED_TYPES:
            ch["total_msg_count"] += 1
            if not root_id:
                ch["total_msg_count_root"] += 1
            sender = self.channel_members[channel_id].get(user_id)
            if sender:
                sender["msg_count"] = ch["total_msg_count"]
                sender["msg_count_root"] = ch["total_msg_count_root"]
                sender["last_viewed_at"] = t
        self._emit_posted(ch, post, override_username)
        self.touch()
        return post

    def _emit_posted(self, ch: dict, post: dict, override_username: str = "") -> None:
        sender = self.users[post["user_id"]]
        if post["type"].startswith("system_"):
            sender_name = "System"
        elif override_username:
            sender_name = override_username
        else:
            sender_name = "@" + sender["username"]
        data: dict[str, Any] = {
            "channel_display_name": ch["display_name"] if ch["type"] != "D" else "@" + sender["username"],
            "channel_name": ch["name"], "channel_type": ch["type"],
            "post": json.dumps(post), "sender_name": sender_name,
            "set_online": True, "team_id": ch["team_id"],
        }
        mentions = self.mentions_for(ch, post["user_id"], post_mention_text(post)) if not post["type"] else []
        if mentions:
            data["mentions"] = json.dumps(mentions)
        if post.get("file_ids"):
            data["otherFile"] = "true"
        self.emit("posted", data, channel_id=ch["id"])

    def _thread_ids(self, root_id: str) -> list[str]:
        root = self.posts[root_id]
        return [pid for pid in self.channel_posts[root["channel_id"]]
                if pid == root_id or self.posts[pid]["root_id"] == root_id]

    def edit_post(self, post: dict, *, message: str | None = None, props: dict | None = None,
                  file_ids: list[str] | None = None, is_pinned: bool | None = None,
                  has_reactions: bool | None = None, replace_props: bool = False,
                  edited: bool = True) -> dict:
        """Apply an edit, keep action integrations, bump timestamps, broadcast ``post_edited``.

        Like store/sqlstore/post_store.go ``Update`` (reached from app ``UpdatePost`` for every
        edit: message, props, pin/unpin, files), the version before the edit is kept as a new
        row with ``original_id`` = the post's id and ``delete_at`` = ``update_at`` = the edit time;
        editing a reply also bumps its root's ``update_at``.
        """
        if isinstance(props, dict):
            check_props_size(props)  # before anything changes: a refused edit leaves the post as it was
        t = now_ms()
        self._keep_history(post, t)
        if message is not None:
            if len(message) > MAX_MESSAGE_RUNES:
                raise AppError(400, "model.post.is_valid.message_length.app_error",
                               "Message property length is greater than the maximum allowed.")
            post["message"] = message
            post["hashtags"] = hashtags_of(message)
        if props is not None or replace_props:
            new_props = copy.deepcopy(props) if isinstance(props, dict) else {}
            previous = self.action_integrations.get(post["id"])
            integrations = self._prepare_actions(new_props, previous)
            if integrations:
                self.action_integrations[post["id"]] = integrations
            else:
                self.action_integrations.pop(post["id"], None)
            post["props"] = new_props
        if is_pinned is not None:
            post["is_pinned"] = bool(is_pinned)
        if has_reactions is not None and has_reactions:
            post["has_reactions"] = True
        if file_ids is not None:
            post["file_ids"] = [f for f in file_ids if f in self.files]
            if not post["file_ids"]:
                post.pop("file_ids")
        if edited:
            post["edit_at"] = t
        post["update_at"] = t
        root = self.posts.get(post["root_id"]) if post["root_id"] else None
        if root is not None and root["update_at"] < t:
            root["update_at"] = t
        self.emit("post_edited", {"post": json.dumps(post)}, channel_id=post["channel_id"])
        self.touch()
        return post

    def _keep_history(self, post: dict, t: int) -> None:
        # The stored row carries no metadata (that is computed per request, keyed by the new id)
        # and no pending_post_id (not a database column).
        old = copy.deepcopy({k: v for k, v in post.items() if k != "metadata"})
        old.update(id=new_id(), original_id=post["id"], delete_at=t, update_at=t, pending_post_id="",
                   metadata={})
        self.posts[old["id"]] = old
        self.post_history.setdefault(post["channel_id"], []).append(old["id"])

    def delete_post(self, post: dict, actor_id: str) -> None:
        """Soft-delete a post (and its replies when it is a root); broadcast ``post_deleted``."""
        t = now_ms()
        ids = self._thread_ids(post["id"]) if not post["root_id"] else [post["id"]]
        for pid in ids:
            p = self.posts[pid]
            if not p["delete_at"]:
                p["delete_at"] = t
                p["update_at"] = t
        if post["root_id"] and post["root_id"] in self.posts:
            root = self.posts[post["root_id"]]
            root["reply_count"] = sum(1 for p in self._thread_ids(root["id"])
                                      if p != root["id"] and not self.posts[p]["delete_at"])
            root["update_at"] = t
        for info, _ in self.files.values():
            if info.get("post_id") in ids:
                info["delete_at"] = t
        self.emit("post_deleted", {"post": json.dumps(post), "delete_by": actor_id},
                  channel_id=post["channel_id"])
        self.touch()

    @staticmethod
    def add_action_cookies(props: dict, integrations: dict) -> None:
        """Ephemeral posts are not stored, so each clickable action carries a cookie the click must
        echo (Mattermost encrypts the action into it; a random id stands in for that here)."""
        for att in props.get("attachments") or []:
            for action in (att.get("actions") or []) if isinstance(att, dict) else []:
                if isinstance(action, dict) and str(action.get("id")) in integrations:
                    action["cookie"] = new_id()

    def send_ephemeral(self, *, target_user_id: str, channel_id: str, message: str, author_id: str,
                       root_id: str = "", props: dict | None = None) -> dict:
        """Deliver a ``system_ephemeral`` post to one user only; it is never stored as a post."""
        props = copy.deepcopy(props) if isinstance(props, dict) else {}
        integrations = self._prepare_actions(props)
        t = now_ms()
        post: dict[str, Any] = {
            "id": new_id(), "create_at": t, "update_at": t, "edit_at": 0, "delete_at": 0,
            "is_pinned": False, "user_id": author_id, "channel_id": channel_id, "root_id": root_id,
            "original_id": "", "message": message, "type": "system_ephemeral", "props": props,
            "hashtags": "", "pending_post_id": "", "reply_count": 0, "last_reply_at": 0,
            "participants": None, "metadata": {},
        }
        self.add_action_cookies(props, integrations)
        self.ephemeral[post["id"]] = EphemeralRecord(post, target_user_id, integrations)
        self.emit("ephemeral_message", {"post": json.dumps(post)}, channel_id=channel_id,
                  user_id=target_user_id)
        self.touch()
        return post

    # ------------------------------------------------------------------ reactions
    def add_reaction(self, post: dict, user_id: str, emoji: str) -> dict:
        existing = [r for r in self.reactions.setdefault(post["id"], [])
                    if r["user_id"] == user_id and r["emoji_name"] == emoji]
        if existing:
            return existing[0]
        t = now_ms()
        reaction = {"user_id": user_id, "post_id": post["id"], "emoji_name": emoji, "create_at": t,
                    "update_at": t, "delete_at": 0, "remote_id": "", "channel_id": post["channel_id"]}
        self.reactions[post["id"]].append(reaction)
        post["has_reactions"] = True
        post["update_at"] = t
        post["metadata"]["reactions"] = list(self.reactions[post["id"]])
        # app/reaction.go SaveReactionForPost → sendReactionEvent: the saved reaction (its channel_id
        # filled in from the post) as a JSON string, to every member of the post's channel.
        self.emit("reaction_added", {"reaction": json.dumps(reaction)}, channel_id=post["channel_id"])
        self.touch()
        return reaction

    def remove_reaction(self, post: dict, user_id: str, emoji: str) -> None:
        items = self.reactions.get(post["id"], [])
        gone = [r for r in items if r["user_id"] == user_id and r["emoji_name"] == emoji]
        if not gone:
            return
        self.reactions[post["id"]] = [r for r in items if r not in gone]
        t = now_ms()
        post["update_at"] = t
        if self.reactions[post["id"]]:
            post["metadata"]["reactions"] = list(self.reactions[post["id"]])
        else:
            post["metadata"].pop("reactions", None)
            post["has_reactions"] = False
        # api4/reaction.go deleteReaction hands app DeleteReactionForPost a Reaction of only the user,
        # post and emoji named in the URL; store Delete (``PreUpdate``) stamps its UpdateAt and writes
        # DeleteAt in SQL only, and app/reaction.go sendReactionEvent broadcasts that struct to the
        # channel: no create_at, no delete_at, no channel_id (the broadcast names the channel).
        removed = {"user_id": user_id, "post_id": post["id"], "emoji_name": emoji, "create_at": 0,
                   "update_at": t, "delete_at": 0, "remote_id": "", "channel_id": ""}
        self.emit("reaction_removed", {"reaction": json.dumps(removed)}, channel_id=post["channel_id"])
        self.touch()

    # ------------------------------------------------------------------ views for the Python API
    def channel_post_ids(self, channel_id: str, *, include_deleted: bool = False) -> list[str]:
        ids = self.channel_posts.get(channel_id, [])
        if include_deleted:
            return list(ids)
        return [pid for pid in ids if not self.posts[pid]["delete_at"]]

    def snapshot(self, obj: Any) -> Any:
        """A deep copy, so callers can never alter sandbox state by accident."""
        return copy.deepcopy(obj)


def hashtags_of(message: str) -> str:
    """Space-separated hashtags (at least three characters, starting with a letter)."""
    return " ".join(dict.fromkeys("#" + t for t in HASHTAG_RE.findall(message) if len(t) >= 2))


def check_id(value: str, name: str) -> str:
    """400 ``invalid_url_param`` for an id path parameter that is not 26 alphanumerics."""
    if not is_valid_id(value):
        raise errors.invalid_url_param(name)
    return value
