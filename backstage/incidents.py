"""The incident pages of the backstage (issue 19): the list, one incident, and acting in it.

Thin, like a plugin: every rule is the chat's own, reached through the same service methods.

- **The list** (``/incidents``) is ``HistoryService.list_page`` with the filters of the ``list`` command
  (status, commander, playbook, severity, search, page): the same visibility, the same order.
- **One incident** (``/incidents/{id}``) is shown only if ``HistoryService.can_view`` says so — a
  private incident to a non-member, another team's, an unknown id: all the same 404 (membership is
  asked afresh, so a member who just left sees the 404 at once). It reads the incident's timeline
  and its channel's name (``HistoryService.timeline_of``/``channel_name``) — never the whole
  channel, so loading it again is cheap; hidden timeline events are left out as in chat
  (``domain.timeline.entries``).
- **Acting** (POST forms with the CSRF token): check/uncheck a step, move the stage, change the
  commander, post a status update — each through the method the card's button or dialog calls
  (``IncidentService.check``/``set_stage``/``change_commander``, ``UpdateService.post``), with
  ``fresh=True`` (Mattermost vouched for nothing: membership is asked) and, for steps and stages,
  the mark of the state the page was drawn for (domain/freshness.py), so a form replayed after the
  step changed is refused inside the versioned write. The change is announced in the channel and
  the card redrawn exactly as after a click. A refusal shows the chat's message on the page.
- **Downloads**: the channel export (``HistoryService.export_file``: the CSV of the ``export`` command,
  spreadsheet-safe) and the Markdown report (``ReportService.download``), each after the same
  visibility check, as attachments with a file name made only of safe characters.

Everything a person or Mattermost typed is rendered by Jinja2 with autoescape; chat texts (which are
Markdown) are turned into plain text first (:func:`plain`), never into HTML.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from backstage.app import Backstage, see_other, viewer
from domain import DomainError, Incident, IncidentStatus, NotFound, PermissionDenied, ValidationError, permissions
from domain import timeline as tl
from domain import updates as update_ops
from domain.fields import severity_field, shown_values
from domain.freshness import stage_mark, step_mark
from domain.ids import is_valid_id
from domain.metrics import incident_metrics
from domain.models import DEFAULT_SEVERITY, EventKind, FieldKind
from gateway.cards import format_time
from gateway.errors import user_message
from gateway.export import CSV_ENCODING
from gateway.ids import BACKSTAGE_PREFIX
from gateway.messages import command, format_duration
from gateway.timeline import clock_time, event_text, since_start, user_ids_of
from services.history import PER_PAGE, HistoryService, ListFilters
from services.incidents import IncidentService
from services.report import ReportService
from services.updates import UpdateService

#: Pages of the list a request may ask for (a larger number is refused, not sent to the store).
PAGE_MAX = 100_000
SEARCH_MAX = 200
USERNAME_MAX = 64
#: Characters of a status update typed in the page (the domain's own limit is checked too).
UPDATE_FORM_MAX = 20_000
_STATUSES = {"": None, "all": None, "ongoing": IncidentStatus.ONGOING, "ended": IncidentStatus.ENDED,
             "overdue": None}
_NOTICES = {
    "checked": "Step checked. The card in Mattermost shows it.",
    "unchecked": "Step unchecked. The card in Mattermost shows it.",
    "stage": "Stage changed. The card in Mattermost shows it.",
    "commander": "Commander changed. The channel has been told.",
    "update": "Status update posted in the incident channel.",
    "unchanged": "Nothing changed: it was already so.",
}
#: A Markdown escape (a backslash before ASCII punctuation), bold marks, code marks.
_MARKUP = re.compile(r"\\([!-/:-@\[-`{-~])|\*\*|`")
_LINK = re.compile(r"\[([^\]]*)\]\((?:[^)\\]|\\.)*\)")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")


def plain(markdown: str) -> str:
    """A chat text (limited Markdown, as neutralize and limited_markdown write it) as plain text for
    a page: links keep their words, emphasis and code marks go, escapes are undone. The result is
    still escaped by the template, so nothing in it is ever markup."""
    text = _LINK.sub(lambda m: m.group(1), markdown)
    return _MARKUP.sub(lambda m: m.group(1) or "", text)


def refusal_text(error: BaseException, trigger: str) -> str:
    """The chat's message for a refused action, as plain text."""
    return plain(user_message(error, trigger))


def safe_filename(name: str, default: str) -> str:
    """A download's file name of ASCII letters, digits, '.', '_' and '-' only (a Content-Disposition
    value that no header or path trick can break out of)."""
    cleaned = _UNSAFE_FILENAME.sub("-", name).strip("-.")[:120]
    return cleaned or default


def attachment(body: bytes, filename: str, content_type: str, charset: str) -> web.Response:
    response = web.Response(body=body, content_type=content_type, charset=charset)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@dataclass(frozen=True)
class Row:
    """One line of the list."""

    id: str
    name: str
    status: str
    overdue: bool
    severity: str
    commander: str
    playbook: str
    started: str
    duration: str


class IncidentPages:
    """The handlers; the services are the bot's own (bot.py ``build_backstage``)."""

    def __init__(self, backstage: Backstage, incidents: IncidentService, history: HistoryService,
                 updates: UpdateService, report: ReportService) -> None:
        self.backstage = backstage
        self.incidents = incidents
        self.history = history
        self.updates = updates
        self.report = report
        self.directory = incidents.directory

    @property
    def ctx(self):
        return self.backstage.ctx

    @property
    def trigger(self) -> str:
        return self.ctx.settings.command_trigger

    def _who(self, names: dict[str, str], user_id: str | None) -> str:
        if not user_id:
            return "nobody"
        name = names.get(user_id)
        return f"@{name}" if name else "a former user"

    async def _team_names(self) -> dict[str, str]:
        return {team.id: team.display_name or team.name for team in await self.ctx.client.my_teams()}

    # The list -----------------------------------------------------------------------------------

    async def list_page(self, request: web.Request) -> web.Response:
        who = viewer(request)
        query = request.query
        teams = await self.history.teams_of(who.user_id, "")
        if not teams:
            return self.backstage.render(
                request, "incident_list.html", title="Incidents", teams=[], team="", rows=[], problem="",
                empty=f"You share no team with @{self.ctx.client.username}. Ask a team admin to add the bot to "
                      "your team, then reload.", values={}, playbooks=[], severities=[], range_line="",
                previous_url="", next_url="")
        team = query.get("team", "") or teams[0]
        if team not in teams:
            raise NotFound(permissions.INCIDENT_NOT_FOUND)  # another team's list: as if it did not exist
        names = await self._team_names()
        team_choices = [(team_id, names.get(team_id, team_id)) for team_id in teams]
        values = {key: query.get(key, "").strip() for key in ("status", "commander", "playbook", "severity", "q")}
        playbooks = await self.incidents.playbooks_for(team, who.user_id)
        severities = list(DEFAULT_SEVERITY.options)
        context: dict[str, Any] = dict(
            title="Incidents", teams=team_choices, team=team, values=values,
            playbooks=[(p.id, p.title) for p in sorted(playbooks, key=lambda p: p.title.lower())],
            severities=severities, rows=[], problem="", empty="", range_line="", previous_url="", next_url="")
        try:
            filters, page = await self._filters(team, who.user_id, values, query.get("page", ""), playbooks)
        except (ValidationError, NotFound) as error:
            context["problem"] = refusal_text(error, self.trigger)
            return self.backstage.render(request, "incident_list.html", status=400, **context)
        result = await self.history.list_page(who.user_id, team, filters, page - 1, PER_PAGE)
        usernames = await self.history.usernames(i.commander_id for i in result.items)
        now = self.ctx.clock()
        context["rows"] = [self._row(incident, usernames, now) for incident in result.items]
        if not result.items:
            if page > 1 and (result.total or result.at_least):
                context["empty"] = f"There is no page {page}. Go back to the first page."
                context["previous_url"] = self._list_url(team, values, 1)
            elif any(values.values()):
                context["empty"] = "No incident you can see matches these filters. Clear them to see all."
            else:
                context["empty"] = (f"No incidents you can see in this team yet. Start one in Mattermost with "
                                    f"{command(self.trigger, 'start')}.")
        else:
            first = result.first_number
            last = first + len(result.items) - 1
            if result.total is not None:
                pages = max(1, -(-result.total // result.per_page))
                context["range_line"] = f"{first}–{last} of {result.total} · page {page} of {pages} · newest first"
            else:
                context["range_line"] = f"{first}–{last} of {result.at_least}+ · page {page} · newest first"
            if page > 1:
                context["previous_url"] = self._list_url(team, values, page - 1)
            if result.has_more:
                context["next_url"] = self._list_url(team, values, page + 1)
        return self.backstage.render(request, "incident_list.html", **context)

    @staticmethod
    def _list_url(team: str, values: dict[str, str], page: int) -> str:
        query = {"team": team, **{k: v for k, v in values.items() if v}, "page": str(page)}
        return f"{BACKSTAGE_PREFIX}/incidents?{urlencode(query)}"

    async def _filters(self, team: str, user_id: str, values: dict[str, str], page_text: str,
                       playbooks: list) -> tuple[ListFilters, int]:
        status_word = values["status"].lower()
        if status_word not in _STATUSES:
            raise ValidationError(f'"{status_word[:40]}" is not a status: choose ongoing, ended, overdue or all.',
                                  field="status")
        page = 1
        if page_text:
            if not page_text.isdigit() or not 1 <= int(page_text) <= PAGE_MAX:
                raise ValidationError(f"Pages count from 1 to {PAGE_MAX}; go back to the first page.", field="page")
            page = int(page_text)
        commander_id = None
        if values["commander"]:
            name = values["commander"].lstrip("@")
            user = (await self.directory.team_user_by_username(team, name)
                    if 0 < len(name) <= USERNAME_MAX and re.fullmatch(r"[A-Za-z0-9._-]+", name) else None)
            if user is None:
                raise NotFound(f"There is no user @{name[:USERNAME_MAX]} in this team. Check the spelling.")
            commander_id = user.id
        playbook_id = None
        if values["playbook"]:
            if values["playbook"] not in {p.id for p in playbooks}:
                raise ValidationError("That playbook is not one of yours in this team; choose one from the list.",
                                      field="playbook")
            playbook_id = values["playbook"]
        field_values: tuple[tuple[str, str], ...] = ()
        if values["severity"]:
            if len(values["severity"]) > 40:
                raise ValidationError("That severity is too long; choose one from the list.", field="severity")
            field_id, stored, _ = await self.history.field_filter(team, user_id, "severity", values["severity"])
            field_values = ((field_id, stored),)
        search = values["q"]
        if len(search) > SEARCH_MAX:
            raise ValidationError(f"Search for at most {SEARCH_MAX} characters.", field="q")
        return ListFilters(status=_STATUSES[status_word], commander_id=commander_id, playbook_id=playbook_id,
                           search=search or None, overdue=status_word == "overdue",
                           field_values=field_values), page

    def _row(self, incident: Incident, names: dict[str, str], now: int) -> Row:
        severity = severity_field(incident.fields)
        return Row(id=incident.id, name=" ".join(incident.name.split()),
                   status="Ongoing" if incident.is_ongoing else "Ended",
                   overdue=update_ops.overdue(incident, now),
                   severity=incident.field_values.get(severity.id, "") if severity else "",
                   commander=self._who(names, incident.commander_id), playbook=incident.playbook_title or "—",
                   started=format_time(incident.created_at),
                   duration=format_duration(incident.duration_ms(now)))

    # One incident -------------------------------------------------------------------------------

    async def visible(self, request: web.Request) -> Incident:
        """The incident of the URL, if the viewer may see it exactly as in chat; NotFound otherwise
        (unknown, another team's, private and not a member: one answer)."""
        incident_id = request.match_info["id"]
        incident = await self.incidents.incident(incident_id) if is_valid_id(incident_id) else None
        if incident is None or not await self.history.can_view(incident, viewer(request).user_id):
            raise NotFound(permissions.INCIDENT_NOT_FOUND)
        return incident

    async def detail_page(self, request: web.Request) -> web.Response:
        notice = _NOTICES.get(request.query.get("done", ""), "")
        return await self._detail(request, notice=notice)

    async def _detail(self, request: web.Request, *, notice: str = "", refusal: str = "",
                      status: int = 200, form: dict[str, str] | None = None) -> web.Response:
        incident = await self.visible(request)
        who = viewer(request)
        events = await self.history.timeline_of(incident)
        channel_name = await self.history.channel_name(incident.channel_id)
        now = self.ctx.clock()
        entries = tl.entries(events)
        ids: set[str] = {incident.commander_id}
        for entry in entries:
            ids |= user_ids_of(entry.event)
        for stage in incident.stages:
            for step in stage.steps:
                ids.update(x for x in (step.assignee_id, step.state_changed_by) if x)
        ids.update(value for f, value in shown_values(incident) if f.kind is FieldKind.USER)
        member = await self.history.is_member(incident.channel_id, who.user_id)
        member_ids: list[str] = []
        if member and incident.is_ongoing:
            member_ids = await self.directory.channel_member_ids(incident.channel_id)
            ids.update(member_ids)
        names = await self.history.usernames(ids)
        people = []
        if member_ids:
            for user in await self._users(member_ids):
                if not user.is_bot and user.active:
                    people.append((user.id, user.username))
            people.sort(key=lambda pair: pair[1].lower())

        stages = []
        for s, stage in enumerate(incident.stages):
            steps = []
            for n, step in enumerate(stage.steps):
                steps.append({
                    "id": step.id, "label": f"{s + 1}.{n + 1}", "title": step.title,
                    "description": step.description, "command": step.command, "done": step.done,
                    "mark": step_mark(step), "assignee": self._who(names, step.assignee_id) if step.assignee_id else "",
                    "by": self._who(names, step.state_changed_by) if step.state_changed_by else "",
                    "at": format_time(step.state_changed_at) if step.state_changed_at else ""})
            stages.append({"number": s + 1, "title": stage.title, "active": s == incident.active_stage,
                           "done": stage.done_count, "total": len(stage.steps), "steps": steps})
        timeline = [{"at": clock_time(min(e.event.at, max(now, incident.created_at))),
                     "since": since_start(min(e.event.at, max(now, incident.created_at)), incident.created_at),
                     "who": self._who(names, e.event.actor_id), "what": plain(event_text(e.event, incident, names))}
                    for e in entries]
        status_updates = [{"at": clock_time(e.event.at), "who": self._who(names, e.event.actor_id),
                           "final": bool(e.event.details.get("final")),
                           "text": str(e.event.details.get("message", ""))}
                          for e in entries if e.event.kind is EventKind.STATUS_UPDATE]
        status_updates.reverse()  # newest first
        figures = incident_metrics(incident, events, now)
        fields = [(f.name, self._who(names, value) if f.kind is FieldKind.USER else value)
                  for f, value in shown_values(incident)]
        metrics = [
            ("Time to first status update", format_duration(figures.time_to_first_update_ms)
             if figures.time_to_first_update_ms is not None else "no status update yet"),
            ("Time to resolve", format_duration(figures.time_to_resolve_ms)
             if figures.time_to_resolve_ms is not None else "not resolved (ongoing)"),
            ("Time ongoing", format_duration(figures.ongoing_ms)
             + (f" ({figures.restarts} restart{'s' if figures.restarts != 1 else ''})" if figures.restarts else "")),
            ("Steps done", f"{incident.steps_done}/{incident.steps_total}"),
        ]
        stage_times = [(f"{i + 1}. {stage.title}", format_duration(figures.stage_ms[i] if i < len(figures.stage_ms)
                                                                     else 0))
                       for i, stage in enumerate(incident.stages)]
        channel_url = await self._channel_url(incident, channel_name)
        choices = [(c.value, c.label) for c in update_ops.next_update_choices(incident)] if incident.is_ongoing else []
        return self.backstage.render(
            request, "incident_detail.html", status=status, title=" ".join(incident.name.split()),
            incident=incident, name=" ".join(incident.name.split()),
            status_label="Ongoing" if incident.is_ongoing else "Ended",
            overdue=update_ops.overdue(incident, now),
            commander=self._who(names, incident.commander_id), started=format_time(incident.created_at),
            ended=format_time(incident.ended_at) if incident.ended_at is not None else "",
            duration=format_duration(incident.duration_ms(now)), as_of=clock_time(now),
            stage_label=f"{incident.active_stage + 1}/{len(incident.stages)} {incident.current_stage.title}",
            stages=stages, stage_mark=stage_mark(incident), first_stage=incident.active_stage == 0,
            last_stage=incident.active_stage == len(incident.stages) - 1,
            fields=fields, metrics=metrics, stage_times=stage_times,
            timeline=timeline, status_updates=status_updates, channel_name=channel_name,
            channel_url=channel_url, member=member, people=people, choices=choices,
            update_template=incident.updates.template if incident.is_ongoing else "",
            notice=notice, refusal=refusal, form=form or {},
            page_url=f"{BACKSTAGE_PREFIX}/incidents/{incident.id}")

    async def _users(self, user_ids: list[str]) -> list:
        users = []
        for start in range(0, len(user_ids), 100):
            users.extend(await self.ctx.client.users_by_ids(user_ids[start:start + 100]))
        return users

    async def _channel_url(self, incident: Incident, channel_name: str) -> str:
        """The incident channel in Mattermost's web app (``/{team}/channels/{channel}``), if readable."""
        if not channel_name:
            return ""
        for team in await self.ctx.client.my_teams():
            if team.id == incident.team_id:
                return f"{self.ctx.browser_mattermost_url}/{team.name}/channels/{channel_name}"
        return ""

    # Downloads ----------------------------------------------------------------------------------

    async def export_csv(self, request: web.Request) -> web.Response:
        incident = await self.visible(request)
        raw = request.query.get("raw") == "1"
        with tempfile.TemporaryFile() as out:
            filename, _ = await self.history.export_file(incident, viewer(request).user_id, out, raw=raw)
            out.seek(0)
            body = out.read()
        return attachment(body, safe_filename(filename, "incident.csv"), "text/csv", CSV_ENCODING)

    async def report_md(self, request: web.Request) -> web.Response:
        incident = await self.visible(request)
        filename, text = await self.report.download(incident, viewer(request).user_id)
        return attachment(text.encode(), safe_filename(filename, "report.md"), "text/markdown", "utf-8")

    # Acting -------------------------------------------------------------------------------------

    async def _act(self, request: web.Request, action: str) -> web.StreamResponse:
        """Run one form's action through the chat's own service method; a refusal is shown on the page."""
        incident = await self.visible(request)  # 404 before anything else for who may not see it
        form = await request.post()
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        user_id = viewer(request).user_id
        try:
            done = await getattr(self, f"_do_{action}")(incident, user_id, values)
        except DomainError as error:
            status = 403 if isinstance(error, PermissionDenied) else 400 if isinstance(error, ValidationError) else 409
            return await self._detail(request, refusal=refusal_text(error, self.trigger), status=status,
                                      form=values if action == "update" else None)
        return see_other(f"{BACKSTAGE_PREFIX}/incidents/{incident.id}?done={done}")

    async def check(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, "check")

    async def stage(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, "stage")

    async def commander(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, "commander")

    async def post_update(self, request: web.Request) -> web.StreamResponse:
        return await self._act(request, "update")

    async def _do_check(self, incident: Incident, user_id: str, values: dict[str, str]) -> str:
        step_id, mark, done_word = values.get("step", ""), values.get("mark", ""), values.get("done", "")
        if done_word not in ("1", "0") or not step_id or len(step_id) > 64 or len(mark) > 100:
            raise ValidationError("This form is incomplete. Reload the page and try again.")
        try:
            incident.locate(step_id)
        except NotFound:
            raise ValidationError("This step no longer exists. Reload the page to see the checklist as it is.") \
                from None
        done = done_word == "1"
        _, events = await self.incidents.check(incident, user_id, step_id, done, drawn=mark, fresh=True)
        if not events:
            return "unchanged"
        return "checked" if done else "unchecked"

    async def _do_stage(self, incident: Incident, user_id: str, values: dict[str, str]) -> str:
        how, mark = values.get("how", ""), values.get("mark", "")
        if how not in ("next", "prev") or len(mark) > 100:
            raise ValidationError("This form is incomplete. Reload the page and try again.")
        _, events = await self.incidents.set_stage(incident, user_id, how, drawn=mark, fresh=True)
        return "stage" if events else "unchanged"

    async def _do_commander(self, incident: Incident, user_id: str, values: dict[str, str]) -> str:
        typed = values.get("username", "").strip().lstrip("@")
        chosen = values.get("commander", "")
        if typed:
            if len(typed) > USERNAME_MAX or not re.fullmatch(r"[A-Za-z0-9._-]+", typed):
                raise ValidationError("That is not a username: type it as it is in Mattermost, e.g. @alice.",
                                      field="commander")
            # Missing and outside the team get one answer, as in chat.
            user = await self.directory.team_user_by_username(incident.team_id, typed)
            if user is None:
                raise ValidationError(f"There is no user @{typed} in this team. Check the spelling.",
                                      field="commander")
            chosen = user.id
        if not chosen or not is_valid_id(chosen):
            raise ValidationError("Choose the new commander from the list, or type a username.", field="commander")
        _, events = await self.incidents.change_commander(incident, user_id, chosen, fresh=True)
        return "commander" if events else "unchanged"

    async def _do_update(self, incident: Incident, user_id: str, values: dict[str, str]) -> str:
        text = values.get("text", "")
        if len(text) > UPDATE_FORM_MAX:
            raise ValidationError("This status update is far too long; shorten it.", field="text")
        next_in = values.get("next_in") or None
        if next_in is not None and len(next_in) > 20:
            raise ValidationError("Choose when the next update is due from the list.", field="next_in")
        await self.updates.post(incident, user_id, text, next_in)
        return "update"


def setup(backstage: Backstage, *, incidents: IncidentService, history: HistoryService, updates: UpdateService,
          report: ReportService) -> IncidentPages:
    pages = IncidentPages(backstage, incidents, history, updates, report)
    backstage.page("GET", "/incidents", pages.list_page)
    backstage.page("GET", "/incidents/{id}", pages.detail_page)
    backstage.page("GET", "/incidents/{id}/export.csv", pages.export_csv)
    backstage.page("GET", "/incidents/{id}/report.md", pages.report_md)
    backstage.page("POST", "/incidents/{id}/check", pages.check)
    backstage.page("POST", "/incidents/{id}/stage", pages.stage)
    backstage.page("POST", "/incidents/{id}/commander", pages.commander)
    backstage.page("POST", "/incidents/{id}/update", pages.post_update)
    backstage.nav.append(("Incidents", "/incidents"))
    return pages


__all__ = ["IncidentPages", "plain", "safe_filename", "setup"]
