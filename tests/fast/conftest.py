"""The fast layer: the real services and plugins on the in-memory store and the recording fake
Mattermost client — no sandbox, no sockets, no threads; each test runs in milliseconds.

Requests are built from literal payloads as Mattermost sends them (protocol.md §1.2 slash command
form, §2.2 button POST, §3.4 dialog submission), turned into the same models the inbound server
builds (signatures checked with the same signer), and dispatched through the one Registry. A
handler's failure becomes the user's words through ``gateway.errors.user_message``, as the
inbound server answers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bot import CommandCenter
from domain.models import Playbook
from domain.playbooks import StageDraft, StepDraft, new_playbook
from gateway.errors import user_message
from gateway.models import (
    ActionCallback,
    ActionReply,
    Channel,
    CommandReply,
    DialogReply,
    DialogSubmission,
    Post,
    SlashCommand,
    Team,
    User,
)
from gateway.signing import Signer
from services.context import BotContext
from settings import Settings
from storage import open_store
from tests.fakes.mattermost import FakeMattermost, OpenedDialog

TOKEN = "t" * 26
SECRET = "s" * 40


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/fast/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.fast)


@dataclass
class People:
    alice: User  # in acme; commander-to-be
    bob: User  # in acme
    carol: User  # in acme, in no incident channel (sees public incidents only)
    dave: User  # in the other team only
    admin: User  # a system admin in acme


class Harness:
    """One bot over one fake server. ``slash``/``click``/``submit`` send what Mattermost would."""

    def __init__(self, mm: FakeMattermost, ctx: BotContext, app: CommandCenter, people: People,
                 acme: Team, other: Team, town: Channel) -> None:
        self.mm, self.ctx, self.app = mm, ctx, app
        self.people, self.acme, self.other, self.town = people, acme, other, town
        self.registry = app.registry
        self._trigger = 0

    @property
    def store(self):
        return self.ctx.store

    def trigger_id(self) -> str:
        self._trigger += 1
        return f"trigger{self._trigger:020d}"

    async def slash(self, user: User, channel: Channel, text: str, *, team: Team | None = None) -> CommandReply:
        """``/incident <text>`` typed by ``user`` in ``channel`` (the form of protocol.md §1.2)."""
        team = team or self.acme
        form: dict[str, Any] = {
            "token": TOKEN, "team_id": team.id, "team_domain": team.name, "channel_id": channel.id,
            "channel_name": channel.name, "user_id": user.id, "user_name": user.username,
            "command": "/incident", "text": text, "trigger_id": self.trigger_id(),
            "response_url": f"{self.mm.base_url}/hooks/commands/x",
        }
        command = SlashCommand.model_validate(form)
        try:
            return await self.registry.command(command)
        except Exception as error:
            return CommandReply(text=user_message(error))

    async def click(self, user: User, post: Post, button: str, *, option: str | None = None,
                    team: Team | None = None) -> ActionReply:
        """``user`` clicks the button (or picks ``option`` in the menu) named ``button`` on ``post``."""
        context = self.button(post, button)["integration"]["context"]
        if option is not None:
            context = {**context, "selected_option": option}
        body: dict[str, Any] = {
            "user_id": user.id, "user_name": user.username, "channel_id": post.channel_id,
            "channel_name": "", "team_id": (team or self.acme).id, "team_domain": (team or self.acme).name,
            "post_id": post.id, "trigger_id": self.trigger_id(), "type": "button", "data_source": "",
            "context": context,
        }
        action, args = self.ctx.signer.open_action_context(body["context"], body["channel_id"])
        callback = ActionCallback.model_validate({
            **{k: v for k, v in body.items() if k != "context"}, "action": action, "args": args,
            "selected_option": context.get("selected_option")})
        try:
            return await self.registry.action(callback)
        except Exception as error:
            return ActionReply(ephemeral_text=user_message(error))

    async def submit(self, user: User, dialog: OpenedDialog, submission: dict[str, Any], *,
                     channel: Channel | None = None, cancelled: bool = False) -> DialogReply:
        """``user`` submits ``dialog`` (protocol.md §3.4) from ``channel`` (where it was opened)."""
        channel_id = channel.id if channel else self.town.id
        body = {"type": "dialog_submission", "callback_id": dialog.dialog["callback_id"],
                "state": dialog.dialog["state"], "user_id": user.id, "channel_id": channel_id,
                "team_id": self.acme.id, "submission": submission, "cancelled": cancelled}
        state = self.ctx.signer.open_dialog_state(body["state"], body["callback_id"], user.id, channel_id)
        form = DialogSubmission.model_validate({
            "callback_id": body["callback_id"], "user_id": user.id, "channel_id": channel_id,
            "team_id": body["team_id"], "submission": submission, "cancelled": cancelled, "args": state.args})
        try:
            return await self.registry.dialog(form)
        except Exception as error:
            return DialogReply(error=user_message(error))

    async def direct_message(self, user: User, text: str) -> list[Post]:
        """``user`` writes ``text`` to the bot in their direct channel; returns the bot's answers there.

        The ``posted`` event as the event stream hands it on (nested JSON decoded, protocol.md §4)."""
        dm = await self.mm.direct_channel_with(user.id)
        before = {p.id for p in self.mm.posts_in(dm.id)}
        post = self.mm.post_as(user, dm, text)
        await self.registry.event({
            "event": "posted", "seq": 1,
            "data": {"channel_display_name": "@" + user.username, "channel_name": dm.name, "channel_type": "D",
                     "sender_name": "@" + user.username, "set_online": True, "team_id": "",
                     "post": post.model_dump(mode="json")},
            "broadcast": {"omit_users": None, "user_id": "", "channel_id": dm.id, "team_id": ""}})
        return [p for p in self.mm.posts_in(dm.id) if p.id not in before and p.user_id == self.mm.user_id]

    # Reading the world -----------------------------------------------------------------------

    @staticmethod
    def buttons(post: Post) -> list[dict[str, Any]]:
        return [action for attachment in post.props.get("attachments", []) for action in attachment.get("actions", [])]

    def button(self, post: Post, name: str) -> dict[str, Any]:
        found = [b for b in self.buttons(post) if b["name"] == name]
        assert found, f"no button {name!r} among {[b['name'] for b in self.buttons(post)]}"
        return found[0]

    def card_of(self, incident) -> Post:
        return self.mm.posts[incident.card_post_id]

    async def playbook(self, title: str = "Outage", *, public: bool = True,
                       members: tuple[User, ...] = ()) -> Playbook:
        p = self.people
        member_ids = [u.id for u in (members or (p.alice, p.bob, p.carol))]
        playbook = new_playbook(
            team_id=self.acme.id, title=title, created_by=member_ids[0], now=self.mm.now_ms,
            create_public_channel=public, member_ids=member_ids,
            stages=[StageDraft(title="Triage", steps=(StepDraft(title="Acknowledge"), StepDraft(title="Assess"))),
                    StageDraft(title="Resolution", steps=(StepDraft(title="Fix it"),))])
        return await self.store.create_playbook(playbook)

    async def start(self, user: User | None = None, name: str = "Checkout errors", *,
                    playbook: Playbook | None = None, where: Channel | None = None):
        """Type ``/incident start <name>`` and submit its dialog; returns the incident."""
        user = user or self.people.alice
        playbook = playbook or await self.playbook()
        reply = await self.slash(user, where or self.town, f"start {name}")
        assert reply.text == "", reply.text
        dialog = self.mm.dialogs[-1]
        outcome = await self.submit(user, dialog, {"playbook": playbook.id, "name": name, "description": ""},
                                    channel=where or self.town)
        assert outcome.closes, (outcome.errors, outcome.error)
        incident = next(i for i in (await self.store.list_incidents(self.acme.id, is_admin=True, per_page=100)).items
                        if i.name == name)
        return incident

    def channel_of(self, incident) -> Channel:
        return self.mm.channels[incident.channel_id]

    async def fresh(self, incident):
        return await self.store.get_incident(incident.id)


def fake_world() -> tuple[FakeMattermost, People, Team, Team, Channel]:
    mm = FakeMattermost()
    alice, bob, carol = mm.add_user("alice"), mm.add_user("bob"), mm.add_user("carol")
    dave, admin = mm.add_user("dave"), mm.add_user("root", admin=True)
    acme = mm.add_team("acme", [alice, bob, carol, admin])
    other = mm.add_team("other", [dave])
    town = mm.add_channel(acme, "town-square", [alice, bob, carol, admin])
    mm.add_channel(other, "lobby", [dave])
    return mm, People(alice, bob, carol, dave, admin), acme, other, town


@pytest.fixture
async def fast(tmp_path):
    mm, people, acme, other, town = fake_world()
    settings = Settings(_env_file=None, mattermost_url=mm.base_url, bot_token="x" * 26,
                        data_dir=tmp_path, signing_secret=SECRET, database_url="memory://", telemetry_enabled=False)
    store = await open_store("memory://")
    ctx = BotContext(settings=settings, client=mm, signer=Signer(SECRET), store=store,
                     callback_base_url="http://bot.test")
    app = CommandCenter(settings)
    app.registry.identify(mm.user_id, mm.username)
    for plugin in app.build_plugins(ctx):
        app.registry.include(plugin)
    harness = Harness(mm, ctx, app, people, acme, other, town)
    yield harness
    await store.close()
