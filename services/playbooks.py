"""Playbook flows: templates, edits, sharing, YAML export/import — domain, store and Mattermost together.

Every operation takes the team the user is working in and the acting user's id (as Mattermost
asserted it). A playbook of another team, or one the user is not a member of, is reported as
"not found" (SPEC §4/§6); system admins may use every playbook of a team.

Titles are unique, ignoring case, among the playbooks a person can use, so that people can address a
playbook by its title. A playbook someone cannot see never blocks their title: for them it does not
exist, and an answer that named or even confirmed it would reveal it.
Each write is one store call (inside one transaction with the uniqueness check), made only after
everything — YAML, usernames, limits — has been checked: nothing is ever half-saved.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from domain import Actor, NotFound, Playbook, ValidationError, outline, permissions, step_commands
from domain import playbooks as ops
from domain import webhooks as webhook_rules
from domain.errors import COMMAND, Conflict
from domain.models import ReminderDelivery, WebhookTarget
from domain.playbooks import StageDraft, StepDraft
from domain.templates import Template
from gateway import playbook_yaml as pyaml
from gateway.directory import Directory
from gateway.errors import MattermostError
from gateway.messages import command, neutralize, with_trigger
from gateway.models import Post, User
from gateway.playbook_yaml import (
    ChannelRef,
    PlaybookFormatError,
    PlaybookSpec,
    Problem,
    StageSpec,
    UserRef,
)
from gateway.webhooks_out import AddressPolicy, WebhookURLError, target_secret
from services.channels import ChannelPosting
from services.context import BotContext
from telemetry import PlaybookChange

log = logging.getLogger(__name__)

NOT_FOUND = permissions.PLAYBOOK_NOT_FOUND
#: Largest playbook file accepted by direct message.
MAX_FILE_BYTES = 256 * 1024
YAML_EXTENSIONS = ("yaml", "yml")
_RETRIES = 5
#: A whole-playbook save made on an older version than the stored one (someone saved meanwhile).
STALE_EDIT = ("Someone else saved this playbook after you opened it, so nothing was saved. Open it again to see "
              "their changes, then make yours.")




def title_key(title: str) -> str:
    """How titles are compared: case and surrounding/double spaces ignored."""
    return " ".join(title.split()).casefold()


def file_name_for(title: str) -> str:
    """``Service outage`` → ``service-outage.yaml``."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:60].strip("-")
    return f"{slug or 'playbook'}.yaml"


@dataclass(frozen=True)
class SettingsInput:
    """The settings dialog as typed: channels and people by name (``~name``, ``@name``)."""

    broadcast_channels: Sequence[str] = ()
    interval_ms: int | None = None
    template: str = ""
    reminders: ReminderDelivery | str = ReminderDelivery.BOTH
    invite: Sequence[str] = ()
    commander: str = ""
    followers: Sequence[str] = ()
    #: One webhook a line: the URL, then the events it gets (none: all). None: left as they are.
    webhooks: Sequence[str] | None = None


#: The dialog element of each setting, by the ``field`` of the domain's errors and the refusals below.
SETTINGS_FIELDS = {
    "broadcast_channel_ids": "broadcast", "broadcast": "broadcast", "interval": "interval",
    "template": "template", "reminder_delivery": "reminders", "invited_user_ids": "invite",
    "invite": "invite", "commander": "commander", "auto_follower_ids": "followers", "followers": "followers",
    "webhooks": "webhooks",
}


@dataclass(frozen=True)
class ImportResult:
    """What an import did."""

    playbook: Playbook
    created: bool
    #: (URL, signing secret) of each webhook the import added: shown once, to the importer.
    new_webhooks: tuple[tuple[str, str], ...] = ()


class PlaybookService:
    """Creating, finding, editing, sharing, deleting, exporting and importing playbooks."""

    def __init__(self, ctx: BotContext, directory: Directory, posting: ChannelPosting | None = None) -> None:
        self.ctx = ctx
        self.directory = directory
        #: The one "may post" check (services/channels.py), shared with the status updates' copies.
        self.posting = posting or ChannelPosting(ctx.client)
        #: Which webhook targets may be configured (and sent to): CC_WEBHOOK_ALLOWED_INTERNAL.
        self.webhook_policy = AddressPolicy(ctx.settings.webhook_allowed_internal)

    @property
    def store(self):
        return self.ctx.store

    def _track(self, change: PlaybookChange, playbook: Playbook) -> None:
        self.ctx.telemetry.playbook_changed(change, playbook)

    # Who may do what -----------------------------------------------------------------------

    async def _actor(self, team_id: str, user_id: str, vouched: bool = False) -> tuple[Actor, bool]:
        """``vouched``: Mattermost has checked the team membership already (Directory.actor_in_team)."""
        if not team_id:
            return await self.directory.actor(user_id), False
        return await self.directory.actor_in_team(team_id, user_id, vouched=vouched)

    async def require_team(self, team_id: str, user_id: str, *, vouched: bool = False) -> Actor:
        """The actor, if they may work with this team's playbooks at all."""
        actor, is_team_member = await self._actor(team_id, user_id, vouched)
        if not permissions.can_see_team(actor, is_team_member=is_team_member):
            raise NotFound("You are not a member of this team, so you cannot see or create its playbooks.")
        return actor

    async def get(self, team_id: str, user_id: str, playbook_id: str) -> Playbook:
        """The playbook with this id, if it is in ``team_id`` and the user may use it; else NotFound."""
        playbook = await self.store.get_playbook(playbook_id) if playbook_id else None
        if playbook is None or playbook.team_id != team_id:
            raise NotFound(NOT_FOUND)
        actor, is_team_member = await self._actor(team_id, user_id)
        permissions.require_use_playbook(actor, playbook, is_team_member=is_team_member)
        return playbook

    async def visible(self, team_id: str, user_id: str, *, vouched: bool = False) -> list[Playbook]:
        """Playbooks of the team the user may use, by title."""
        actor = await self.require_team(team_id, user_id, vouched=vouched)
        return await self.store.playbooks_for_user(team_id, user_id, is_admin=actor.is_system_admin)

    async def find(self, team_id: str, user_id: str, reference: str, *, vouched: bool = False) -> Playbook:
        """A playbook the user may use, by title (case-insensitive) or id; NotFound names the choices."""
        wanted = title_key(reference)
        if not wanted:
            raise ValidationError("Say which playbook: type its title, for example "
                                  f'`{COMMAND}playbook show "Incident Response"`.')
        playbooks = await self.visible(team_id, user_id, vouched=vouched)
        for playbook in playbooks:
            if playbook.id == reference.strip():
                return playbook
        same = [playbook for playbook in playbooks if title_key(playbook.title) == wanted]
        if len(same) == 1:
            return same[0]
        if same:
            raise ValidationError(_several_titled(same))
        titles = ", ".join(f'"{neutralize(p.title)}"' for p in playbooks[:15])
        more = f" Yours: {titles}." if titles else " You are not a member of any playbook in this team yet."
        raise NotFound(f'No playbook titled "{neutralize(reference.strip()[:64])}" that you can use.{more} '
                       f"Type {COMMAND}playbook list to see them.")

    # Names <-> ids ---------------------------------------------------------------------------

    async def usernames(self, user_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted({i for i in user_ids if i})
        if not ids:
            return {}
        users = await self.directory.users(ids)
        return {u.id: u.username for u in users if u.active}

    async def resolve(self, team_id: str, refs: Sequence[UserRef]) -> dict[str, str]:
        """username → user id for every ref; unknown or outside-the-team users are problems at their line."""
        resolved: dict[str, str] = {}
        problems: list[Problem] = []
        refused: dict[str, str] = {}
        for ref in refs:
            if ref.username in resolved:
                continue
            if ref.username not in refused:
                user = await self.directory.user_by_username(ref.username)
                if user is None or not user.active:
                    refused[ref.username] = f"there is no active user @{ref.username}."
                elif user.is_bot:
                    refused[ref.username] = f"@{ref.username} is a bot; name a person."
                elif not await self.directory.is_team_member(team_id, user.id):
                    refused[ref.username] = f"@{ref.username} is not a member of this team."
                else:
                    resolved[ref.username] = user.id
                    continue
            problems.append(Problem(ref.line, ref.where, refused[ref.username]))
        if problems:
            raise PlaybookFormatError(problems)
        return resolved

    async def resolve_channels(self, team_id: str, user_id: str, refs: Sequence[ChannelRef]) -> dict[str, str]:
        """channel name → id for every broadcast channel of a file, each checked for the importer like
        the settings dialog does; a refused one is a problem at its line."""
        resolved: dict[str, str] = {}
        problems: list[Problem] = []
        for ref in refs:
            if ref.name in resolved:
                continue
            channel_id, why = await self.broadcast_channel(team_id, user_id, ref.name)
            if why:
                problems.append(Problem(ref.line, ref.where, why + "."))
            else:
                resolved[ref.name] = channel_id
        if problems:
            raise PlaybookFormatError(problems)
        return resolved

    @staticmethod
    def drafts(stages: Iterable[StageSpec], ids: dict[str, str]) -> list[StageDraft]:
        return [StageDraft(title=stage.title, steps=tuple(
            StepDraft(title=step.title, description=step.description, command=step.command,
                      assignee_id=ids[step.assignee.username] if step.assignee else None)
            for step in stage.steps)) for stage in stages]

    async def spec(self, playbook: Playbook) -> PlaybookSpec:
        """The playbook as the YAML format describes it (usernames and channel names instead of ids)."""
        return pyaml.playbook_spec(playbook, await self.usernames(self.people_ids(playbook)),
                                   await self.channel_names(playbook.updates.broadcast_channel_ids))

    @staticmethod
    def people_ids(playbook: Playbook) -> list[str]:
        """Everyone a playbook names: members, default assignees, invited users, the default commander,
        followers."""
        ids = list(playbook.member_ids)
        ids += [step.assignee_id for stage in playbook.stages for step in stage.steps if step.assignee_id]
        ids += [*playbook.invited_user_ids, *playbook.auto_follower_ids]
        if playbook.default_commander_id:
            ids.append(playbook.default_commander_id)
        return ids

    async def channel_names(self, channel_ids: Iterable[str]) -> dict[str, str]:
        """channel id → name, for the channels the bot can still see (one GET per channel)."""
        names: dict[str, str] = {}
        for channel_id in dict.fromkeys(channel_ids):
            try:
                channel = await self.ctx.client.get_channel(channel_id)
            except MattermostError as error:
                if error.status in (403, 404):
                    continue
                raise
            if not channel.archived:
                names[channel_id] = channel.name
        return names

    # Broadcast channels -----------------------------------------------------------------------

    async def broadcast_channel(self, team_id: str, user_id: str, name: str) -> tuple[str, str]:
        """(channel id, "") if ``user_id`` may have status updates copied to the team's channel
        ``name``, else ("", why not) — domain.permissions.broadcast_refusal decides from Mattermost's
        answers.

        ``channel_by_name`` is scoped to the team (api4/channel.go getChannelByName), so a channel
        of another team is not found, like a missing one. Whether the user may post is asked as the
        server decides it for a post (api4/post.go userCreatePostPermissionCheckWithContext →
        SessionHasPermissionToChannel(create_post)): their channel membership and its roles."""
        client = self.ctx.client
        name = name.strip().lstrip("~").lower()
        try:
            channel = await client.channel_by_name(team_id, name)
        except MattermostError as error:
            if error.status not in (400, 403, 404):
                raise
            return "", self._broadcast_text(permissions.BroadcastRefusal.UNSEEN, name)
        team_channel = channel.type in ("O", "P")
        self.directory.forget_channel(channel.id)  # fresh answers: someone may just have been added
        bot_is_member = await self.directory.is_channel_member(channel.id, client.user_id) if team_channel else False

        def refusal_for(user_is_member: bool | None = None,
                        user_can_post: bool | None = None) -> permissions.BroadcastRefusal | None:
            return permissions.broadcast_refusal(
                found=True, same_team=channel.team_id == team_id, team_channel=team_channel,
                archived=channel.archived, public=channel.is_public, bot_is_member=bot_is_member,
                user_is_member=user_is_member, user_can_post=user_can_post)

        refusal = refusal_for()
        joined = False
        if refusal is None and not bot_is_member:
            # A public channel: the bot joins it (it posts every update there), as the announce command does,
            # because only a member may read someone's membership (getChannelMember: read_channel).
            await client.add_channel_member(channel.id, client.user_id)
            self.directory.forget_channel(channel.id)
            bot_is_member = joined = True
        if refusal is None:
            is_member, can_post = await self.posting.may_post(channel.id, user_id)
            refusal = refusal_for(is_member, can_post if is_member else None)
        if refusal is not None:
            if joined:  # nothing will be copied there: leave the channel as it was
                await client.remove_channel_member(channel.id, client.user_id)
                self.directory.forget_channel(channel.id)
            return "", self._broadcast_text(refusal, name)
        return channel.id, ""

    def _broadcast_text(self, refusal: permissions.BroadcastRefusal, name: str) -> str:
        where = f"~{neutralize(name[:64])}"
        texts = {
            permissions.BroadcastRefusal.UNSEEN: (f"{where}: no such channel in this team that I am in; for a "
                                                  f"private channel, add @{self.ctx.client.username} to it first"),
            permissions.BroadcastRefusal.NOT_A_TEAM_CHANNEL: f"{where} is not a channel of the team",
            permissions.BroadcastRefusal.ARCHIVED: f"{where} is archived",
            permissions.BroadcastRefusal.NOT_A_MEMBER: f"{where}: you are not a member of it",
            permissions.BroadcastRefusal.CANNOT_POST: f"{where}: you cannot post in it",
        }
        return texts[refusal]

    async def broadcast_ids(self, team_id: str, user_id: str, names: Iterable[str]) -> list[str]:
        """The ids of the broadcast channels named; ValidationError(field="broadcast") naming each refused one."""
        ids, refused = [], []
        for name in dict.fromkeys(n.strip().lstrip("~").lower() for n in names if n.strip().lstrip("~")):
            channel_id, why = await self.broadcast_channel(team_id, user_id, name)
            if why:
                refused.append(why)
            else:
                ids.append(channel_id)
        if refused:
            raise ValidationError("Updates cannot be copied there: " + "; ".join(refused) + ".", field="broadcast")
        return ids

    def _check_step_commands(self, playbook: Playbook) -> None:
        """Every way a playbook is saved passes here: no step's command may run a step."""
        step_commands.check_stages(playbook.stages, self.ctx.settings.command_trigger)

    # Titles ----------------------------------------------------------------------------------

    async def _require_free_title(self, team_id: str, user_id: str, title: str, except_id: str = "") -> None:
        """Call inside a store transaction, right before the write: only playbooks the user can use count."""
        actor = await self.directory.actor(user_id)
        for other in await self.store.playbooks_for_user(team_id, user_id, is_admin=actor.is_system_admin):
            if other.id != except_id and title_key(other.title) == title_key(title):
                raise Conflict(f'A playbook you can use in this team is already titled "{neutralize(other.title)}". '
                               "Choose another title.", field="title")

    # Creating ----------------------------------------------------------------------------------

    async def create(self, team_id: str, user_id: str, *, title: str, template: Template,
                     description: str | None = None, public: bool | None = None) -> Playbook:
        """A new playbook from a template; the creator is its first member."""
        await self.require_team(team_id, user_id)
        playbook = ops.new_playbook(
            team_id=team_id, title=title, created_by=user_id, now=self.ctx.clock(),
            description=template.description if description is None else description,
            create_public_channel=template.create_public_channel if public is None else public,
            stages=_with_trigger(template.stages, self.ctx.settings.command_trigger))
        self._check_step_commands(playbook)
        async with self.store.transaction():
            await self._require_free_title(team_id, user_id, playbook.title)
            created = await self.store.create_playbook(playbook)
        self._track(PlaybookChange.CREATED, created)
        log.info("playbook %s created by %s in team %s from template %s", created.id, user_id, team_id, template.key)
        return created

    # Editing ------------------------------------------------------------------------------------

    async def update(self, team_id: str, user_id: str, playbook_id: str, *, expected_version: int,
                     title: str | None = None, description: str | None = None, public: bool | None = None,
                     stages: Sequence[StageSpec] | None = None) -> Playbook:
        """Save the edit dialog: Conflict if someone else saved since the dialog was opened."""
        playbook = await self.get(team_id, user_id, playbook_id)
        drafts = None
        if stages is not None:
            refs = [step.assignee for stage in stages for step in stage.steps if step.assignee]
            drafts = self.drafts(stages, await self.resolve(team_id, refs))
        edited = ops.edit_playbook(playbook, now=self.ctx.clock(), title=title, description=description,
                                   create_public_channel=public, stages=drafts)
        self._check_step_commands(edited)
        async with self.store.transaction():
            await self._require_free_title(team_id, user_id, edited.title, except_id=playbook.id)
            saved = await self.store.update_playbook(edited, expected_version=expected_version)
        self._track(PlaybookChange.UPDATED, saved)
        return saved

    async def save_settings(self, team_id: str, user_id: str, playbook_id: str, *, expected_version: int,
                            settings: SettingsInput) -> Playbook:
        """Save the settings dialog (a playbook member, like every edit): every channel and person is
        checked first, then one write; Conflict if someone saved since the dialog was opened."""
        playbook = await self.get(team_id, user_id, playbook_id)
        broadcast = await self.broadcast_ids(team_id, user_id, settings.broadcast_channels)
        invited = await self._person_ids(team_id, settings.invite, "invite")
        followers = await self._person_ids(team_id, settings.followers, "followers")
        commander = (await self._person_ids(team_id, [settings.commander], "commander"))[0] if settings.commander else ""
        webhooks = None
        if settings.webhooks is not None:
            wanted = [_webhook_line(line) for line in settings.webhooks if line.strip()]
            webhooks = webhook_rules.edited_targets(playbook.webhooks, await self.checked_webhooks(wanted))
        edited = ops.edit_playbook(
            playbook, now=self.ctx.clock(),
            updates=ops.update_settings(
                broadcast_channel_ids=broadcast, interval_ms=settings.interval_ms, template=settings.template,
                reminder_delivery=settings.reminders),
            invited_user_ids=invited, default_commander_id=commander, auto_follower_ids=followers,
            webhooks=webhooks)
        if edited.model_copy(update={"updated_at": playbook.updated_at}) == playbook:
            return playbook
        saved = await self.store.update_playbook(edited, expected_version=expected_version)
        self._track(PlaybookChange.UPDATED, saved)
        return saved

    async def checked_webhooks(self, wanted: Sequence[tuple[str, tuple[str, ...], int]]) -> list[tuple[str, tuple[str, ...]]]:
        """Each (URL, event kinds, line) checked now: its form and every address its host resolves
        to (gateway/webhooks_out.py); an internal one is refused unless CC_WEBHOOK_ALLOWED_INTERNAL
        allows it. ValidationError (field ``webhooks``) names the URL, and the line when known."""
        checked = []
        for url, events, line in wanted:
            try:
                target = await self.webhook_policy.check(url)
            except WebhookURLError as error:
                raise ValidationError(f"Line {line}, webhooks: {error}" if line else str(error),
                                      field="webhooks") from None
            checked.append((target.url, events))
        return checked

    def webhook_secrets(self, before: Sequence[WebhookTarget], after: Sequence[WebhookTarget]) -> tuple[
            tuple[str, str], ...]:
        """(URL, signing secret) of every target ``after`` has and ``before`` had not."""
        return tuple((t.url, target_secret(self.ctx.signer, t.id)) for t in webhook_rules.new_targets(before, after))

    async def _person_ids(self, team_id: str, names: Iterable[str], field: str) -> list[str]:
        """The ids of the people named (``@name``), each an active person of the team; everyone else is
        refused by name, at ``field``."""
        wanted = list(dict.fromkeys(n.strip().lstrip("@").lower() for n in names if n.strip().lstrip("@")))
        try:
            return [u.id for u in await self._people(team_id, wanted)]
        except (NotFound, ValidationError) as error:
            raise ValidationError(error.message, field=field) from None

    async def edit_outline(self, team_id: str, user_id: str, playbook_id: str,
                           edit: outline.OutlineEdit) -> tuple[Playbook, outline.OutlineChange]:
        """One quick edit of the playbook's stages (domain.outline) with a version check, retried on
        conflicts; returns the saved playbook and what the edit did (to the stages it was saved on)."""
        done: list[outline.OutlineChange] = []

        def apply(playbook: Playbook) -> Playbook:
            change = outline.apply(ops.drafts_of(playbook.stages), edit)
            done[:] = [change]  # a retry after a conflict starts over
            return ops.edit_playbook(playbook, now=self.ctx.clock(), stages=change.stages)

        saved = await self._mutate(team_id, user_id, playbook_id, apply)
        return saved, done[0]

    async def team_person(self, team_id: str, username: str) -> str:
        """The id of the person ``@username`` in the team (a step's default assignee)."""
        # Missing and outside the team get one answer (the bot sees other teams' users).
        user = await self.directory.team_user_by_username(team_id, username)
        if user is None:
            raise NotFound(f"There is no user @{neutralize(username)} in this team. Check the spelling.")
        if user.is_bot:
            raise ValidationError(f"@{user.username} is not a person in this team.")
        return user.id

    async def _mutate(self, team_id: str, user_id: str, playbook_id: str,
                      change: Callable[[Playbook], Playbook]) -> Playbook:
        for attempt in range(_RETRIES + 1):
            playbook = await self.get(team_id, user_id, playbook_id)
            edited = change(playbook)
            if edited == playbook:
                return playbook
            self._check_step_commands(edited)
            try:
                saved = await self.store.update_playbook(edited, expected_version=playbook.version)
            except Conflict:
                if attempt == _RETRIES:
                    raise
                continue
            self._track(PlaybookChange.UPDATED, saved)
            return saved
        raise AssertionError("unreachable")

    # Sharing --------------------------------------------------------------------------------------

    async def _people(self, team_id: str, usernames: Iterable[str], *, also: Iterable[str] = ()) -> list[User]:
        """The people named, each in the team (or in ``also``: a playbook's members, who may have left
        it). Anyone else is answered like a missing user: the bot sees other teams' people too."""
        known = set(also)
        people = []
        for name in usernames:
            user = await self.directory.user_by_username(name)
            if (user is None or not user.active
                    or (user.id not in known and not await self.directory.is_team_member(team_id, user.id))):
                raise NotFound(f"There is no user @{neutralize(name.lstrip('@'))} in this team. Check the spelling.")
            if user.is_bot:
                raise ValidationError(f"@{user.username} is a bot; playbooks are shared with people.")
            people.append(user)
        return people

    async def add_members(self, team_id: str, user_id: str, playbook_id: str, usernames: Sequence[str]) -> Playbook:
        """Share with team members (others are refused by name)."""
        people = await self._people(team_id, usernames)
        return await self._mutate(team_id, user_id, playbook_id,
                                  lambda p: ops.add_members(p, [u.id for u in people], self.ctx.clock()))

    async def remove_members(self, team_id: str, user_id: str, playbook_id: str,
                             usernames: Sequence[str]) -> Playbook:
        """Stop sharing; the last member cannot leave (someone must be able to see the playbook)."""
        playbook = await self.get(team_id, user_id, playbook_id)
        people = await self._people(team_id, usernames, also=playbook.member_ids)
        strangers = [u.username for u in people if u.id not in playbook.member_ids]
        if strangers:
            raise ValidationError(", ".join(f"@{name}" for name in strangers) + " "
                                  + ("is" if len(strangers) == 1 else "are") + " not a member of this playbook.")
        return await self._mutate(team_id, user_id, playbook_id,
                                  lambda p: ops.remove_members(p, [u.id for u in people], self.ctx.clock()))

    # Deleting -------------------------------------------------------------------------------------

    async def delete(self, team_id: str, user_id: str, playbook_id: str, *, expected_version: int) -> Playbook:
        """Delete after confirmation; incidents started from it keep their own copy of the stages."""
        playbook = await self.get(team_id, user_id, playbook_id)
        if not await self.store.delete_playbook(playbook.id, expected_version=expected_version):
            raise NotFound(NOT_FOUND)
        self._track(PlaybookChange.DELETED, playbook)
        log.info("playbook %s deleted by %s", playbook.id, user_id)
        return playbook

    # YAML ----------------------------------------------------------------------------------------

    async def export_text(self, playbook: Playbook) -> tuple[str, str]:
        """(file name, YAML text) of a playbook the caller already may use."""
        return file_name_for(playbook.title), pyaml.dump(await self.spec(playbook), self.ctx.settings.command_trigger)

    async def send_export(self, user_id: str, playbook: Playbook) -> Post:
        """Upload the YAML file to the user's direct channel with the bot; returns the post."""
        name, text = await self.export_text(playbook)
        dm = await self.ctx.client.direct_channel_with(user_id)
        info = await self.ctx.client.upload_file(dm.id, name, text.encode("utf-8"), "application/x-yaml")
        return await self.ctx.client.create_post(
            dm.id, f"Playbook **{neutralize(playbook.title)}** as YAML. Edit it and send it back to me "
                   f"(or use `{command(self.ctx.settings.command_trigger, 'playbook import')}`) to update the "
                   "playbook.", file_ids=[info.id])

    async def import_text(self, team_id: str, user_id: str, text: str,
                          limit: pyaml.SizeLimit = pyaml.ANY_SIZE) -> ImportResult:
        """Create the playbook a YAML text describes, or replace the one with the same title.

        Everything is checked first (size against ``limit``, format, limits, usernames; parsed off
        the event loop); then one write. The importer is always kept as a member so that nobody
        locks themselves out.
        """
        spec = await pyaml.read_playbook(text, limit)
        actor = await self.require_team(team_id, user_id)
        member_ids, drafts, settings, hooks = await self._resolved(team_id, user_id, spec)
        result = await self._save_import(team_id, user_id, actor, spec, member_ids, drafts, settings, hooks)
        self._track(PlaybookChange.CREATED if result.created else PlaybookChange.UPDATED, result.playbook)
        return result

    async def _resolved(self, team_id: str, user_id: str, spec: PlaybookSpec) -> tuple[
            list[str], list[StageDraft], dict, list[tuple[str, tuple[str, ...]]]]:
        """What a spec names, checked and turned into ids (each refusal a problem at its line/field):
        member ids, the stages, the settings, the webhooks."""
        ids = await self.resolve(team_id, spec.usernames())
        channels = await self.resolve_channels(team_id, user_id, spec.channel_names())
        member_ids = [ids[ref.username] for ref in spec.members]
        drafts = self.drafts(spec.stages, ids)
        step_commands.check_stages(drafts, self.ctx.settings.command_trigger)
        settings = pyaml.playbook_settings(spec, ids, channels)
        hooks = await self.checked_webhooks([(w.url, w.events, w.line) for w in spec.webhooks])
        return member_ids, drafts, settings, hooks

    async def replace(self, team_id: str, user_id: str, playbook_id: str, spec: PlaybookSpec, *,
                      expected_version: int) -> ImportResult:
        """Save a whole playbook (the backstage's editor, or a file uploaded onto one playbook) over the
        playbook ``playbook_id``: the import's checks (usernames, channels, step commands, webhooks,
        every limit), the edit dialog's title rule, then one write with the version check — Conflict
        if someone saved since ``expected_version`` (nothing is overwritten). As with an import, the
        one saving stays a member, so that nobody locks themselves out."""
        playbook = await self.get(team_id, user_id, playbook_id)
        member_ids, drafts, settings, hooks = await self._resolved(team_id, user_id, spec)
        webhooks = webhook_rules.edited_targets(playbook.webhooks, hooks)
        edited = ops.edit_playbook(playbook, now=self.ctx.clock(), title=spec.title, description=spec.description,
                                   create_public_channel=spec.public, stages=drafts, webhooks=webhooks, **settings)
        members = tuple(dict.fromkeys([*member_ids, user_id]))
        edited = ops.validate_playbook(edited.model_copy(update={"member_ids": members}))
        if playbook.version != expected_version:
            raise Conflict(STALE_EDIT)
        async with self.store.transaction():
            await self._require_free_title(team_id, user_id, edited.title, except_id=playbook.id)
            saved = await self.store.update_playbook(edited, expected_version=expected_version)
        self._track(PlaybookChange.UPDATED, saved)
        return ImportResult(saved, created=False, new_webhooks=self.webhook_secrets(playbook.webhooks, saved.webhooks))

    async def _save_import(self, team_id: str, user_id: str, actor: Actor, spec: PlaybookSpec,
                           member_ids: list[str], drafts: list[StageDraft], settings: dict,
                           hooks: list[tuple[str, tuple[str, ...]]]) -> ImportResult:
        async with self.store.transaction():
            # Only a playbook the importer can use is replaced; one they cannot see does not exist for them.
            usable = await self.store.playbooks_for_user(team_id, user_id, is_admin=actor.is_system_admin)
            same = [p for p in usable if title_key(p.title) == title_key(spec.title)]
            if len(same) > 1:
                raise ValidationError(_several_titled(same) + " Import replaces a playbook by its title; rename "
                                      "one of them first, or change the title in the file.")
            existing = same[0] if same else None
            before = existing.webhooks if existing else ()
            webhooks = webhook_rules.edited_targets(before, hooks)
            if existing is None:
                playbook = ops.new_playbook(team_id=team_id, title=spec.title, created_by=user_id, now=self.ctx.clock(),
                                            description=spec.description, create_public_channel=spec.public,
                                            stages=drafts, member_ids=member_ids, webhooks=webhooks, **settings)
                return ImportResult(await self.store.create_playbook(playbook), created=True,
                                    new_webhooks=self.webhook_secrets(before, webhooks))
            edited = ops.edit_playbook(existing, now=self.ctx.clock(), title=spec.title, description=spec.description,
                                       create_public_channel=spec.public, stages=drafts, webhooks=webhooks, **settings)
            members = tuple(dict.fromkeys([*member_ids, user_id]))
            edited = ops.validate_playbook(edited.model_copy(update={"member_ids": members}))
            return ImportResult(await self.store.update_playbook(edited), created=False,
                                new_webhooks=self.webhook_secrets(before, webhooks))

    async def read_attachment(self, user_id: str, channel_id: str, file_ids: Sequence[str]) -> str:
        """The text of the one YAML file the user attached to a message in ``channel_id``."""
        infos = []
        for file_id in file_ids:
            try:
                info = await self.ctx.client.file_info(file_id)
            except MattermostError as error:
                if error.status in (403, 404):
                    continue
                raise
            # Only files this user sent in this conversation: never read someone else's file.
            # (Servers older than FileInfo.channel_id only give the uploader.)
            if info.user_id == user_id and (info.channel_id or channel_id) == channel_id:
                infos.append(info)
        yaml_files = [i for i in infos if i.extension.lower() in YAML_EXTENSIONS]
        if not yaml_files:
            raise ValidationError("Attach the playbook as a .yaml (or .yml) file. Export one with "
                                  f"`{COMMAND}playbook export <title>` to see the format.")
        if len(yaml_files) > 1:
            raise ValidationError("Send one playbook file per message, so that each is imported on its own.")
        info = yaml_files[0]
        if info.size > MAX_FILE_BYTES:
            raise ValidationError(f"{neutralize(info.name or 'The file')} is larger than "
                                  f"{MAX_FILE_BYTES // 1024} KB; a playbook file is much smaller.")
        data = await self.ctx.client.file_content(info.id)
        if len(data) > MAX_FILE_BYTES:
            raise ValidationError(f"The file is larger than {MAX_FILE_BYTES // 1024} KB.")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text; save it as UTF-8 and send it again.") from None


def _webhook_line(line: str) -> tuple[str, tuple[str, ...], int]:
    """``https://… created ended`` (the settings dialog): the URL, the event kinds, no line number."""
    url, *events = line.split()
    return url, webhook_rules.event_kinds(e for word in events for e in word.split(",") if e), 0


def _with_trigger(stages: Sequence[StageDraft], trigger: str) -> tuple[StageDraft, ...]:
    """A template's stages with its steps' own commands (``COMMAND announce ...``) written for ``trigger``."""
    return tuple(stage.model_copy(update={"steps": tuple(
        step.model_copy(update={"command": with_trigger(step.command, trigger)}) for step in stage.steps)})
        for stage in stages)


def _several_titled(playbooks: Sequence[Playbook]) -> str:
    """Two playbooks someone can use may share a title (one was shared with them later): ask for the id."""
    ids = ", ".join(f"`{p.id}`" for p in playbooks)
    return (f'Several playbooks you can use are titled "{neutralize(playbooks[0].title)}" (ids {ids}); name one '
            f"by its id, for example `{COMMAND}playbook show {playbooks[0].id}`.")


__all__ = ["MAX_FILE_BYTES", "STALE_EDIT", "ImportResult", "PlaybookService", "file_name_for", "title_key"]
