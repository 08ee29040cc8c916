"""Playbooks as YAML files (the format documented in docs/playbooks.md).

:func:`parse` turns text into a :class:`PlaybookSpec`, checking every field and
every domain limit, and reports *all* problems at once with the line and field
they are about (:class:`PlaybookFormatError`); :func:`dump` writes the format.
People are named by username here; turning names into ids (and rejecting
unknown ones, at their line) is the service's job, because only Mattermost
knows who exists.

Only a safe subset of YAML is read: no anchors or aliases (they allow
"billion laughs" expansion), no custom tags, bounded size, nesting and number of values.

Reading is CPU work, so :func:`read_playbook` and :func:`read_stages` check the size a path
allows first (:class:`SizeLimit`: a dialog field is smaller than a file), then parse in a
worker thread, never on the event loop.  Parse time is bounded by the input, not left to
chance: no alias expands, and more values than a playbook at every domain limit has
(:data:`MAX_NODES`) is refused while composing, so a huge flow list stops early.  As a
backstop, a parse still running after :data:`PARSE_TIMEOUT_S` abandons itself (the loader
checks the deadline at every token and value) and the caller is told so.  A process pool
would also kill a runaway parse, but costs a process per worker and pickling for a case the
structural limits already exclude.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from domain import limits, validation
from domain import webhooks as webhook_rules
from domain.durations import format_duration, parse_duration
from domain.errors import ValidationError
from domain.fields import validate_field, validate_fields
from domain.models import (
    DEFAULT_SEVERITY,
    FieldDef,
    FieldKind,
    Playbook,
    ReminderDelivery,
    RetroSettings,
    Stage,
    UpdateSettings,
)
from domain.retro import retro_settings
from gateway.messages import DEFAULT_TRIGGER, command
from gateway.webhooks_out import WebhookURLError, parse_target_url
from gateway.yaml_reading import Bounds, Deadline, Problem, Problems, TooManyProblems, compose, line_of

#: Largest YAML text read at all, in characters (as large as the largest file accepted).
MAX_YAML_CHARS = 256 * 1024
#: Most YAML values (scalars, lists, mappings, keys included) a playbook at every domain
#: limit has: 14 top-level fields, every member, broadcast channel, invited user and follower, every
#: webhook (a mapping of a URL and its events), every custom field, and per stage a mapping with 2
#: fields and a list of steps, each a mapping of 4 fields. Anything with more is not a playbook.
MAX_NODES = (30 + webhook_rules.WEBHOOKS_MAX * (6 + len(webhook_rules.EVENT_WORDS)) + limits.PLAYBOOK_MEMBERS_MAX
             + limits.BROADCAST_CHANNELS_MAX + limits.PLAYBOOK_INVITED_MAX
             + limits.PLAYBOOK_FOLLOWERS_MAX + limits.STAGES_MAX * (5 + limits.STEPS_PER_STAGE_MAX * 9)
             + 8 + limits.FIELDS_MAX * (12 + limits.FIELD_OPTIONS_MAX))
#: A parse still running after this long is abandoned (seconds); permitted input takes far less.
PARSE_TIMEOUT_S = 5.0
_MAX_DEPTH = 12
_MAX_PROBLEMS = 20
_USERNAME = re.compile(r"^[a-z0-9._-]{1,64}$")
#: A Mattermost channel name (the handle in its URL, written ``~name`` in messages).
_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_TAG = "tag:yaml.org,2002:"
_TEXT_TAGS = {_TAG + name for name in ("str", "int", "float", "bool", "timestamp")}
_NULL_TAG = _TAG + "null"
_BOOL_TAG = _TAG + "bool"


# -- what a file describes ------------------------------------------------------------------

@dataclass(frozen=True)
class UserRef:
    """A username from the file, with where it was written (for "no such user" errors)."""

    username: str
    line: int = field(default=0, compare=False)
    where: str = field(default="", compare=False)


@dataclass(frozen=True)
class ChannelRef:
    """A channel name from the file (``ops-status``, or ``~ops-status``), with where it was written."""

    name: str
    line: int = field(default=0, compare=False)
    where: str = field(default="", compare=False)


@dataclass(frozen=True)
class StepSpec:
    """A step as written in the file."""

    title: str
    description: str = ""
    command: str = ""
    assignee: UserRef | None = None


@dataclass(frozen=True)
class StageSpec:
    """A stage as written in the file."""

    title: str
    steps: tuple[StepSpec, ...] = ()


@dataclass(frozen=True)
class WebhookSpec:
    """An outgoing webhook as written in the file (docs/webhooks.md): its URL (form checked; its
    addresses are checked by the service, which knows the settings) and the event kinds wanted."""

    url: str
    events: tuple[str, ...] = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class PlaybookSpec:
    """A whole playbook as written in the file; already checked against every domain limit."""

    title: str
    description: str = ""
    public: bool = True
    members: tuple[UserRef, ...] = ()
    stages: tuple[StageSpec, ...] = ()
    #: Status updates (docs/status-updates.md): where they are copied, how often they are due, the
    #: text they start from, where reminders go.
    broadcast_channels: tuple[ChannelRef, ...] = ()
    update_interval_ms: int | None = None
    update_template: str = ""
    reminders: ReminderDelivery = ReminderDelivery.BOTH
    #: At start: who is added to the channel, who commands (None: whoever starts), who follows.
    invite: tuple[UserRef, ...] = ()
    commander: UserRef | None = None
    followers: tuple[UserRef, ...] = ()
    #: Outgoing webhooks of its incidents (docs/webhooks.md); secrets are never in the file.
    webhooks: tuple[WebhookSpec, ...] = ()
    #: Custom fields (issue 18; the default: the severity field SEV1-SEV4) and the retrospective.
    fields: tuple[FieldDef, ...] = (DEFAULT_SEVERITY,)
    retro_template: str = ""
    retro_reminder_ms: int | None = None

    def usernames(self) -> list[UserRef]:
        """Every user the file names (members, default assignees, invited users, the default
        commander, followers), in file order."""
        refs = list(self.members)
        refs.extend(step.assignee for stage in self.stages for step in stage.steps if step.assignee)
        refs.extend(self.invite)
        if self.commander is not None:
            refs.append(self.commander)
        refs.extend(self.followers)
        return refs

    def channel_names(self) -> list[ChannelRef]:
        """Every channel the file names (the broadcast channels), in file order."""
        return list(self.broadcast_channels)


# -- errors ---------------------------------------------------------------------------------

class PlaybookFormatError(ValidationError):
    """The YAML is not a valid playbook; ``problems`` lists every problem found (nothing is saved)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda problem: problem.line)
        count = len(self.problems)
        head = ("The playbook YAML has a problem" if count == 1 else f"The playbook YAML has {count} problems")
        lines = "\n".join(f"- {problem}" for problem in self.problems)
        super().__init__(f"{head}; nothing was saved.\n{lines}\nThe format is described in docs/playbooks.md.")


_Stop = TooManyProblems


class _Problems(Problems):
    """The problems of one playbook file, raised as PlaybookFormatError."""

    def __init__(self) -> None:
        super().__init__(PlaybookFormatError, _MAX_PROBLEMS)


_line = line_of

# -- reading YAML safely --------------------------------------------------------------------

_BOUNDS = Bounds(
    max_nodes=MAX_NODES, max_depth=_MAX_DEPTH,
    too_many=f"the YAML has more than {MAX_NODES} values (items, fields and texts), more than a playbook at "
             "every limit has",
    too_deep="the YAML is nested too deeply for a playbook")


@dataclass(frozen=True)
class SizeLimit:
    """How much YAML one way in takes (a dialog field, a file), and where to go with more."""

    max_chars: int
    #: What to do instead, e.g. "Send longer playbooks to me as a .yaml file in a direct message."
    advice: str = ""

    def check(self, text: str) -> None:
        """PlaybookFormatError naming the limit if ``text`` is longer (checked before any parsing)."""
        if len(text) > self.max_chars:
            message = (f"the YAML is {len(text):,} characters long; the most accepted here is "
                       f"{self.max_chars:,}.{' ' + self.advice if self.advice else ''}")
            raise PlaybookFormatError([Problem(0, "", message)])


#: What :func:`parse` reads when no smaller limit is given.
ANY_SIZE = SizeLimit(MAX_YAML_CHARS)


def _compose(text: object, deadline: Deadline | None) -> Node | None:
    if not isinstance(text, str):
        raise PlaybookFormatError([Problem(0, "", "expected YAML text.")])
    ANY_SIZE.check(text)
    return compose(text, _BOUNDS, PlaybookFormatError, deadline=deadline, too_slow=_too_slow)


# -- checking the structure ---------------------------------------------------------------

def _fields(node: Node, where: str, allowed: tuple[str, ...], required: tuple[str, ...],
            problems: _Problems) -> dict[str, Node] | None:
    """The value nodes of a mapping, after checking its keys."""
    if not isinstance(node, MappingNode):
        problems.add(node, where, f"expected fields ({', '.join(allowed)}), written as `name: value` lines.")
        return None
    found: dict[str, Node] = {}
    for key, value in node.value:
        name = key.value if isinstance(key, ScalarNode) and key.tag != _NULL_TAG else None
        if not isinstance(name, str) or name not in allowed:
            shown = name if isinstance(name, str) else "(not a name)"
            problems.add(key, _join(where, str(shown)),
                         f"unknown field; the fields allowed here are: {', '.join(allowed)}.")
            continue
        if name in found:
            problems.add(key, _join(where, name), "this field is written twice; keep one.")
            continue
        found[name] = value
    for name in required:
        if name not in found:
            problems.add(node, where or name, f"the `{name}` field is missing." if where else "this field is missing.")
    return found


def _join(where: str, name: str) -> str:
    return f"{where}, {name}" if where else name


def _scalar_text(node: Node, where: str, problems: _Problems) -> str | None:
    if not isinstance(node, ScalarNode):
        problems.add(node, where, "expected text, not a list or fields.")
        return None
    if node.tag == _NULL_TAG:
        return ""
    if node.tag not in _TEXT_TAGS:
        problems.add(node, where, f"the tag {node.tag.replace(_TAG, '!!')} is not supported; write plain text.")
        return None
    return node.value


def _text(node: Node, where: str, problems: _Problems, check: Callable[[str], str]) -> str | None:
    value = _scalar_text(node, where, problems)
    if value is None:
        return None
    try:
        return check(value)
    except ValidationError as error:
        problems.add(node, where, str(error))
        return None


def _bool(node: Node, where: str, problems: _Problems) -> bool | None:
    if isinstance(node, ScalarNode) and node.tag == _BOOL_TAG:
        return yaml.constructor.SafeConstructor.bool_values[node.value.lower()]
    problems.add(node, where, "expected true or false.")
    return None


def _username(node: Node, where: str, problems: _Problems) -> UserRef | None:
    value = _scalar_text(node, where, problems)
    if value is None:
        return None
    name = value.strip().lstrip("@").lower()
    if not _USERNAME.match(name):
        problems.add(node, where, f'"{value[:40]}" is not a username (letters, digits, ".", "_", "-").')
        return None
    return UserRef(name, _line(node), where)


def _items(node: Node, where: str, problems: _Problems, *, max_items: int, noun: str) -> list[Node]:
    if not isinstance(node, SequenceNode):
        problems.add(node, where, f"expected a list of {noun}, one per line starting with `- `.")
        return []
    if len(node.value) > max_items:
        problems.add(node, where, f"at most {max_items} {noun} are allowed; there are {len(node.value)}.")
        return []
    return list(node.value)


def _step(node: Node, where: str, problems: _Problems) -> StepSpec | None:
    if isinstance(node, ScalarNode):  # the short form: just the title
        title = _text(node, where, problems, validation.step_title)
        return StepSpec(title=title) if title is not None else None
    found = _fields(node, where, ("title", "description", "command", "assignee"), ("title",), problems)
    if found is None:
        return None
    title = _text(found["title"], _join(where, "title"), problems, validation.step_title) if "title" in found else None
    description: str | None = ""
    command: str | None = ""
    assignee = None
    if "description" in found:
        description = _text(found["description"], _join(where, "description"), problems,
                            validation.step_description)
    if "command" in found:
        command = _text(found["command"], _join(where, "command"), problems, validation.step_command)
    node_assignee = found.get("assignee")
    if node_assignee is not None and not (isinstance(node_assignee, ScalarNode) and node_assignee.tag == _NULL_TAG):
        assignee = _username(node_assignee, _join(where, "assignee"), problems)
        if assignee is None:
            return None
    if title is None or description is None or command is None:
        return None
    return StepSpec(title=title, description=description, command=command, assignee=assignee)


def _stage(node: Node, where: str, problems: _Problems) -> StageSpec | None:
    found = _fields(node, where, ("title", "steps"), ("title",), problems)
    if found is None:
        return None
    title = _text(found["title"], _join(where, "title"), problems, validation.stage_title) if "title" in found else None
    steps: list[StepSpec | None] = []
    steps_node = found.get("steps")
    if steps_node is not None and not (isinstance(steps_node, ScalarNode) and steps_node.tag == _NULL_TAG):
        items = _items(steps_node, _join(where, "steps"), problems, max_items=limits.STEPS_PER_STAGE_MAX,
                       noun="steps")
        steps = [_step(item, f"{where}, step {n}", problems) for n, item in enumerate(items, start=1)]
    if title is None or any(step is None for step in steps):
        return None
    return StageSpec(title=title, steps=tuple(s for s in steps if s is not None))


def _stages(node: Node, where: str, problems: _Problems) -> tuple[StageSpec, ...] | None:
    items = _items(node, where, problems, max_items=limits.STAGES_MAX, noun="stages")
    if isinstance(node, SequenceNode) and not node.value:
        problems.add(node, where, "a playbook needs at least one stage.")
        return None
    stages = [_stage(item, f"stage {n}", problems) for n, item in enumerate(items, start=1)]
    if not items or any(stage is None for stage in stages):
        return None
    return tuple(s for s in stages if s is not None)


def _members(node: Node, problems: _Problems, where: str = "members",
             max_items: int = limits.PLAYBOOK_MEMBERS_MAX) -> tuple[UserRef, ...] | None:
    """A list of usernames (``members``, ``invite``, ``followers``), duplicates dropped."""
    if _is_null(node):
        return ()
    items = _items(node, where, problems, max_items=max_items, noun="usernames")
    refs = [_username(item, f"{where}, entry {n}", problems) for n, item in enumerate(items, start=1)]
    if any(ref is None for ref in refs):
        return None
    unique: dict[str, UserRef] = {}
    for ref in refs:
        if ref is not None:
            unique.setdefault(ref.username, ref)
    return tuple(unique.values())


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _channel(node: Node, where: str, problems: _Problems) -> ChannelRef | None:
    value = _scalar_text(node, where, problems)
    if value is None:
        return None
    name = value.strip().lstrip("~").lower()
    if not _CHANNEL_NAME.match(name):
        problems.add(node, where, f'"{value[:40]}" is not a channel name (the name in its link: lowercase letters, '
                                  'digits, "-" and "_"; for example ops-status).')
        return None
    return ChannelRef(name, _line(node), where)


def _channels(node: Node, problems: _Problems) -> tuple[ChannelRef, ...] | None:
    where = "broadcast_channels"
    if _is_null(node):
        return ()
    items = _items(node, where, problems, max_items=limits.BROADCAST_CHANNELS_MAX, noun="channel names")
    refs = [_channel(item, f"{where}, entry {n}", problems) for n, item in enumerate(items, start=1)]
    if any(ref is None for ref in refs):
        return None
    unique: dict[str, ChannelRef] = {}
    for ref in refs:
        if ref is not None:
            unique.setdefault(ref.name, ref)
    return tuple(unique.values())


def _interval(node: Node, problems: _Problems) -> tuple[bool, int | None]:
    """(ok, interval in ms or None for none)."""
    if _is_null(node):
        return True, None
    value = _scalar_text(node, "update_interval", problems)
    if value is None:
        return False, None
    try:
        return True, validation.update_interval(parse_duration(value, field="update_interval"))
    except ValidationError as error:
        problems.add(node, "update_interval", str(error))
        return False, None


def _webhook(node: Node, where: str, problems: _Problems) -> WebhookSpec | None:
    """``- url: …`` with optional ``events: [created, ended]``, or just the URL (every event)."""
    events_node = None
    if isinstance(node, MappingNode):
        found = _fields(node, where, ("url", "events"), ("url",), problems)
        if found is None or "url" not in found:
            return None
        url_node, events_node = found["url"], found.get("events")
    else:
        url_node = node
    url = _scalar_text(url_node, _join(where, "url"), problems)
    if url is None:
        return None
    try:
        checked = parse_target_url(url).url
    except WebhookURLError as error:
        problems.add(url_node, _join(where, "url"), str(error))
        return None
    events: tuple[str, ...] = ()
    if events_node is not None and not _is_null(events_node):
        names = []
        for item in _items(events_node, _join(where, "events"), problems, max_items=len(webhook_rules.EVENT_WORDS),
                           noun="event names"):
            name = _scalar_text(item, _join(where, "events"), problems)
            if name is not None:
                names.append((item, name))
        kinds: list[str] = []
        for item, name in names:
            try:
                kinds.extend(k for k in webhook_rules.event_kinds([name]) if k not in kinds)
            except ValidationError as error:
                problems.add(item, _join(where, "events"), str(error))
                return None
        events = tuple(kinds)
    return WebhookSpec(checked, events, _line(url_node))


def _webhooks(node: Node, problems: _Problems) -> tuple[WebhookSpec, ...] | None:
    where = "webhooks"
    if _is_null(node):
        return ()
    items = _items(node, where, problems, max_items=webhook_rules.WEBHOOKS_MAX, noun="webhooks")
    specs = [_webhook(item, f"{where}, entry {n}", problems) for n, item in enumerate(items, start=1)]
    if any(spec is None for spec in specs):
        return None
    seen: set[str] = set()
    for item, spec in zip(items, specs, strict=True):
        assert spec is not None
        if spec.url in seen:
            problems.add(item, where, f"the webhook {spec.url[:80]!r} is listed twice; keep one.")
            return None
        seen.add(spec.url)
    return tuple(spec for spec in specs if spec is not None)


def _reminders(node: Node, problems: _Problems) -> ReminderDelivery | None:
    value = _scalar_text(node, "reminders", problems)
    if value is None:
        return None
    try:
        return ReminderDelivery(value.strip().lower())
    except ValueError:
        choices = ", ".join(d.value for d in ReminderDelivery)
        problems.add(node, "reminders", f'"{value[:24]}" is not a place for reminders; write one of: {choices}.')
        return None


_FIELD_KEYS = ("name", "id", "type", "options", "description")
_RETRO_KEYS = ("template", "reminder")


def _field(node: Node, where: str, problems: _Problems) -> FieldDef | None:
    found = _fields(node, where, _FIELD_KEYS, ("name", "type"), problems)
    if found is None:
        return None
    texts: dict[str, str | None] = {}
    for key in ("name", "id", "type", "description"):
        if key in found:
            texts[key] = _scalar_text(found[key], _join(where, key), problems)
    if any(value is None for value in texts.values()) or "name" not in texts or "type" not in texts:
        return None
    kind_text = (texts["type"] or "").strip().lower()
    try:
        kind = FieldKind(kind_text)
    except ValueError:
        problems.add(found["type"], _join(where, "type"), f'"{kind_text[:24]}" is not a field type; write one of: '
                                                         f"{', '.join(k.value for k in FieldKind)}.")
        return None
    options: list[str] = []
    if "options" in found and not _is_null(found["options"]):
        items = _items(found["options"], _join(where, "options"), problems, max_items=limits.FIELD_OPTIONS_MAX,
                       noun="options")
        for n, item in enumerate(items, start=1):
            text = _scalar_text(item, f"{where}, option {n}", problems)
            if text is None:
                return None
            options.append(text)
    try:
        return validate_field(FieldDef(id=texts.get("id") or "", name=texts["name"] or "", kind=kind,
                                       options=tuple(options), description=texts.get("description") or ""))
    except ValidationError as error:
        problems.add(node, where, error.message.split(": ", 1)[-1])
        return None


def _field_list(node: Node, problems: _Problems) -> tuple[FieldDef, ...] | None:
    if _is_null(node):
        return ()
    items = _items(node, "fields", problems, max_items=limits.FIELDS_MAX, noun="fields")
    defs = [_field(item, f"field {n}", problems) for n, item in enumerate(items, start=1)]
    if any(d is None for d in defs):
        return None
    try:
        return validate_fields([d for d in defs if d is not None])
    except ValidationError as error:
        problems.add(node, "fields", error.message)
        return None


def _retrospective(node: Node, problems: _Problems) -> dict | None:
    if _is_null(node):
        return {}
    found = _fields(node, "retrospective", _RETRO_KEYS, (), problems)
    if found is None:
        return None
    result: dict = {}
    if "template" in found:
        template = _scalar_text(found["template"], "retrospective, template", problems)
        if template is None:
            return None
        result["retro_template"] = template
    if "reminder" in found and not _is_null(found["reminder"]):
        value = _scalar_text(found["reminder"], "retrospective, reminder", problems)
        if value is None:
            return None
        try:
            result["retro_reminder_ms"] = parse_duration(value, field="retro")
        except ValidationError as error:
            problems.add(found["reminder"], "retrospective, reminder", str(error))
            return None
    try:
        retro_settings(template=result.get("retro_template", ""),
                       reminder_interval_ms=result.get("retro_reminder_ms"))
    except ValidationError as error:
        problems.add(node, "retrospective", str(error))
        return None
    return result


# -- public API ---------------------------------------------------------------------------

TOP_LEVEL_FIELDS = ("title", "description", "public", "members", "stages", "broadcast_channels", "update_interval",
                    "update_template", "reminders", "invite", "commander", "followers", "webhooks",
                    "fields", "retrospective")


def _too_slow(timeout_s: float) -> str:
    return (f"reading the YAML took longer than {timeout_s:g} seconds, so it was abandoned. Remove what a "
            "playbook does not need (long lists, deep nesting) and try again.")


def parse(text: str, deadline: Deadline | None = None) -> PlaybookSpec:
    """Read a playbook file; raise PlaybookFormatError listing every problem (line and field).

    Runs on the calling thread: from async code use :func:`read_playbook`.
    """
    root = _compose(text, deadline)
    problems = _Problems()
    try:
        if root is None:
            problems.add(None, "", "the file is empty; it needs at least `title` and `stages`.")
        found = _fields(root, "", TOP_LEVEL_FIELDS, ("title", "stages"), problems) if root is not None else None
        if found is None:
            problems.raise_if_any()
            raise PlaybookFormatError([Problem(0, "", "not a playbook.")])
        title = _text(found["title"], "title", problems, validation.playbook_title) if "title" in found else None
        description: str | None = ""
        if "description" in found:
            description = _text(found["description"], "description", problems, validation.playbook_description)
        public = _bool(found["public"], "public", problems) if "public" in found else True
        members = _members(found["members"], problems) if "members" in found else ()
        stages = _stages(found["stages"], "stages", problems) if "stages" in found else None
        settings = _settings(found, problems)
    except _Stop:
        pass
    problems.raise_if_any()
    assert title is not None and description is not None and public is not None
    assert members is not None and stages is not None
    return PlaybookSpec(title=title, description=description, public=public, members=members, stages=stages,
                        **settings)


def _settings(found: dict[str, Node], problems: _Problems) -> dict:
    """The status-update and start settings of the file (only those it writes; defaults otherwise)."""
    settings: dict = {}
    if "broadcast_channels" in found:
        settings["broadcast_channels"] = _channels(found["broadcast_channels"], problems)
    if "update_interval" in found:
        ok, interval = _interval(found["update_interval"], problems)
        settings["update_interval_ms"] = interval if ok else None
    if "update_template" in found:
        settings["update_template"] = _text(found["update_template"], "update_template", problems,
                                            validation.update_template)
    if "reminders" in found:
        settings["reminders"] = _reminders(found["reminders"], problems)
    if "invite" in found:
        settings["invite"] = _members(found["invite"], problems, "invite", limits.PLAYBOOK_INVITED_MAX)
    if "commander" in found and not _is_null(found["commander"]):
        settings["commander"] = _username(found["commander"], "commander", problems)
    if "followers" in found:
        settings["followers"] = _members(found["followers"], problems, "followers", limits.PLAYBOOK_FOLLOWERS_MAX)
    if "webhooks" in found:
        settings["webhooks"] = _webhooks(found["webhooks"], problems)
    if "fields" in found:
        settings["fields"] = _field_list(found["fields"], problems)
    if "retrospective" in found:
        retro = _retrospective(found["retrospective"], problems)
        if retro is not None:
            settings.update(retro)
    # A field with a problem is None here; the problem is reported before the spec is built.
    return {name: value for name, value in settings.items()
            if value is not None or name in ("update_interval_ms", "retro_reminder_ms")}


def parse_stages(text: str, deadline: Deadline | None = None) -> tuple[StageSpec, ...]:
    """Read just a list of stages (the edit dialog's outline field), with the same checks."""
    root = _compose(text, deadline)
    problems = _Problems()
    stages = None
    try:
        if root is None:
            problems.add(None, "", "the stages are empty; a playbook needs at least one stage.")
        else:
            stages = _stages(root, "stages", problems)
    except _Stop:
        pass
    problems.raise_if_any()
    assert stages is not None
    return stages


_T = TypeVar("_T")
_workers: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    """Two parser threads for the whole bot: more would only share the same GIL and cores."""
    global _workers
    if _workers is None:
        _workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="yaml")
    return _workers


async def _off_loop(parser: Callable[..., _T], text: object, limit: SizeLimit, timeout_s: float,
                    clock: Callable[[], float]) -> _T:
    if not isinstance(text, str):
        raise PlaybookFormatError([Problem(0, "", "expected YAML text.")])
    limit.check(text)
    # The deadline runs from now, so a parse that waited for a free thread gives up sooner.
    deadline = Deadline.after(timeout_s, clock)
    future = asyncio.get_running_loop().run_in_executor(_executor(), partial(parser, text, deadline))
    # The parser gives up by itself at the deadline; this bounds the wait even if it could not.
    done, _ = await asyncio.wait({future}, timeout=timeout_s + 1.0)
    if not done:
        raise PlaybookFormatError([Problem(0, "", _too_slow(timeout_s))])
    return future.result()


async def read_playbook(text: object, limit: SizeLimit = ANY_SIZE, *, timeout_s: float = PARSE_TIMEOUT_S,
                        clock: Callable[[], float] = time.monotonic) -> PlaybookSpec:
    """:func:`parse` off the event loop: the size is checked first, the parse is time-bounded."""
    return await _off_loop(parse, text, limit, timeout_s, clock)


async def read_stages(text: object, limit: SizeLimit = ANY_SIZE, *, timeout_s: float = PARSE_TIMEOUT_S,
                      clock: Callable[[], float] = time.monotonic) -> tuple[StageSpec, ...]:
    """:func:`parse_stages` off the event loop, like :func:`read_playbook`."""
    return await _off_loop(parse_stages, text, limit, timeout_s, clock)


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line text as literal blocks so descriptions stay readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar(_TAG + "str", value, style=style)


_Dumper.add_representer(str, _represent_str)

def _header(trigger: str) -> str:
    return f"# Command Center playbook. Format: docs/playbooks.md (import with {command(trigger, 'playbook import')}).\n"


def _step_data(step: StepSpec) -> str | dict[str, str]:
    if not (step.description or step.command or step.assignee):
        return step.title
    data = {"title": step.title}
    if step.description:
        data["description"] = step.description
    if step.command:
        data["command"] = step.command
    if step.assignee:
        data["assignee"] = step.assignee.username
    return data


def _stages_data(stages: Iterable[StageSpec]) -> list[dict]:
    return [{"title": stage.title, "steps": [_step_data(step) for step in stage.steps]} for stage in stages]


def _yaml(data: object) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False,
                     width=100_000, indent=2)


def dump(spec: PlaybookSpec, trigger: str = DEFAULT_TRIGGER) -> str:
    """The playbook as YAML text; ``parse(dump(spec)) == spec`` for every valid spec. ``trigger``: the
    slash command's, named in the header comment."""
    return _header(trigger) + _yaml(spec_data(spec))


def spec_data(spec: PlaybookSpec) -> dict[str, object]:
    """The playbook as the YAML file's data (plain dicts, lists and strings): what :func:`dump` writes,
    and what the backstage's API answers as JSON."""
    data: dict[str, object] = {"title": spec.title}
    if spec.description:
        data["description"] = spec.description
    data["public"] = spec.public
    data["members"] = [ref.username for ref in spec.members]
    # Settings at their defaults are left out, so a playbook without them reads as it always did.
    if spec.broadcast_channels:
        data["broadcast_channels"] = [ref.name for ref in spec.broadcast_channels]
    if spec.update_interval_ms is not None:
        data["update_interval"] = format_duration(spec.update_interval_ms)
    if spec.update_template:
        data["update_template"] = spec.update_template
    if spec.reminders is not ReminderDelivery.BOTH:
        data["reminders"] = spec.reminders.value
    if spec.invite:
        data["invite"] = [ref.username for ref in spec.invite]
    if spec.commander is not None:
        data["commander"] = spec.commander.username
    if spec.followers:
        data["followers"] = [ref.username for ref in spec.followers]
    if spec.webhooks:
        data["webhooks"] = [{"url": hook.url, **({"events": [webhook_rules.WORD_OF[k] for k in hook.events]}
                                                 if hook.events else {})} for hook in spec.webhooks]
    if spec.fields != (DEFAULT_SEVERITY,):
        data["fields"] = [_field_data(f) for f in spec.fields]
    if spec.retro_template or spec.retro_reminder_ms is not None:
        retro: dict[str, object] = {}
        if spec.retro_template:
            retro["template"] = spec.retro_template
        if spec.retro_reminder_ms is not None:
            retro["reminder"] = format_duration(spec.retro_reminder_ms)
        data["retrospective"] = retro
    data["stages"] = _stages_data(spec.stages)
    return data


def _field_data(field_def: FieldDef) -> dict[str, object]:
    data: dict[str, object] = {"name": field_def.name}
    if field_def.id != validate_field(field_def.model_copy(update={"id": ""})).id:
        data["id"] = field_def.id
    data["type"] = field_def.kind.value
    if field_def.options:
        data["options"] = list(field_def.options)
    if field_def.description:
        data["description"] = field_def.description
    return data


def dump_stages(stages: Iterable[StageSpec]) -> str:
    """Just the list of stages, as the edit dialog shows it."""
    return _yaml(_stages_data(stages))


def stage_specs(stages: Iterable[Stage], usernames: Mapping[str, str]) -> tuple[StageSpec, ...]:
    """Stored stages as specs; default assignees by username (users that no longer exist are dropped)."""
    specs = []
    for stage in stages:
        steps = []
        for step in stage.steps:
            name = usernames.get(step.assignee_id or "")
            steps.append(StepSpec(title=step.title, description=step.description, command=step.command,
                                  assignee=UserRef(name) if name else None))
        specs.append(StageSpec(title=stage.title, steps=tuple(steps)))
    return tuple(specs)


def _user_refs(user_ids: Iterable[str], usernames: Mapping[str, str]) -> tuple[UserRef, ...]:
    return tuple(UserRef(usernames[u]) for u in user_ids if usernames.get(u))


def playbook_spec(playbook: Playbook, usernames: Mapping[str, str],
                  channel_names: Mapping[str, str] | None = None) -> PlaybookSpec:
    """A stored playbook as a spec, ready for :func:`dump`; ``usernames`` maps user ids to usernames
    and ``channel_names`` channel ids to names (users and channels that no longer exist are dropped)."""
    channels = channel_names or {}
    commander = usernames.get(playbook.default_commander_id or "")
    updates = playbook.updates
    return PlaybookSpec(title=playbook.title, description=playbook.description,
                        public=playbook.create_public_channel, members=_user_refs(playbook.member_ids, usernames),
                        stages=stage_specs(playbook.stages, usernames),
                        broadcast_channels=tuple(ChannelRef(channels[c]) for c in updates.broadcast_channel_ids
                                                 if channels.get(c)),
                        update_interval_ms=updates.interval_ms, update_template=updates.template,
                        reminders=updates.reminder_delivery, invite=_user_refs(playbook.invited_user_ids, usernames),
                        commander=UserRef(commander) if commander else None,
                        followers=_user_refs(playbook.auto_follower_ids, usernames),
                        webhooks=tuple(WebhookSpec(t.url, t.events) for t in playbook.webhooks),
                        fields=playbook.fields, retro_template=playbook.retro.template,
                        retro_reminder_ms=playbook.retro.reminder_interval_ms)


def playbook_settings(spec: PlaybookSpec, user_ids: Mapping[str, str],
                      channel_ids: Mapping[str, str]) -> dict[str, object]:
    """The file's status-update and start settings as keyword arguments of
    :func:`domain.playbooks.new_playbook` / ``edit_playbook``, once the caller has resolved every
    username (``user_ids``: username → id) and channel name (``channel_ids``: name → id) and
    refused the unknown ones at their line. A setting the file leaves out gets its default."""
    return {
        "updates": UpdateSettings(
            broadcast_channel_ids=tuple(channel_ids[ref.name] for ref in spec.broadcast_channels),
            interval_ms=spec.update_interval_ms, template=spec.update_template, reminder_delivery=spec.reminders),
        "invited_user_ids": [user_ids[ref.username] for ref in spec.invite],
        "default_commander_id": user_ids[spec.commander.username] if spec.commander else "",
        "auto_follower_ids": [user_ids[ref.username] for ref in spec.followers],
        "fields": spec.fields,
        "retro": RetroSettings(template=spec.retro_template, reminder_interval_ms=spec.retro_reminder_ms),
    }


__all__ = [
    "ANY_SIZE", "MAX_NODES", "MAX_YAML_CHARS", "PARSE_TIMEOUT_S", "ChannelRef", "Deadline", "PlaybookFormatError",
    "PlaybookSpec", "Problem", "SizeLimit", "StageSpec", "StepSpec", "UserRef", "WebhookSpec", "dump", "dump_stages", "parse",
    "parse_stages", "playbook_settings", "playbook_spec", "read_playbook", "read_stages", "stage_specs",
]
