"""The backstage's playbook pages (issue 19): the list, one playbook's page with its editor, YAML
download and upload.

Nothing here decides who may do what: every read and write goes through services/playbooks.py,
the chat's own service (``visible``, ``get``, ``create``, ``import_text``, ``replace``), so the
pages answer exactly as the ``playbook …`` commands do — a playbook someone may not use is "not
found" (404) in both, and whoever may see a playbook may edit it (its members and system admins).

The editor works without JavaScript: one form with numbered inputs; "add stage", "move up",
"remove", … are submit buttons that send the whole draft back and get it re-rendered changed
(nothing is saved until Save). Save turns the draft into the playbook YAML format and reads it with
the file import's own parser (gateway/playbook_yaml.py over gateway/yaml_reading.py), so a form
and a file are checked by the same rules; each problem is shown at the input it is about. The
draft carries the version it was opened at, and the service refuses a save over a newer one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import yaml
from aiohttp import web
from multidict import MultiDictProxy

from backstage.app import Backstage, see_other, viewer
from domain import limits
from domain import webhooks as webhook_rules
from domain.durations import format_duration
from domain.errors import Conflict, DomainError, NotFound, ValidationError
from domain.models import FieldKind, Playbook, ReminderDelivery
from domain.templates import TEMPLATES, find_template
from gateway import playbook_yaml as pyaml
from gateway.cards import format_time
from gateway.ids import BACKSTAGE_PREFIX
from gateway.messages import with_trigger
from gateway.playbook_yaml import PlaybookFormatError, PlaybookSpec
from services.history import HistoryService, ListFilters
from services.playbooks import MAX_FILE_BYTES, STALE_EDIT, PlaybookService, file_name_for

#: What the upload form takes, like a file sent by direct message.
UPLOAD_LIMIT = pyaml.SizeLimit(MAX_FILE_BYTES, "A playbook file is much smaller; remove what it does not need.")
#: Most characters one input of the form is read at (the parser applies the real, smaller limits).
_INPUT_MAX = 64 * 1024
_NAMES = re.compile(r"[\s,]+")
_OP = re.compile(r"^(add-step|remove-stage|up-stage|down-stage|remove-step|up-step|down-step|remove-field)"
                 r"-(\d{1,3})(?:-(\d{1,3}))?$")
_WHERE_STEP = re.compile(r"^stage (\d+), step (\d+)(?:, (title|description|command|assignee))?")
_WHERE_STAGE = re.compile(r"^stage (\d+)")
_WHERE_FIELD = re.compile(r"^field (\d+)")
_REFUSED_STEP = re.compile(r"^Stage (\d+), step (\d+): ")
#: The error of a whole-list setting, by the field the services name.
_SETTING_FIELDS = {"title": "title", "description": "description", "members": "members", "invite": "invite",
                   "followers": "followers", "commander": "commander", "broadcast_channels": "broadcast",
                   "broadcast": "broadcast", "update_interval": "interval", "interval": "interval",
                   "update_template": "update_template", "template": "update_template", "reminders": "reminders",
                   "webhooks": "webhooks", "fields": "fields", "public": "public", "stages": "stages",
                   "retro": "retro_reminder"}


# -- the draft: the form's content --------------------------------------------------------------

@dataclass
class StepForm:
    title: str = ""
    description: str = ""
    command: str = ""
    assignee: str = ""


@dataclass
class StageForm:
    title: str = ""
    steps: list[StepForm] = field(default_factory=list)


@dataclass
class FieldForm:
    id: str = ""
    name: str = ""
    kind: str = FieldKind.TEXT.value
    options: str = ""
    description: str = ""


@dataclass
class Draft:
    """Everything the editor shows, as typed (text, not yet checked)."""

    version: int
    title: str = ""
    description: str = ""
    public: bool = True
    members: str = ""
    stages: list[StageForm] = field(default_factory=list)
    broadcast: str = ""
    interval: str = ""
    update_template: str = ""
    reminders: str = ReminderDelivery.BOTH.value
    invite: str = ""
    commander: str = ""
    followers: str = ""
    webhooks: str = ""
    fields: list[FieldForm] = field(default_factory=list)
    retro_template: str = ""
    retro_reminder: str = ""

    @classmethod
    def of(cls, spec: PlaybookSpec, version: int) -> Draft:
        """The form of a stored playbook (as its YAML export describes it)."""
        return cls(
            version=version, title=spec.title, description=spec.description, public=spec.public,
            members=" ".join(f"@{ref.username}" for ref in spec.members),
            stages=[StageForm(stage.title, [StepForm(step.title, step.description, step.command,
                                                     f"@{step.assignee.username}" if step.assignee else "")
                                            for step in stage.steps]) for stage in spec.stages],
            broadcast=" ".join(f"~{ref.name}" for ref in spec.broadcast_channels),
            interval=format_duration(spec.update_interval_ms) if spec.update_interval_ms is not None else "",
            update_template=spec.update_template, reminders=spec.reminders.value,
            invite=" ".join(f"@{ref.username}" for ref in spec.invite),
            commander=f"@{spec.commander.username}" if spec.commander else "",
            followers=" ".join(f"@{ref.username}" for ref in spec.followers),
            webhooks="\n".join(" ".join([hook.url, *(webhook_rules.WORD_OF.get(kind, kind) for kind in hook.events)])
                               for hook in spec.webhooks),
            fields=[FieldForm(f.id, f.name, f.kind.value, "\n".join(f.options), f.description) for f in spec.fields],
            retro_template=spec.retro_template,
            retro_reminder=format_duration(spec.retro_reminder_ms) if spec.retro_reminder_ms is not None else "")

    @classmethod
    def read(cls, form: Mapping[str, Any]) -> Draft:
        """The draft a submitted editor form carries (numbered inputs; counts bounded by the limits)."""
        def text(name: str) -> str:
            value = form.get(name, "")
            return value[:_INPUT_MAX] if isinstance(value, str) else ""

        def count(name: str, most: int) -> int:
            value = text(name)
            return min(int(value), most) if value.isdigit() else 0

        stages = []
        for s in range(1, count("stages", limits.STAGES_MAX + 1) + 1):
            steps = [StepForm(text(f"step-{s}-{n}-title"), text(f"step-{s}-{n}-description"),
                              text(f"step-{s}-{n}-command"), text(f"step-{s}-{n}-assignee"))
                     for n in range(1, count(f"stage-{s}-steps", limits.STEPS_PER_STAGE_MAX + 1) + 1)]
            stages.append(StageForm(text(f"stage-{s}-title"), steps))
        fields = [FieldForm(text(f"field-{n}-id"), text(f"field-{n}-name"), text(f"field-{n}-kind"),
                            text(f"field-{n}-options"), text(f"field-{n}-description"))
                  for n in range(1, count("fields", limits.FIELDS_MAX + 1) + 1)]
        version = text("version")
        return cls(
            version=int(version) if version.isdigit() else 0, title=text("title"), description=text("description"),
            public=text("public") != "private", members=text("members"), stages=stages, broadcast=text("broadcast"),
            interval=text("interval"), update_template=text("update_template"), reminders=text("reminders"),
            invite=text("invite"), commander=text("commander"), followers=text("followers"),
            webhooks=text("webhooks"), fields=fields, retro_template=text("retro_template"),
            retro_reminder=text("retro_reminder"))

    def yaml_text(self) -> str:
        """The draft in the playbook YAML format, for the parser to check as it checks a file."""
        def names(value: str, mark: str) -> list[str]:
            return [word.lstrip(mark) for word in _NAMES.split(value) if word.strip(mark)]

        data: dict[str, object] = {"title": self.title, "description": self.description, "public": self.public,
                                   "members": names(self.members, "@")}
        data["stages"] = [{"title": stage.title, "steps": [
            {"title": step.title, "description": step.description, "command": step.command,
             **({"assignee": step.assignee.strip().lstrip("@")} if step.assignee.strip() else {})}
            for step in stage.steps]} for stage in self.stages]
        data["broadcast_channels"] = names(self.broadcast, "~")
        if self.interval.strip() and self.interval.strip().lower() != "none":
            data["update_interval"] = self.interval.strip()
        data["update_template"] = self.update_template
        data["reminders"] = self.reminders
        data["invite"] = names(self.invite, "@")
        commander = names(self.commander, "@")
        if commander:
            data["commander"] = commander[0] if len(commander) == 1 else commander
        data["followers"] = names(self.followers, "@")
        hooks = []
        for line in self.webhooks.splitlines():
            url, *events = line.split() or [""]
            if url:
                hooks.append({"url": url, **({"events": [e for word in events for e in word.split(",") if e]}
                                             if events else {})})
        data["webhooks"] = hooks
        data["fields"] = [{"name": f.name, **({"id": f.id} if f.id else {}), "type": f.kind,
                           "options": [o.strip() for o in f.options.splitlines() if o.strip()],
                           "description": f.description} for f in self.fields]
        retro: dict[str, str] = {"template": self.retro_template}
        if self.retro_reminder.strip() and self.retro_reminder.strip().lower() != "none":
            retro["reminder"] = self.retro_reminder.strip()
        data["retrospective"] = retro
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100_000)

    def changed(self, op: str) -> Draft:
        """The draft after one of the editor's buttons (not Save): add, remove, move; unknown ones: as is."""
        stages = [replace(stage, steps=list(stage.steps)) for stage in self.stages]
        fields = list(self.fields)
        if op == "add-stage" and len(stages) < limits.STAGES_MAX:
            stages.append(StageForm(f"Stage {len(stages) + 1}"))
        elif op == "add-field" and len(fields) < limits.FIELDS_MAX:
            fields.append(FieldForm())
        matched = _OP.match(op)
        if matched:
            verb, first = matched.group(1), int(matched.group(2)) - 1
            second = int(matched.group(3)) - 1 if matched.group(3) else -1
            if verb == "remove-field":
                if 0 <= first < len(fields):
                    del fields[first]
            elif 0 <= first < len(stages):
                steps = stages[first].steps
                if verb == "add-step" and len(steps) < limits.STEPS_PER_STAGE_MAX:
                    steps.append(StepForm())
                elif verb == "remove-stage":
                    del stages[first]
                elif verb in ("up-stage", "down-stage"):
                    _swap(stages, first, first - 1 if verb == "up-stage" else first + 1)
                elif verb == "remove-step" and 0 <= second < len(steps):
                    del steps[second]
                elif verb in ("up-step", "down-step") and 0 <= second < len(steps):
                    _swap(steps, second, second - 1 if verb == "up-step" else second + 1)
        return replace(self, stages=stages, fields=fields)


def _swap(items: list, i: int, j: int) -> None:
    if 0 <= i < len(items) and 0 <= j < len(items):
        items[i], items[j] = items[j], items[i]


def input_of(where: str, field_name: str | None = None) -> str:
    """The form input a problem is about: ``stage 2, step 1, command`` → ``step-2-1-command``;
    ``members, entry 3`` → ``members``; "" for the form as a whole."""
    step = _WHERE_STEP.match(where)
    if step:
        return f"step-{step.group(1)}-{step.group(2)}-{step.group(3) or 'title'}"
    stage = _WHERE_STAGE.match(where)
    if stage:
        return f"stage-{stage.group(1)}-title"
    one_field = _WHERE_FIELD.match(where)
    if one_field:
        return f"field-{one_field.group(1)}"
    head = where.split(",", 1)[0].strip()
    if head == "retrospective":
        return "retro_reminder" if "reminder" in where else "retro_template"
    return _SETTING_FIELDS.get(head, "") or _SETTING_FIELDS.get(field_name or "", "")


def form_errors(error: DomainError) -> dict[str, list[str]]:
    """Each problem of a refused save at its input ("" for the form as a whole)."""
    found: dict[str, list[str]] = {}
    if isinstance(error, PlaybookFormatError):
        for problem in error.problems:
            found.setdefault(input_of(problem.where), []).append(problem.message)
        return found
    message = str(error)
    refused = _REFUSED_STEP.match(message)
    if refused:
        rest = message[refused.end():]
        part = "command" if "command" in rest else "title"
        found[f"step-{refused.group(1)}-{refused.group(2)}-{part}"] = [rest]
        return found
    if isinstance(error, ValidationError) or (isinstance(error, Conflict) and error.field):
        found[input_of(error.field or "", error.field)] = [message]
    else:
        found[""] = [message]
    return found


# -- the pages -----------------------------------------------------------------------------------

def setup(backstage: Backstage, playbooks: PlaybookService, history: HistoryService) -> None:
    """The playbook pages under /backstage/playbooks."""
    pages = PlaybookPages(backstage, playbooks, history)
    backstage.page("GET", "/playbooks", pages.list_page)
    backstage.page("POST", "/playbooks/new", pages.create)
    backstage.page("POST", "/playbooks/import", pages.import_file)
    backstage.page("GET", "/playbooks/{playbook_id:[A-Za-z0-9]+}.yaml", pages.download)
    backstage.page("GET", "/playbooks/{playbook_id:[A-Za-z0-9]+}", pages.show)
    backstage.page("POST", "/playbooks/{playbook_id:[A-Za-z0-9]+}", pages.edit)
    backstage.page("POST", "/playbooks/{playbook_id:[A-Za-z0-9]+}/upload", pages.upload)
    backstage.nav.append(("Playbooks", "/playbooks"))


@dataclass
class PlaybookPages:
    backstage: Backstage
    playbooks: PlaybookService
    history: HistoryService

    def _say(self, error: DomainError | str) -> str:
        """A message as the page shows it: the command written with this bot's trigger."""
        return with_trigger(str(error), self.backstage.ctx.settings.command_trigger)

    def _problems(self, error: DomainError) -> list[str]:
        """The refusal of a file, a line per problem (with its line number)."""
        if isinstance(error, PlaybookFormatError):
            return [self._say(str(problem)) for problem in error.problems]
        return [self._say(error)]

    def _errors(self, error: DomainError) -> dict[str, list[str]]:
        return {name: [self._say(m) for m in messages] for name, messages in form_errors(error).items()}

    async def _teams(self, request: web.Request) -> tuple[list[str], str]:
        """The teams the viewer may use (shared with the bot) and the one asked for (default: the first).
        A team not among them is "nothing here" (404), like any page of another team."""
        teams = await self.history.teams_of(viewer(request).user_id, "")
        asked = request.query.get("team", "")
        if asked and asked not in teams:
            raise NotFound("not your team")
        return teams, asked or (teams[0] if teams else "")

    async def _team_names(self, teams: Sequence[str]) -> dict[str, str]:
        known = {team.id: team.display_name or team.name for team in await self.backstage.ctx.client.my_teams()}
        return {team_id: known.get(team_id, team_id) for team_id in teams}

    async def _playbook(self, request: web.Request) -> tuple[str, Playbook]:
        """(team id, playbook) of the page, if the viewer may use it; else NotFound (404)."""
        user_id = viewer(request).user_id
        teams, asked = await self._teams(request)
        playbook_id = request.match_info["playbook_id"]
        for team_id in [asked] if request.query.get("team") else teams:
            try:
                return team_id, await self.playbooks.get(team_id, user_id, playbook_id)
            except NotFound:
                continue
        raise NotFound("no such playbook")

    # The list ----------------------------------------------------------------------------------

    async def list_page(self, request: web.Request, *, team: str = "", errors: Sequence[str] = (),
                        status: int = 200, pasted: str = "", new_title: str = "") -> web.Response:
        who = viewer(request)
        teams, team_id = await self._teams(request)
        team_id = team or team_id
        rows = []
        if team_id:
            for playbook in await self.playbooks.visible(team_id, who.user_id):
                last = await self.history.list_page(who.user_id, team_id, ListFilters(playbook_id=playbook.id),
                                                    per_page=1)
                names = await self.playbooks.usernames(playbook.member_ids)
                rows.append({"playbook": playbook, "members": [names[m] for m in playbook.member_ids if m in names],
                             "last_used": format_time(last.items[0].created_at) if last.items else ""})
        return self.backstage.render(
            request, "playbook_list.html", status=status, title="Playbooks", rows=rows, team_id=team_id,
            teams=await self._team_names(teams), templates=TEMPLATES, errors=list(errors), pasted=pasted,
            new_title=new_title)

    async def create(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        team_id = _text(form, "team")
        if team_id not in await self.history.teams_of(viewer(request).user_id, ""):
            raise NotFound("not your team")
        template = find_template(_text(form, "template") or "blank")
        title = _text(form, "title")
        if template is None:
            raise ValidationError("Choose one of the templates listed.", field="template")
        try:
            created = await self.playbooks.create(team_id, viewer(request).user_id, title=title, template=template)
        except (ValidationError, Conflict) as error:
            return await self.list_page(request, team=team_id, errors=[self._say(error)], status=400,
                                        new_title=title)
        return see_other(f"{BACKSTAGE_PREFIX}/playbooks/{created.id}?team={team_id}&created=1")

    async def import_file(self, request: web.Request) -> web.StreamResponse:
        """A YAML file or text onto the team: a new playbook, or the one with its title (as the chat's import)."""
        form = await request.post()
        team_id = _text(form, "team")
        if team_id not in await self.history.teams_of(viewer(request).user_id, ""):
            raise NotFound("not your team")
        text = _yaml_of(form)
        try:
            result = await self.playbooks.import_text(team_id, viewer(request).user_id, text, UPLOAD_LIMIT)
        except (ValidationError, Conflict) as error:
            return await self.list_page(request, team=team_id, errors=self._problems(error), status=400,
                                        pasted=text if len(text) <= _INPUT_MAX else "")
        return await self._page(request, team_id, result.playbook,
                                notice="Imported as a new playbook." if result.created else
                                "Imported: the playbook with this title was replaced.",
                                secrets=result.new_webhooks)

    # One playbook ---------------------------------------------------------------------------------

    async def show(self, request: web.Request) -> web.Response:
        team_id, playbook = await self._playbook(request)
        notice = "Created. Edit it below; nothing is saved until you press Save." if request.query.get(
            "created") else ("Saved." if request.query.get("saved") else "")
        return await self._page(request, team_id, playbook, notice=notice)

    async def _page(self, request: web.Request, team_id: str, playbook: Playbook, *, draft: Draft | None = None,
                    errors: Mapping[str, Sequence[str]] | None = None, notice: str = "", status: int = 200,
                    secrets: Sequence[tuple[str, str]] = (), upload_errors: Sequence[str] = ()) -> web.Response:
        spec = await self.playbooks.spec(playbook)
        names = await self.playbooks.usernames(self.playbooks.people_ids(playbook))
        return self.backstage.render(
            request, "playbook_page.html", status=status, title=playbook.title, playbook=playbook, spec=spec,
            team_id=team_id, draft=draft or Draft.of(spec, playbook.version), errors=errors or {}, notice=notice,
            secrets=list(secrets), upload_errors=list(upload_errors),
            members=[names[m] for m in playbook.member_ids if m in names],
            kinds=[k.value for k in FieldKind], deliveries=[d.value for d in ReminderDelivery],
            limits=limits, yaml_name=file_name_for(playbook.title))

    async def edit(self, request: web.Request) -> web.Response:
        """A press of one of the editor's buttons: Save, or a change of the draft shown again."""
        team_id, playbook = await self._playbook(request)
        form = await request.post()
        draft = Draft.read(form)
        op = _text(form, "op") or "save"
        if op != "save":
            return await self._page(request, team_id, playbook, draft=draft.changed(op),
                                    notice="Not saved yet: press Save to keep your changes.")
        try:
            spec = await pyaml.read_playbook(draft.yaml_text())
            result = await self.playbooks.replace(team_id, viewer(request).user_id, playbook.id, spec,
                                                  expected_version=draft.version)
        except Conflict as error:
            if error.field:
                return await self._page(request, team_id, playbook, draft=draft, errors=self._errors(error),
                                        status=400)
            return await self._page(request, team_id, await self.playbooks.get(team_id, viewer(request).user_id,
                                                                               playbook.id),
                                    draft=draft, status=409, errors={"": [STALE_EDIT]})
        except ValidationError as error:
            return await self._page(request, team_id, playbook, draft=draft, errors=self._errors(error), status=400)
        if result.new_webhooks:  # a signing secret is shown once, now
            return await self._page(request, team_id, result.playbook, notice="Saved.", secrets=result.new_webhooks)
        return see_other(f"{BACKSTAGE_PREFIX}/playbooks/{playbook.id}?team={team_id}&saved=1")

    async def download(self, request: web.Request) -> web.StreamResponse:
        _, playbook = await self._playbook(request)
        name, text = await self.playbooks.export_text(playbook)
        return web.Response(text=text, content_type="application/x-yaml", charset="utf-8",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def upload(self, request: web.Request) -> web.Response:
        """A YAML file or text saved over this playbook (title included), with the version check."""
        team_id, playbook = await self._playbook(request)
        form = await request.post()
        version = _text(form, "version")
        try:
            spec = await pyaml.read_playbook(_yaml_of(form), UPLOAD_LIMIT)
            result = await self.playbooks.replace(team_id, viewer(request).user_id, playbook.id, spec,
                                                  expected_version=int(version) if version.isdigit() else 0)
        except (ValidationError, Conflict) as error:
            current = await self.playbooks.get(team_id, viewer(request).user_id, playbook.id)
            stale = isinstance(error, Conflict) and not error.field
            return await self._page(request, team_id, current, status=409 if stale else 400,
                                    upload_errors=[STALE_EDIT] if stale else self._problems(error))
        return await self._page(request, team_id, result.playbook, notice="Uploaded and saved.",
                                secrets=result.new_webhooks)


def _text(form: MultiDictProxy, name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _yaml_of(form: MultiDictProxy) -> str:
    """The uploaded file's text, else the pasted text; refusals say what to do."""
    upload = form.get("file")
    if isinstance(upload, web.FileField) and upload.filename:
        data = upload.file.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ValidationError(f"The file is larger than {MAX_FILE_BYTES // 1024} KB; a playbook file is much "
                                  "smaller.", field="file")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError("The file is not UTF-8 text; save it as UTF-8 and upload it again.",
                                  field="file") from None
    text = _text(form, "yaml")
    if not text.strip():
        raise ValidationError("Choose a .yaml file or paste the playbook's YAML text.", field="file")
    return text



__all__ = ["UPLOAD_LIMIT", "Draft", "form_errors", "input_of", "setup"]
