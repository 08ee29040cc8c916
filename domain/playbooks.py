"""Creating, editing and validating playbooks.

Editors (dialogs, YAML import) describe stages with :class:`StageDraft` /
:class:`StepDraft` (no ids); these functions validate every limit and give the
result fresh ids. A playbook's ``version`` is left alone: the store bumps it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from . import limits, validation
from .errors import DomainError, InvalidState, ValidationError
from .fields import validate_fields
from .ids import new_id
from .models import (
    DEFAULT_SEVERITY,
    FieldDef,
    Playbook,
    ReminderDelivery,
    RetroSettings,
    Stage,
    Step,
    UpdateSettings,
    WebhookTarget,
)
from .retro import retro_settings


class StepDraft(BaseModel):
    """A step as an editor describes it; ``assignee_id`` is the default assignee."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    description: str = ""
    command: str = ""
    assignee_id: str | None = None


class StageDraft(BaseModel):
    """A stage as an editor describes it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str
    steps: tuple[StepDraft, ...] = ()


DEFAULT_STAGE_TITLE = "Default Stage"
#: The ``field`` of every error about a playbook's stages and steps (DomainError.field).
STAGES = "stages"


def _located(where: str, error: DomainError) -> ValidationError:
    return ValidationError(f"{where}: {error.message}", field=STAGES)


def build_stages(drafts: Sequence[StageDraft | Stage]) -> tuple[Stage, ...]:
    """Validate stage drafts (or existing stages) and return stages with fresh ids.

    Errors name the stage and step they are about ("Stage 2, step 3: ...").
    """
    if len(drafts) < limits.STAGES_MIN:
        raise ValidationError("A playbook needs at least one stage.", field=STAGES)
    if len(drafts) > limits.STAGES_MAX:
        raise ValidationError(
            f"A playbook may have at most {limits.STAGES_MAX} stages; this one has {len(drafts)}.", field=STAGES
        )
    stages = []
    for s, draft in enumerate(drafts, start=1):
        try:
            title = validation.stage_title(draft.title)
        except ValidationError as exc:
            raise _located(f"Stage {s}", exc) from None
        if len(draft.steps) > limits.STEPS_PER_STAGE_MAX:
            raise ValidationError(
                f'Stage {s} "{title}" has {len(draft.steps)} steps; the maximum is'
                f" {limits.STEPS_PER_STAGE_MAX}.",
                field=STAGES,
            )
        steps = []
        step_inputs: Sequence[StepDraft | Step] = draft.steps
        for n, step in enumerate(step_inputs, start=1):
            try:
                steps.append(
                    Step(
                        id=new_id(),
                        title=validation.step_title(step.title),
                        description=validation.step_description(step.description),
                        command=validation.step_command(step.command),
                        assignee_id=step.assignee_id,
                    )
                )
            except ValidationError as exc:
                raise _located(f"Stage {s}, step {n}", exc) from None
        stages.append(Stage(id=new_id(), title=title, steps=tuple(steps)))
    return tuple(stages)


def drafts_of(stages: Iterable[Stage]) -> tuple[StageDraft, ...]:
    """A playbook's stages as an editor describes them (no ids), to edit and build again."""
    return tuple(
        StageDraft(
            title=stage.title,
            steps=tuple(
                StepDraft(title=s.title, description=s.description, command=s.command, assignee_id=s.assignee_id)
                for s in stage.steps
            ),
        )
        for stage in stages
    )


def _members(member_ids: Iterable[str]) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(m for m in member_ids if m))
    if len(unique) > limits.PLAYBOOK_MEMBERS_MAX:
        raise ValidationError(
            f"A playbook may have at most {limits.PLAYBOOK_MEMBERS_MAX} members; this one has {len(unique)}.",
            field="member_ids",
        )
    return unique


def _ids(values: Iterable[str], most: int, what: str, field: str) -> tuple[str, ...]:
    unique = tuple(dict.fromkeys(v for v in values if v))
    if len(unique) > most:
        raise ValidationError(f"A playbook may have at most {most} {what}; this one has {len(unique)}.", field=field)
    return unique


def update_settings(
    *,
    broadcast_channel_ids: Iterable[str] = (),
    interval_ms: int | None = None,
    template: str = "",
    reminder_delivery: ReminderDelivery | str = ReminderDelivery.BOTH,
) -> UpdateSettings:
    """Validated status-update settings (duplicates dropped, order kept).

    Whether the editor may post in each broadcast channel is Mattermost's to say: the service
    checks it with :func:`domain.permissions.broadcast_refusal` before saving, and again when
    sending.
    """
    try:
        delivery = ReminderDelivery(reminder_delivery)
    except ValueError:
        raise ValidationError(
            f'Reminders go to "channel", "dm" or "both", not "{str(reminder_delivery)[:24]}".',
            field="reminder_delivery") from None
    return UpdateSettings(
        broadcast_channel_ids=_ids(broadcast_channel_ids, limits.BROADCAST_CHANNELS_MAX, "broadcast channels",
                                   "broadcast_channel_ids"),
        interval_ms=validation.update_interval(interval_ms),
        template=validation.update_template(template),
        reminder_delivery=delivery,
    )


def _validated_updates(updates: UpdateSettings) -> UpdateSettings:
    return update_settings(broadcast_channel_ids=updates.broadcast_channel_ids, interval_ms=updates.interval_ms,
                           template=updates.template, reminder_delivery=updates.reminder_delivery)


def _validated_retro(retro: RetroSettings) -> RetroSettings:
    return retro_settings(template=retro.template, reminder_interval_ms=retro.reminder_interval_ms)


def _start_settings(invited_user_ids: Iterable[str] | None, default_commander_id: str | None,
                    auto_follower_ids: Iterable[str] | None) -> dict:
    """The start settings given (None: not given; ``default_commander_id=""`` clears it), validated."""
    update: dict = {}
    if invited_user_ids is not None:
        update["invited_user_ids"] = _ids(invited_user_ids, limits.PLAYBOOK_INVITED_MAX, "invited users",
                                          "invited_user_ids")
    if default_commander_id is not None:
        update["default_commander_id"] = default_commander_id or None
    if auto_follower_ids is not None:
        update["auto_follower_ids"] = _ids(auto_follower_ids, limits.PLAYBOOK_FOLLOWERS_MAX, "followers",
                                           "auto_follower_ids")
    return update


def start_commander(playbook: Playbook, creator_id: str, *, default_commander_available: bool) -> str:
    """Who commands a new incident: the playbook's default commander if they can still take it
    (the caller asks Mattermost: an active member of the team), otherwise whoever starts it."""
    if playbook.default_commander_id and default_commander_available:
        return playbook.default_commander_id
    return creator_id


def new_playbook(
    *,
    team_id: str,
    title: str,
    created_by: str,
    now: int,
    description: str = "",
    create_public_channel: bool = True,
    stages: Sequence[StageDraft | Stage] | None = None,
    member_ids: Iterable[str] = (),
    updates: UpdateSettings | None = None,
    invited_user_ids: Iterable[str] = (),
    default_commander_id: str | None = None,
    auto_follower_ids: Iterable[str] = (),
    webhooks: Sequence[WebhookTarget] = (),
    fields: Sequence[FieldDef] = (DEFAULT_SEVERITY,),
    retro: RetroSettings | None = None,
) -> Playbook:
    """A new, validated playbook; the creator is always its first member.

    Without ``stages`` it gets one empty stage, like a blank playbook.
    """
    drafts = stages if stages else [StageDraft(title=DEFAULT_STAGE_TITLE)]
    return Playbook(
        **_start_settings(invited_user_ids, default_commander_id or "", auto_follower_ids),
        updates=_validated_updates(updates or UpdateSettings()),
        webhooks=tuple(webhooks),
        fields=validate_fields(fields),
        retro=_validated_retro(retro or RetroSettings()),
        id=new_id(),
        team_id=team_id,
        title=validation.playbook_title(title),
        description=validation.playbook_description(description),
        create_public_channel=create_public_channel,
        member_ids=_members([created_by, *member_ids]),
        stages=build_stages(drafts),
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )


def edit_playbook(
    playbook: Playbook,
    *,
    now: int,
    title: str | None = None,
    description: str | None = None,
    create_public_channel: bool | None = None,
    stages: Sequence[StageDraft | Stage] | None = None,
    updates: UpdateSettings | None = None,
    invited_user_ids: Iterable[str] | None = None,
    default_commander_id: str | None = None,
    auto_follower_ids: Iterable[str] | None = None,
    webhooks: Sequence[WebhookTarget] | None = None,
    fields: Sequence[FieldDef] | None = None,
    retro: RetroSettings | None = None,
) -> Playbook:
    """A validated copy of ``playbook`` with the given fields replaced (None: left as it is;
    ``default_commander_id=""`` clears the default commander).

    Replaced stages get fresh ids. Running incidents are unaffected: they hold
    their own copy (of the stages and of the update settings).
    """
    update: dict = {"updated_at": now}
    if title is not None:
        update["title"] = validation.playbook_title(title)
    if description is not None:
        update["description"] = validation.playbook_description(description)
    if create_public_channel is not None:
        update["create_public_channel"] = create_public_channel
    if stages is not None:
        update["stages"] = build_stages(stages)
    if updates is not None:
        update["updates"] = _validated_updates(updates)
    if fields is not None:
        update["fields"] = validate_fields(fields)
    if retro is not None:
        update["retro"] = _validated_retro(retro)
    update.update(_start_settings(invited_user_ids, default_commander_id, auto_follower_ids))
    if webhooks is not None:
        update["webhooks"] = tuple(webhooks)
    return playbook.model_copy(update=update)


def add_members(playbook: Playbook, user_ids: Iterable[str], now: int) -> Playbook:
    """Share the playbook with more team members (already-members are ignored)."""
    members = _members([*playbook.member_ids, *user_ids])
    if members == playbook.member_ids:
        return playbook
    return playbook.model_copy(update={"member_ids": members, "updated_at": now})


def remove_members(playbook: Playbook, user_ids: Iterable[str], now: int) -> Playbook:
    """Stop sharing the playbook with some users; the last member cannot be removed."""
    gone = set(user_ids)
    members = tuple(m for m in playbook.member_ids if m not in gone)
    if not members:
        raise InvalidState(
            "A playbook needs at least one member: add someone else before removing the last member."
        )
    if members == playbook.member_ids:
        return playbook
    return playbook.model_copy(update={"member_ids": members, "updated_at": now})


def validate_playbook(playbook: Playbook) -> Playbook:
    """Check every limit of an existing playbook (for example one read from a file)."""
    validation.playbook_title(playbook.title)
    validation.playbook_description(playbook.description)
    _members(playbook.member_ids)
    build_stages(playbook.stages)
    _validated_updates(playbook.updates)
    validate_fields(playbook.fields)
    _validated_retro(playbook.retro)
    _start_settings(playbook.invited_user_ids, playbook.default_commander_id or "", playbook.auto_follower_ids)
    return playbook
