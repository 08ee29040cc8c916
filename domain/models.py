"""The domain's value objects: playbooks, stages, steps, incidents and timeline events.

Models are frozen pydantic models; operations return changed copies
(``model_copy(update=...)``) and never mutate. Timestamps are integer
milliseconds since the epoch. Stage and step indexes are 0-based inside the
code; people see them 1-based (``StepRef.label``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from .errors import COMMAND, NotFound


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StepState(StrEnum):
    """Whether a step is still to do or done."""

    OPEN = "open"
    DONE = "done"


class IncidentStatus(StrEnum):
    """Lifecycle of an incident."""

    ONGOING = "ongoing"
    ENDED = "ended"


class ReminderDelivery(StrEnum):
    """Where the commander is reminded that a status update is due."""

    CHANNEL = "channel"  #: in the incident channel, mentioning the commander
    DM = "dm"  #: by direct message
    BOTH = "both"


class UpdateSettings(_Frozen):
    """How an incident's status updates go out: set on a playbook, copied to each incident at start.

    ``interval_ms`` is the default "next update in" (None: no reminders unless an update asks for
    one); ``template`` prefills the update text. Limits are checked by
    :func:`domain.playbooks.update_settings` when input enters the domain.
    """

    broadcast_channel_ids: tuple[str, ...] = ()
    interval_ms: int | None = None
    template: str = ""
    reminder_delivery: ReminderDelivery = ReminderDelivery.BOTH


class FieldKind(StrEnum):
    """What a playbook's custom field holds (issue 18). Values are stored as strings."""

    SEVERITY = "severity"  #: one of ``options``, an ordered scale (most severe first)
    TEXT = "text"
    SELECT = "select"  #: one of ``options``
    USER = "user"  #: a user id
    DATE = "date"  #: an ISO date, ``YYYY-MM-DD``


class FieldDef(_Frozen):
    """One field a playbook defines; each incident keeps its own copy of the definitions.

    ``id`` is the stable key values are stored under (``severity`` for the severity field);
    ``name`` is what people see. Limits are checked where input enters the domain.
    """

    id: str
    name: str
    kind: FieldKind
    options: tuple[str, ...] = ()
    description: str = ""


#: Every playbook (and every incident started without one) has this field unless it says otherwise.
DEFAULT_SEVERITY = FieldDef(
    id="severity", name="Severity", kind=FieldKind.SEVERITY, options=("SEV1", "SEV2", "SEV3", "SEV4")
)


class RetroSettings(_Frozen):
    """A playbook's retrospective: the template the dialog is prefilled with, and how long after
    the end the commander is reminded to write it (None: no reminder)."""

    template: str = ""
    reminder_interval_ms: int | None = None


class RetroStatus(StrEnum):
    """Where an ended incident's retrospective stands (None on an incident that never ended)."""

    PENDING = "pending"
    PUBLISHED = "published"
    SKIPPED = "skipped"  #: "no retrospective" was chosen


class WebhookTarget(_Frozen):
    """Where an incident's lifecycle events are sent (issue 21; docs/webhooks.md). ``events``: the
    event kinds wanted (empty: every lifecycle event). ``id`` is stable while the URL stays: the
    target's signing secret is derived from it (gateway/webhooks_out.py ``target_secret``)."""

    id: str
    url: str
    events: tuple[str, ...] = ()


class Step(_Frozen):
    """One checklist item. In a playbook, ``assignee_id`` is the default assignee."""

    id: str
    title: str
    description: str = ""
    command: str = ""
    assignee_id: str | None = None
    state: StepState = StepState.OPEN
    state_changed_by: str | None = None
    state_changed_at: int | None = None
    #: When the step's command last ran (recorded runs only); binds the Run button to it.
    last_run_at: int | None = None

    @property
    def done(self) -> bool:
        """True when the step is checked."""
        return self.state is StepState.DONE


class Stage(_Frozen):
    """An ordered checklist of steps with a title."""

    id: str
    title: str
    steps: tuple[Step, ...] = ()

    @property
    def done_count(self) -> int:
        """How many steps of this stage are done."""
        return sum(1 for step in self.steps if step.done)


class Playbook(_Frozen):
    """A team's reusable response plan; only its members (and system admins) may use it."""

    id: str
    team_id: str
    title: str
    description: str = ""
    create_public_channel: bool = True
    member_ids: tuple[str, ...] = ()
    stages: tuple[Stage, ...] = ()
    created_by: str
    created_at: int
    updated_at: int
    version: int = 1
    #: Status updates of its incidents (copied to each incident when it starts).
    updates: UpdateSettings = UpdateSettings()
    #: Added to every new incident channel; the default commander (None: whoever starts it);
    #: users who follow every incident started from it.
    invited_user_ids: tuple[str, ...] = ()
    default_commander_id: str | None = None
    auto_follower_ids: tuple[str, ...] = ()
    #: Custom fields (severity first by default) and the retrospective (issue 18).
    fields: tuple[FieldDef, ...] = (DEFAULT_SEVERITY,)
    retro: RetroSettings = RetroSettings()
    #: Outgoing webhooks of its incidents (copied to each incident when it starts).
    webhooks: tuple[WebhookTarget, ...] = ()

    @property
    def step_count(self) -> int:
        """Total number of steps over all stages."""
        return sum(len(stage.steps) for stage in self.stages)


class StepRef(NamedTuple):
    """A step's position: 0-based ``stage`` and ``index`` within the stage.

    A NamedTuple so that callers may also pass a plain ``(stage, index)`` tuple.
    """

    stage: int
    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: it is the step's index

    @property
    def label(self) -> str:
        """The 1-based ``S.N`` form people type."""
        return f"{self.stage + 1}.{self.index + 1}"

    def __str__(self) -> str:
        return self.label


#: A step is addressed by position (typed by people) or by id (buttons; stable under moves).
StepTarget = StepRef | str


class Incident(_Frozen):
    """An incident: its own copy of the playbook's stages plus who/when/where."""

    id: str
    team_id: str
    channel_id: str
    name: str
    description: str = ""
    commander_id: str
    creator_id: str
    playbook_id: str | None = None
    playbook_title: str = ""
    stages: tuple[Stage, ...] = Field(min_length=1)
    active_stage: int = 0
    status: IncidentStatus = IncidentStatus.ONGOING
    created_at: int
    ended_at: int | None = None
    source_post_id: str | None = None
    card_post_id: str | None = None
    public: bool = True
    #: When the active stage was last set, and when the incident was last restarted (None: never
    #: since it started). Card buttons carry them (domain/freshness.py), so a Next → Previous or an
    #: End → Restart cycle never makes an old click current again.
    stage_set_at: int | None = None
    restarted_at: int | None = None
    version: int = 1
    #: Status updates (docs/status-updates.md): the incident's own copy of its playbook's settings,
    #: who follows it, when the last update was posted (and its post, once posted), when the next
    #: one is due (None: none is), and when one was last requested since the last update.
    updates: UpdateSettings = UpdateSettings()
    follower_ids: tuple[str, ...] = ()
    last_update_at: int | None = None
    last_update_by: str | None = None
    last_update_post_id: str | None = None
    next_update_due_at: int | None = None
    update_requested_at: int | None = None
    #: Custom fields (issue 18): the playbook's definitions copied at start, and the values set,
    #: by field id (unset fields are absent).
    fields: tuple[FieldDef, ...] = (DEFAULT_SEVERITY,)
    field_values: dict[str, str] = Field(default_factory=dict)
    #: The retrospective: the playbook's settings copied at start; where it stands after the end;
    #: the published text, when and by whom.
    retro: RetroSettings = RetroSettings()
    retro_status: RetroStatus | None = None
    retro_text: str = ""
    retro_published_at: int | None = None
    retro_by: str | None = None
    #: Outgoing webhooks: the playbook's targets, copied at start.
    webhooks: tuple[WebhookTarget, ...] = ()

    @property
    def severity(self) -> str | None:
        """The value of the incident's severity field (the first of kind SEVERITY), if set."""
        for field in self.fields:
            if field.kind is FieldKind.SEVERITY:
                return self.field_values.get(field.id)
        return None

    @property
    def is_ongoing(self) -> bool:
        """True until the incident is ended."""
        return self.status is IncidentStatus.ONGOING

    @property
    def current_stage(self) -> Stage:
        """The active stage."""
        return self.stages[self.active_stage]

    @property
    def steps_total(self) -> int:
        """Number of steps over all stages."""
        return sum(len(stage.steps) for stage in self.stages)

    @property
    def steps_done(self) -> int:
        """Number of done steps over all stages."""
        return sum(stage.done_count for stage in self.stages)

    def duration_ms(self, now: int) -> int:
        """Time from start to end (or to ``now`` while ongoing), never negative."""
        end = self.ended_at if self.ended_at is not None else now
        return max(0, end - self.created_at)

    def stage_label(self, stage: int) -> str:
        """``stage 2 "Investigation"`` for messages."""
        return f'stage {stage + 1} "{self.stages[stage].title}"'

    def locate(self, target: StepTarget) -> StepRef:
        """Resolve a position or step id to an existing step's position, or raise NotFound."""
        if isinstance(target, str):
            for s, stage in enumerate(self.stages):
                for i, step in enumerate(stage.steps):
                    if step.id == target:
                        return StepRef(s, i)
            raise NotFound(
                "That step is no longer in this incident's checklist; it may have been removed."
                f" Type {COMMAND}info to see the current steps."
            )
        ref = StepRef(*target)
        if not 0 <= ref.stage < len(self.stages):
            count = len(self.stages)
            raise NotFound(
                f"Step {ref.label} does not exist: this incident has {count} stage{'s' if count != 1 else ''}."
            )
        steps = self.stages[ref.stage].steps
        if not 0 <= ref.index < len(steps):
            count = len(steps)
            raise NotFound(
                f"Step {ref.label} does not exist: {self.stage_label(ref.stage)} has"
                f" {count} step{'s' if count != 1 else ''}."
            )
        return ref

    def step(self, target: StepTarget) -> Step:
        """The step at ``target`` (position or id); NotFound if there is none."""
        ref = self.locate(target)
        return self.stages[ref.stage].steps[ref.index]


class EventKind(StrEnum):
    """What a timeline event records."""

    CREATED = "created"
    COMMANDER_CHANGED = "commander_changed"
    STAGE_CHANGED = "stage_changed"
    STEP_CHECKED = "step_checked"
    STEP_UNCHECKED = "step_unchecked"
    STEP_ASSIGNED = "step_assigned"
    STEP_RUN = "step_run"
    STEP_ADDED = "step_added"
    STEP_REMOVED = "step_removed"
    STEP_RENAMED = "step_renamed"
    STEP_MOVED = "step_moved"
    ENDED = "ended"
    RESTARTED = "restarted"
    STATUS_UPDATE = "status_update"
    POST_PINNED = "post_pinned"
    UPDATE_REQUESTED = "update_requested"
    REMINDER_SNOOZED = "reminder_snoozed"
    FOLLOWED = "followed"
    UNFOLLOWED = "unfollowed"
    # Issue 18: the full timeline, fields and the retrospective.
    MEMBER_JOINED = "member_joined"
    MEMBER_LEFT = "member_left"
    FIELD_CHANGED = "field_changed"
    POST_ADDED = "post_added"  #: a chat message added to the timeline (reaction or command)
    POST_REMOVED = "post_removed"  #: its reaction was removed (the event is then left out)
    POST_EDITED = "post_edited"  #: an added post was edited (details: post_id, excerpt)
    POST_DELETED = "post_deleted"  #: an added post was deleted (its entry is then marked deleted)
    EVENT_HIDDEN = "event_hidden"  #: the commander hid an event (details: event_id)
    RETRO_PUBLISHED = "retro_published"
    RETRO_SKIPPED = "retro_skipped"
    # Issue 21: alerts that started or touched an incident.
    ALERT_RECEIVED = "alert_received"
    ALERT_RESOLVED = "alert_resolved"


class TimelineEvent(_Frozen):
    """One entry of an incident's timeline. ``details`` holds ids and small values only."""

    id: str
    incident_id: str
    at: int
    kind: EventKind
    actor_id: str
    details: dict[str, Any] = Field(default_factory=dict)


class Actor(NamedTuple):
    """Who is acting, as Mattermost says (never as a client claims)."""

    user_id: str
    is_system_admin: bool = False


class CredentialKind(StrEnum):
    """What a backstage credential is (issue 19): a browser session or a personal API token."""

    SESSION = "session"
    API_TOKEN = "api_token"


class WebCredential(_Frozen):
    """A secret that signs someone in to the backstage (web pages and ``/api/v1``).

    Only a hash of the secret is stored (``token_hash``: SHA-256, hex), so a copy of the database
    signs nobody in. ``id`` is public: it names the credential in lists and when revoking it.
    """

    id: str
    token_hash: str
    kind: CredentialKind
    user_id: str
    #: A token's name, chosen by its owner ("" for sessions).
    name: str = ""
    #: A session's CSRF token, which every form and unsafe request must carry ("" for API tokens).
    csrf: str = ""
    created_at: int
    #: Epoch ms after which it signs nobody in; 0 = never (API tokens until revoked).
    expires_at: int = 0
