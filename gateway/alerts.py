"""Alerts from monitoring (issue 21): the three payloads the bot accepts, their secrets, and the
routing rules file (README "Alerts").

- **Payloads.** ``POST /alerts/alertmanager`` takes Alertmanager's webhook payload (version "4":
  receiver, status, alerts[] with status, labels, annotations, startsAt, endsAt, generatorURL,
  fingerprint; groupKey, groupLabels, commonLabels, commonAnnotations, externalURL,
  truncatedAlerts); ``POST /alerts/grafana`` Grafana alerting's webhook contact point (the same
  plus orgId, title, state, message, version "1", and per alert silenceURL, dashboardURL, panelURL,
  values, valueString); ``POST /alerts/generic`` a small form of our own (``GenericPayload``).
  Each is one pydantic model; :func:`parse_notification` turns a body into :class:`AlertIn`s or
  says, in one :class:`AlertPayloadError`, which field is wrong.
- **Secrets.** Each source has its own secret (settings). A request carries it as
  ``Authorization: Bearer <secret>``, or signs its body: the hex HMAC-SHA256 of the body with the
  secret in ``X-Command-Center-Signature`` (``sha256=`` prefix allowed) or, from Grafana,
  ``X-Grafana-Alerting-Signature``. Compared in constant time (:func:`authenticated`).
- **Routing rules** (:func:`parse_rules`): a YAML file, read as safely as playbooks are
  (gateway/playbook_yaml.py: no aliases, no tags, bounded size and nesting), every problem reported
  at once with its line. The first rule whose matchers all hold for an alert routes it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from domain import limits
from domain.alerts import AlertIn, AlertMode, AlertStatus
from domain.errors import ValidationError
from gateway.yaml_reading import Bounds, Problem, Problems, TooManyProblems, compose

#: The most alerts one notification may carry (Alertmanager's max_alerts is 0 = all by default; a
#: group larger than this is better sent truncated: ``truncatedAlerts`` says how many were left out).
MAX_ALERTS = 1000
MAX_LABELS = 64
LABEL_NAME_MAX = 128
LABEL_VALUE_MAX = 1024
ANNOTATION_VALUE_MAX = 8192
URL_MAX = 2048
TITLE_MAX = 300
FINGERPRINT_MAX = 128
GROUP_KEY_MAX = 2048


class AlertSource(StrEnum):
    """Where a notification comes from (the last part of its route, and the secret it needs)."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    GENERIC = "generic"


class AlertPayloadError(ValueError):
    """The body is not the source's payload; the message names the field and what to do."""


# -- payloads -------------------------------------------------------------------------------

LabelName = Annotated[str, Field(min_length=1, max_length=LABEL_NAME_MAX)]
Labels = Annotated[dict[LabelName, Annotated[str, Field(max_length=LABEL_VALUE_MAX)]], Field(max_length=MAX_LABELS)]
Annotations = Annotated[dict[LabelName, Annotated[str, Field(max_length=ANNOTATION_VALUE_MAX)]],
                        Field(max_length=MAX_LABELS)]
Url = Annotated[str, Field(max_length=URL_MAX)]
Status = Literal["firing", "resolved"]


class _Payload(BaseModel):
    # Fields we do not read are ignored: both senders add fields over time.
    model_config = ConfigDict(extra="ignore", frozen=True, str_max_length=GROUP_KEY_MAX)


class AlertmanagerAlert(_Payload):
    status: Status
    labels: Labels
    annotations: Annotations = Field(default_factory=dict)
    startsAt: str = Field("", max_length=64)
    endsAt: str = Field("", max_length=64)
    generatorURL: Url = ""
    #: Present since Alertmanager 0.19; computed from the labels when missing.
    fingerprint: str = Field("", max_length=FINGERPRINT_MAX)


class AlertmanagerPayload(_Payload):
    """Alertmanager's webhook body, version "4"."""

    version: Literal["4"]
    receiver: str = Field("", max_length=256)
    status: Status
    alerts: list[AlertmanagerAlert] = Field(max_length=MAX_ALERTS)
    groupKey: str = Field(min_length=1, max_length=GROUP_KEY_MAX)
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Annotations = Field(default_factory=dict)
    externalURL: Url = ""
    truncatedAlerts: int = Field(0, ge=0)


class GrafanaAlert(AlertmanagerAlert):
    silenceURL: Url = ""
    dashboardURL: Url = ""
    panelURL: Url = ""
    values: dict[LabelName, float | int | None] | None = Field(None, max_length=MAX_LABELS)
    valueString: str = Field("", max_length=ANNOTATION_VALUE_MAX)


class GrafanaPayload(_Payload):
    """Grafana alerting's webhook contact point body (version "1")."""

    receiver: str = Field("", max_length=256)
    status: Status
    orgId: int = 0
    alerts: list[GrafanaAlert] = Field(max_length=MAX_ALERTS)
    groupKey: str = Field(min_length=1, max_length=GROUP_KEY_MAX)
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Annotations = Field(default_factory=dict)
    externalURL: Url = ""
    version: str = Field("1", max_length=16)
    title: str = Field("", max_length=ANNOTATION_VALUE_MAX)
    state: str = Field("", max_length=64)
    message: str = Field("", max_length=ANNOTATION_VALUE_MAX)
    truncatedAlerts: int = Field(0, ge=0)


class GenericPayload(_Payload):
    """The generic form (README "Alerts"): one alert per request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=1, max_length=TITLE_MAX)
    status: Status = "firing"
    #: What makes two notifications the same alert; default: the title and labels.
    fingerprint: str = Field("", max_length=FINGERPRINT_MAX)
    #: Alerts with one group key share one suggestion or incident; default: the fingerprint.
    group_key: str = Field("", max_length=GROUP_KEY_MAX)
    labels: Labels = Field(default_factory=dict)
    annotations: Annotations = Field(default_factory=dict)
    url: Url = ""


def _fingerprint(title: str, labels: Mapping[str, str]) -> str:
    text = "\x00".join([title, *(f"{k}\x01{v}" for k, v in sorted(labels.items()))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _problem(error: PydanticValidationError, what: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the body"
    message = first["msg"]
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"this is not {what}: {where}: {message}{more}. Nothing was recorded."


def _alertmanager_alerts(payload: AlertmanagerPayload | GrafanaPayload) -> list[AlertIn]:
    found = []
    for alert in payload.alerts:
        labels = dict(alert.labels)
        annotations = dict(alert.annotations)
        title = labels.get("alertname") or annotations.get("summary") or "Alert"
        url = alert.generatorURL
        if isinstance(alert, GrafanaAlert):
            url = alert.panelURL or alert.dashboardURL or alert.generatorURL
            if alert.valueString and "value" not in annotations:
                annotations["value"] = alert.valueString
        found.append(AlertIn(fingerprint=alert.fingerprint or _fingerprint(title, labels), status=AlertStatus(alert.status),
                             title=title[:TITLE_MAX], group_key=payload.groupKey, labels=labels,
                             annotations=annotations, url=url))
    return found


def parse_notification(source: AlertSource, body: object) -> list[AlertIn]:
    """The alerts of one notification from ``source``; AlertPayloadError naming the problem."""
    if not isinstance(body, dict):
        raise AlertPayloadError("the body must be a JSON object. Nothing was recorded.")
    try:
        if source is AlertSource.ALERTMANAGER:
            return _alertmanager_alerts(AlertmanagerPayload.model_validate(body))
        if source is AlertSource.GRAFANA:
            return _alertmanager_alerts(GrafanaPayload.model_validate(body))
        generic = GenericPayload.model_validate(body)
    except PydanticValidationError as error:
        names = {AlertSource.ALERTMANAGER: "an Alertmanager webhook payload (version 4)",
                 AlertSource.GRAFANA: "a Grafana webhook contact point payload",
                 AlertSource.GENERIC: "a generic alert (README \"Alerts\")"}
        raise AlertPayloadError(_problem(error, names[source])) from None
    fingerprint = generic.fingerprint or _fingerprint(generic.title, generic.labels)
    return [AlertIn(fingerprint=fingerprint, status=AlertStatus(generic.status), title=generic.title,
                    group_key=generic.group_key or fingerprint, labels=dict(generic.labels),
                    annotations=dict(generic.annotations), url=generic.url)]


# -- secrets --------------------------------------------------------------------------------

SIGNATURE_HEADERS = ("X-Command-Center-Signature", "X-Grafana-Alerting-Signature")


def body_signature(secret: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` with ``secret`` (what a signed request carries)."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def authenticated(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the request carries ``secret`` as a bearer token or signs ``body`` with it."""
    ok = False
    authorization = headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token:
        ok |= hmac.compare_digest(token.strip().encode(), secret.encode())
    expected = body_signature(secret, body)
    for name in SIGNATURE_HEADERS:
        given = headers.get(name, "").strip().lower()
        if given:
            given = given.removeprefix("sha256=")
            ok |= hmac.compare_digest(given.encode(), expected.encode())
    return ok


class AlertSink(Protocol):
    """Where authenticated, parsed notifications go (services/alerts.py ``AlertService``)."""

    async def ingest(self, source: str, alerts: list[AlertIn]) -> dict[str, int]: ...


# -- routing rules --------------------------------------------------------------------------

MAX_RULES_CHARS = 256 * 1024
MAX_RULES = 200
MAX_MATCHERS = 32
_MAX_NODES = 20_000
_MAX_DEPTH = 8
_MAX_PROBLEMS = 20
_REGEX_MAX = 500
_TAG = "tag:yaml.org,2002:"
_TEXT_TAGS = {_TAG + name for name in ("str", "int", "float", "bool")}
_NULL_TAG = _TAG + "null"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_USERNAME = re.compile(r"^[a-z0-9._-]{1,64}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDER_NAME = re.compile(r"^(title|source|fingerprint|(labels|annotations)\.[A-Za-z0-9_.-]{1,128}|[A-Za-z_][A-Za-z0-9_]{0,127})$")
_DURATION = re.compile(r"^([0-9]{1,6})\s*(s|m|h)$")
_DURATION_UNITS = {"s": 1000, "m": 60_000, "h": 3_600_000}
_RULE_FIELDS = ("name", "match", "team", "channel", "playbook", "mode", "commander", "incident_name")
_FLOOD_FIELDS = ("window", "max_posts", "incident_posts_every", "batch_delay")


@dataclass(frozen=True)
class Matcher:
    """One condition on an alert: a label or annotation equals a value, matches a regex (whole
    value, as Alertmanager's matchers do), or exists (``exists: false``: is absent)."""

    scope: Literal["labels", "annotations"]
    key: str
    op: Literal["equals", "regex", "exists"]
    value: str = ""
    exists: bool = True
    pattern: re.Pattern[str] | None = field(default=None, compare=False)

    def holds(self, alert: AlertIn) -> bool:
        values = alert.labels if self.scope == "labels" else alert.annotations
        present = self.key in values
        if self.op == "exists":
            return present == self.exists
        if not present:
            return False
        if self.op == "equals":
            return values[self.key] == self.value
        assert self.pattern is not None
        return self.pattern.fullmatch(values[self.key]) is not None


@dataclass(frozen=True)
class Rule:
    """Where the alerts it matches go (names as written; services/alerts.py resolves them)."""

    name: str
    line: int
    matchers: tuple[Matcher, ...]
    team: str
    channel: str
    playbook: str
    mode: AlertMode
    commander: str = ""
    incident_name: str = "{title}"

    def matches(self, alert: AlertIn) -> bool:
        return all(matcher.holds(alert) for matcher in self.matchers)

    def name_for(self, alert: AlertIn, source: str) -> str:
        """The incident name the rule's template gives this alert (2–64 characters)."""
        def value(match: re.Match[str]) -> str:
            key = match.group(1)
            if key == "title":
                return alert.title
            if key == "source":
                return source
            if key == "fingerprint":
                return alert.fingerprint
            if key.startswith("labels."):
                return alert.labels.get(key[len("labels."):], "")
            if key.startswith("annotations."):
                return alert.annotations.get(key[len("annotations."):], "")
            return alert.labels.get(key, "")

        name = " ".join(_PLACEHOLDER.sub(value, self.incident_name).split())
        if len(name) > limits.INCIDENT_NAME_MAX:
            name = name[: limits.INCIDENT_NAME_MAX - 1].rstrip() + "…"
        if len(name) < limits.INCIDENT_NAME_MIN:
            name = f"Alert {alert.fingerprint}"[: limits.INCIDENT_NAME_MAX]
        return name


@dataclass(frozen=True)
class FloodLimits:
    """How much an alert storm may post (per triage channel, per window)."""

    #: The flood window.
    window_ms: int = 10 * 60_000
    #: New suggestion posts or declared incidents per channel per window; the rest are counted in
    #: one summary post per window, edited as more arrive.
    max_posts: int = 5
    #: At most one post about repeats in an incident this often (resolutions are never held back).
    incident_posts_every_ms: int = 5 * 60_000
    #: Notifications arriving within this of each other are posted about together.
    batch_delay_ms: int = 2000


@dataclass(frozen=True)
class RoutingRules:
    rules: tuple[Rule, ...] = ()
    flood: FloodLimits = FloodLimits()

    def route(self, alert: AlertIn) -> Rule | None:
        """The first rule that matches the alert (None: it is recorded, nothing is posted)."""
        return next((rule for rule in self.rules if rule.matches(alert)), None)


#: One problem of the rules file (the shape every YAML file's problems have).
RulesProblem = Problem


class RulesFormatError(ValidationError):
    """The routing rules file is not valid; ``problems`` lists every problem found, by line."""

    def __init__(self, problems: Iterable[RulesProblem], source: str = "the alert routing rules") -> None:
        self.problems = sorted(problems, key=lambda problem: problem.line)
        count = len(self.problems)
        head = f"{source} ha{'s a problem' if count == 1 else f've {count} problems'}"
        lines = "\n".join(f"- {problem}" for problem in self.problems)
        super().__init__(f"{head[0].upper()}{head[1:]}:\n{lines}\nThe format is described in README \"Alerts\".")


_Stop = TooManyProblems


class _Problems(Problems):
    """The problems of the rules file, raised as RulesFormatError."""

    def __init__(self) -> None:
        super().__init__(RulesFormatError, _MAX_PROBLEMS)


_BOUNDS = Bounds(max_nodes=_MAX_NODES, max_depth=_MAX_DEPTH, too_many=f"the file has more than {_MAX_NODES} values",
                 too_deep="the YAML is nested too deeply for routing rules")


def _compose(text: str) -> Node | None:
    if len(text) > MAX_RULES_CHARS:
        raise RulesFormatError([RulesProblem(0, "", f"the file is {len(text):,} characters long; at most "
                                                    f"{MAX_RULES_CHARS:,} are read.")])
    return compose(text, _BOUNDS, RulesFormatError)


def _fields(node: Node, where: str, allowed: tuple[str, ...], problems: _Problems) -> dict[str, Node] | None:
    if not isinstance(node, MappingNode):
        problems.add(node, where, f"expected fields ({', '.join(allowed)}), written as `name: value` lines.")
        return None
    found: dict[str, Node] = {}
    for key, value in node.value:
        name = key.value if isinstance(key, ScalarNode) and key.tag != _NULL_TAG else None
        if not isinstance(name, str) or name not in allowed:
            problems.add(key, f"{where}, {name}" if where else str(name),
                         f"unknown field; the fields allowed here are: {', '.join(allowed)}.")
            continue
        if name in found:
            problems.add(key, f"{where}, {name}" if where else name, "this field is written twice; keep one.")
            continue
        found[name] = value
    return found


def _text(node: Node, where: str, problems: _Problems, *, max_length: int = 200) -> str | None:
    if not isinstance(node, ScalarNode) or node.tag == _NULL_TAG or node.tag not in _TEXT_TAGS:
        problems.add(node, where, "expected text.")
        return None
    value = str(node.value)
    if len(value) > max_length:
        problems.add(node, where, f"at most {max_length} characters; this is {len(value)}.")
        return None
    return value


def _duration(node: Node, where: str, problems: _Problems) -> int | None:
    value = _text(node, where, problems, max_length=20)
    if value is None:
        return None
    match = _DURATION.match(value.strip().lower())
    if not match:
        problems.add(node, where, f'"{value}" is not a duration; write it like 30s, 10m or 1h.')
        return None
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _count(node: Node, where: str, problems: _Problems, *, most: int) -> int | None:
    value = _text(node, where, problems, max_length=10)
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= most:
        problems.add(node, where, f"expected a whole number from 1 to {most}.")
        return None
    return int(value)


def _matchers(node: Node, where: str, problems: _Problems) -> tuple[Matcher, ...]:
    scopes = _fields(node, where, ("labels", "annotations"), problems)
    if scopes is None:
        return ()
    found: list[Matcher] = []
    for scope in ("labels", "annotations"):
        scope_node = scopes.get(scope)
        if scope_node is None:
            continue
        here = f"{where}, {scope}"
        if not isinstance(scope_node, MappingNode):
            problems.add(scope_node, here, "expected `name: value` lines (a value, {regex: ...} or {exists: true}).")
            continue
        if len(scope_node.value) > MAX_MATCHERS:
            problems.add(scope_node, here, f"at most {MAX_MATCHERS} conditions.")
            continue
        for key_node, value_node in scope_node.value:
            key = _text(key_node, here, problems, max_length=LABEL_NAME_MAX)
            if not key:
                continue
            at = f"{here}, {key}"
            kind: Literal["labels", "annotations"] = "labels" if scope == "labels" else "annotations"
            if isinstance(value_node, ScalarNode):
                value = _text(value_node, at, problems, max_length=LABEL_VALUE_MAX)
                if value is not None:
                    found.append(Matcher(kind, key, "equals", value=value))
                continue
            options = _fields(value_node, at, ("equals", "regex", "exists"), problems)
            if options is None:
                continue
            if len(options) != 1:
                problems.add(value_node, at, "write exactly one of equals, regex or exists.")
                continue
            op, option = next(iter(options.items()))
            if op == "exists":
                if not (isinstance(option, ScalarNode) and option.tag == _TAG + "bool"):
                    problems.add(option, at, "exists is true or false.")
                    continue
                found.append(Matcher(kind, key, "exists", exists=option.value.lower() in ("true", "yes", "on")))
                continue
            value = _text(option, at, problems, max_length=_REGEX_MAX if op == "regex" else LABEL_VALUE_MAX)
            if value is None:
                continue
            if op == "equals":
                found.append(Matcher(kind, key, "equals", value=value))
                continue
            try:
                pattern = re.compile(value)
            except re.error as error:
                problems.add(option, at, f"not a valid regular expression: {error}.")
                continue
            found.append(Matcher(kind, key, "regex", value=value, pattern=pattern))
    return tuple(found)


def _rule(node: Node, index: int, problems: _Problems, names: set[str]) -> Rule | None:
    where = f"rule {index}"
    fields = _fields(node, where, _RULE_FIELDS, problems)
    if fields is None:
        return None
    missing = [name for name in ("name", "team", "channel", "playbook", "mode") if name not in fields]
    values: dict[str, str] = {}
    for name in ("name", "team", "channel", "playbook", "mode", "commander", "incident_name"):
        if name in fields:
            text = _text(fields[name], f"{where}, {name}", problems,
                         max_length=limits.INCIDENT_NAME_MAX * 4 if name == "incident_name" else 200)
            if text is not None:
                values[name] = text.strip()
    rule_name = values.get("name", "")
    if rule_name:
        where = f"rule {rule_name!r}"
        if not _NAME.match(rule_name):
            problems.add(fields["name"], where, "a rule name is lowercase letters, digits, '.', '_' or '-' (1–64).")
        elif rule_name in names:
            problems.add(fields["name"], where, "another rule has this name; names must differ.")
        names.add(rule_name)
    for name in missing:
        problems.add(node, where, f"the `{name}` field is missing.")
    mode_text = values.get("mode", "")
    mode: AlertMode | None = None
    if "mode" in values:
        try:
            mode = AlertMode(mode_text.lower())
        except ValueError:
            problems.add(fields["mode"], f"{where}, mode", "the mode is `suggest` or `declare`.")
    team = values.get("team", "").lower()
    if "team" in values and not _NAME.match(team):
        problems.add(fields["team"], f"{where}, team", f'"{values["team"][:40]}" is not a team name (its URL name).')
    channel = values.get("channel", "").lstrip("~").lower()
    if "channel" in values and not _NAME.match(channel):
        problems.add(fields["channel"], f"{where}, channel", f'"{values["channel"][:40]}" is not a channel name.')
    commander = values.get("commander", "").lstrip("@").lower()
    if "commander" in values and not _USERNAME.match(commander):
        problems.add(fields["commander"], f"{where}, commander", f'"{values["commander"][:40]}" is not a username.')
    if mode is AlertMode.DECLARE and "commander" not in fields:
        problems.add(node, where, "a `declare` rule names the `commander` of the incidents it starts.")
    if mode is AlertMode.SUGGEST and "commander" in fields:
        problems.add(fields["commander"], f"{where}, commander",
                     "only a `declare` rule has a commander: whoever clicks Start incident commands.")
    template = values.get("incident_name", "{title}")
    for placeholder in _PLACEHOLDER.findall(template):
        if not _PLACEHOLDER_NAME.match(placeholder):
            problems.add(fields.get("incident_name"), f"{where}, incident_name",
                         f"{{{placeholder[:40]}}} is not a placeholder; use {{title}}, {{source}}, {{fingerprint}}, "
                         "{labels.NAME}, {annotations.NAME} or {NAME} (a label).")
    matchers = _matchers(fields["match"], f"{where}, match", problems) if "match" in fields else ()
    if missing or mode is None or not rule_name:
        return None
    return Rule(name=rule_name, line=node.start_mark.line + 1 if node.start_mark else 0, matchers=matchers, team=team,
                channel=channel, playbook=values.get("playbook", ""), mode=mode, commander=commander,
                incident_name=template)


def _flood(node: Node, problems: _Problems) -> FloodLimits:
    fields = _fields(node, "flood", _FLOOD_FIELDS, problems)
    if fields is None:
        return FloodLimits()
    values: dict[str, int] = {}
    for name, value_node in fields.items():
        if name == "max_posts":
            number = _count(value_node, "flood, max_posts", problems, most=100)
        else:
            number = _duration(value_node, f"flood, {name}", problems)
        if number is not None:
            values[name] = number
    defaults = FloodLimits()
    window = values.get("window", defaults.window_ms)
    if "window" in values and not 60_000 <= window <= 24 * 3_600_000:
        problems.add(fields["window"], "flood, window", "the window is from 1m to 24h.")
    delay = values.get("batch_delay", defaults.batch_delay_ms)
    if "batch_delay" in values and delay > 60_000:
        problems.add(fields["batch_delay"], "flood, batch_delay", "the batch delay is at most 60s.")
    return FloodLimits(window_ms=window, max_posts=values.get("max_posts", defaults.max_posts),
                       incident_posts_every_ms=values.get("incident_posts_every", defaults.incident_posts_every_ms),
                       batch_delay_ms=delay)


def parse_rules(text: str) -> RoutingRules:
    """The routing rules in ``text``; RulesFormatError listing every problem by line."""
    root = _compose(text)
    problems = _Problems()
    rules: list[Rule] = []
    flood = FloodLimits()
    try:
        if root is None:
            problems.add(None, "", "the file is empty; it needs a `rules:` list.")
        else:
            top = _fields(root, "", ("rules", "flood"), problems)
            if top is not None:
                if "flood" in top:
                    flood = _flood(top["flood"], problems)
                rules_node = top.get("rules")
                if rules_node is None:
                    problems.add(root, "rules", "this field is missing.")
                elif not isinstance(rules_node, SequenceNode):
                    problems.add(rules_node, "rules", "expected a list of rules, each starting with `- name:`.")
                elif len(rules_node.value) > MAX_RULES:
                    problems.add(rules_node, "rules", f"at most {MAX_RULES} rules; there are {len(rules_node.value)}.")
                else:
                    names: set[str] = set()
                    for index, item in enumerate(rules_node.value, start=1):
                        rule = _rule(item, index, problems, names)
                        if rule is not None:
                            rules.append(rule)
    except _Stop:
        pass
    if problems.items:
        raise RulesFormatError(problems.items)
    return RoutingRules(tuple(rules), flood)


def read_rules(path: Path) -> RoutingRules:
    """The rules file at ``path`` (start-up); RulesFormatError naming the file and every problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "it is not UTF-8 text"
        raise RulesFormatError([RulesProblem(0, "", f"cannot read {path}: {reason}.")], str(path)) from None
    try:
        return parse_rules(text)
    except RulesFormatError as error:
        raise RulesFormatError(error.problems, str(path)) from None


__all__ = ["MAX_ALERTS", "SIGNATURE_HEADERS", "AlertPayloadError", "AlertSink", "AlertSource", "AlertmanagerPayload",
           "FloodLimits", "GenericPayload", "GrafanaPayload", "Matcher", "RoutingRules", "Rule", "RulesFormatError",
           "authenticated", "body_signature", "parse_notification", "parse_rules", "read_rules"]
