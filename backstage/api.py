"""The REST API under ``/api/v1`` (issue 19): incidents, playbooks, timeline, stats and actions as JSON.

Who: a personal API token (``Authorization: Bearer cct_…``, made on the backstage's Tokens page)
or the session cookie, whose unsafe requests also carry ``X-CSRF-Token`` (backstage/app.py). Every
answer is what the same person would get in chat, because every route calls the service method the
chat's command calls:

- the list is ``HistoryService.list_page`` (the same filters, the same visibility, the same order);
- an incident is shown only if ``HistoryService.can_view`` (asked afresh: someone who just left its
  channel sees it no more); one the caller may not see is answered exactly like a missing one (404);
- check/uncheck is ``IncidentService.check``, the commander ``IncidentService.change_commander``, an
  update ``UpdateService.post``, a start ``IncidentService.start_named`` — so the permission checks,
  the versioned write, the announcement in the channel and the redrawn card are the chat's. Actions
  ask Mattermost for the caller's membership afresh (``fresh=True``): Mattermost vouched for nothing.
- playbooks are ``PlaybookService.visible/get``, shown in the YAML file's shape (``spec_data``);
  stats are ``StatsService.stats``.

Errors are ``{"error", "status", "field"?}``: 400 (a bad value, naming ``field``), 401, 403 (CSRF; or
an incident the caller may see but not change), 404, 409 (the step or incident changed since it was
read: nothing was changed), 413, 415. The document describing all of it is backstage/openapi.yaml,
served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from functools import cache, wraps
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from backstage.api_bodies import CheckBody, CommanderBody, StartBody, UpdateBody, read_body
from backstage.app import Backstage, Viewer, viewer
from domain import limits
from domain.errors import DomainError, NotFound, PermissionDenied, ValidationError
from domain.freshness import step_mark
from domain.ids import is_valid_id
from domain.metrics import Figures, PlaybookStats, incident_metrics
from domain.models import EventKind, FieldKind, Incident, IncidentStatus, Playbook, StepRef, TimelineEvent
from domain.permissions import INCIDENT_NOT_FOUND
from domain.updates import overdue
from gateway import playbook_yaml
from gateway.errors import user_message
from gateway.ids import incident_page_url
from gateway.timeline import event_text
from services.history import HistoryService, ListFilters
from services.incidents import IncidentService, StartRequest
from services.playbooks import PlaybookService
from services.stats import DAYS_DEFAULT, StatsService
from services.timeline import TimelineService
from services.updates import UpdateService

HERE = Path(__file__).resolve().parent
OPENAPI_FILE = HERE / "openapi.yaml"
#: Rows per page when ``?per_page=`` is not given (at most ``LIST_PER_PAGE_MAX``; the chat's list shows 15).
PER_PAGE_DEFAULT = 25
UPDATES_PER_PAGE_DEFAULT = 25
_STATUSES = {"ongoing": IncidentStatus.ONGOING, "ended": IncidentStatus.ENDED, "all": None}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@cache
def openapi_document() -> dict[str, Any]:
    """backstage/openapi.yaml, read once."""
    return yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))


@dataclass
class Services:
    """What the API's routes call: the very services the chat's plugins call (bot.py)."""

    incidents: IncidentService
    history: HistoryService
    playbooks: PlaybookService
    stats: StatsService
    timeline: TimelineService
    updates: UpdateService


class Refused(Exception):
    """An answer other than 200 with its own status (403 for a visible incident one may not change)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def error_json(status: int, message: str, field: str | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message, "status": status}
    if field:
        body["field"] = field
    return web.json_response(body, status=status)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def ok(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=_dumps)


def setup(backstage: Backstage, services: Services) -> None:
    api = Api(backstage, services)
    routes: list[tuple[str, str, Handler, bool]] = [
        ("GET", "/openapi.json", api.openapi, True),
        ("GET", "/me", api.me, False),
        ("GET", "/teams", api.teams, False),
        ("GET", "/incidents", api.list_incidents, False),
        ("POST", "/incidents", api.start, False),
        ("GET", "/incidents/{incident_id}", api.incident, False),
        ("GET", "/incidents/{incident_id}/timeline", api.timeline_page, False),
        ("GET", "/incidents/{incident_id}/updates", api.updates_list, False),
        ("POST", "/incidents/{incident_id}/updates", api.post_update, False),
        ("POST", "/incidents/{incident_id}/commander", api.commander, False),
        ("POST", "/incidents/{incident_id}/steps/{stage}/{step}/check", api.check, False),
        ("POST", "/incidents/{incident_id}/steps/{stage}/{step}/uncheck", api.uncheck, False),
        ("GET", "/playbooks", api.playbook_list, False),
        ("GET", "/playbooks/{playbook_id}", api.playbook, False),
        ("GET", "/stats", api.stats_of, False),
    ]
    for method, path, handler, public in routes:
        backstage.api(method, path, _answering(handler, backstage), public=public)


def _answering(handler: Handler, backstage: Backstage) -> Handler:
    """Domain errors as the API's JSON, their commands written out for the configured trigger."""
    trigger = backstage.ctx.settings.command_trigger

    @wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as refused:
            return error_json(refused.status, refused.message, refused.field)
        except ValidationError as error:
            return error_json(400, user_message(error, trigger), error.field)
        except (NotFound, PermissionDenied):
            raise  # the middleware's one answer for "missing" and "not yours"
        except DomainError as error:  # InvalidState (stale, ended), Conflict: nothing was changed
            return error_json(409, user_message(error, trigger), error.field)
    return answer


class Api:
    def __init__(self, backstage: Backstage, services: Services) -> None:
        self.backstage = backstage
        self.s = services
        self.ctx = backstage.ctx
        self.trigger = backstage.ctx.settings.command_trigger

    @property
    def directory(self):
        return self.s.history.directory

    # Helpers -----------------------------------------------------------------------------------

    async def _team(self, request: web.Request, who: Viewer) -> str:
        """``?team=`` (a team the caller and the bot share), else the first of them."""
        wanted = request.query.get("team", "")
        if wanted:
            if not is_valid_id(wanted):
                raise ValidationError("team is a team id (26 letters and digits); GET /api/v1/teams lists yours.",
                                      field="team")
            await self.s.history.require_team(wanted, who.user_id)
            return wanted
        teams = await self.s.history.teams_of(who.user_id, "")
        if not teams:
            raise NotFound("You share no team with the bot yet.")
        return teams[0]

    async def _visible(self, request: web.Request, who: Viewer) -> Incident:
        """The incident of the path, if the caller may see it (asked afresh); else the one 404."""
        incident_id = request.match_info["incident_id"]
        incident = await self.s.incidents.incident(incident_id) if is_valid_id(incident_id) else None
        if incident is None or not await self.s.history.can_view(incident, who.user_id):
            raise NotFound(INCIDENT_NOT_FOUND)
        return incident

    async def _usable_playbook(self, team_id: str, who: Viewer, playbook_id: str) -> Playbook:
        """A playbook filter: one the caller may use in the team; any other is the same 400."""
        try:
            return await self.s.playbooks.get(team_id, who.user_id, playbook_id)
        except (NotFound, PermissionDenied):
            raise ValidationError("No playbook with this id among yours in this team; GET /api/v1/playbooks "
                                  "lists them.", field="playbook") from None

    async def _acting(self, incident: Incident, who: Viewer,
                      change: Callable[[], Awaitable[Incident]]) -> web.Response:
        """Run a change to a visible incident; refusals say why (403 here: the caller can see it)."""
        try:
            updated = await change()
        except PermissionDenied as error:
            raise Refused(403, user_message(error, self.trigger)) from None
        except NotFound as error:  # a step that is not there, a user who is not in the team
            raise Refused(404, user_message(error, self.trigger), error.field) from None
        return ok(await self._detail(updated))

    def _int(self, request: web.Request, name: str, default: int, lowest: int, highest: int) -> int:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or not lowest <= int(raw) <= highest:
            raise ValidationError(f"{name} is a whole number from {lowest} to {highest}.", field=name)
        return int(raw)

    async def _names(self, user_ids: Iterable[str | None]) -> dict[str, str]:
        return await self.s.history.usernames(i for i in user_ids if i)

    @staticmethod
    def _user(user_id: str | None, names: dict[str, str]) -> dict[str, str] | None:
        return {"id": user_id, "username": names.get(user_id, "")} if user_id else None

    def _summary(self, incident: Incident, names: dict[str, str], channels: dict[str, str], now: int) -> dict:
        stage = incident.stages[incident.active_stage]
        return {
            "id": incident.id, "team_id": incident.team_id, "name": incident.name,
            "status": incident.status.value, "public": incident.public,
            "channel": {"id": incident.channel_id, "name": channels.get(incident.channel_id, "")},
            "commander": self._user(incident.commander_id, names),
            "playbook": {"id": incident.playbook_id, "title": incident.playbook_title} if incident.playbook_id else None,
            "severity": incident.severity,
            "stage": {"number": incident.active_stage + 1, "of": len(incident.stages), "title": stage.title},
            "created_at": incident.created_at, "ended_at": incident.ended_at,
            "duration_ms": incident.duration_ms(now), "update_overdue": overdue(incident, now),
            "url": incident_page_url(self.backstage.base_url, incident.id),
        }

    async def _detail(self, incident: Incident) -> dict:
        now = self.ctx.clock()
        events = await self.s.timeline.events(incident)
        figures = incident_metrics(incident, events, now)
        ids: set[str] = {incident.commander_id, incident.creator_id, *incident.follower_ids, *figures.done_by}
        for stage in incident.stages:
            for step in stage.steps:
                ids.update(i for i in (step.assignee_id, step.state_changed_by) if i)
        values = dict(incident.field_values)
        ids.update(values[f.id] for f in incident.fields if f.kind is FieldKind.USER and values.get(f.id))
        if incident.last_update_by:
            ids.add(incident.last_update_by)
        names = await self._names(ids)
        channel_name = await self.s.history.channel_name(incident.channel_id)
        body = self._summary(incident, names, {incident.channel_id: channel_name}, now)
        body.update({
            "description": incident.description,
            "creator": self._user(incident.creator_id, names),
            "version": incident.version,
            "stages": [{
                "number": s + 1, "title": stage.title, "active": s == incident.active_stage,
                "done": stage.done_count, "total": len(stage.steps),
                "steps": [{
                    "number": i + 1, "label": StepRef(s, i).label, "id": step.id, "title": step.title,
                    "description": step.description, "command": step.command, "state": step.state.value,
                    "assignee": self._user(step.assignee_id, names),
                    "changed_by": self._user(step.state_changed_by, names), "changed_at": step.state_changed_at,
                    "mark": step_mark(step),
                } for i, step in enumerate(stage.steps)],
            } for s, stage in enumerate(incident.stages)],
            "fields": [{
                "id": f.id, "name": f.name, "kind": f.kind.value, "value": values.get(f.id),
                "user": self._user(values.get(f.id), names) if f.kind is FieldKind.USER else None,
            } for f in incident.fields],
            "updates": {
                "last_at": incident.last_update_at, "last_by": self._user(incident.last_update_by, names),
                "next_due_at": incident.next_update_due_at, "overdue": overdue(incident, now),
                "followers": len(incident.follower_ids),
            },
            "metrics": {
                "time_to_first_update_ms": figures.time_to_first_update_ms,
                "time_to_resolve_ms": figures.time_to_resolve_ms, "ongoing_ms": figures.ongoing_ms,
                "stage_ms": list(figures.stage_ms), "restarts": figures.restarts, "steps_done": figures.steps_done,
                "done_by": [{"user": self._user(user_id, names), "steps": count}
                            for user_id, count in figures.done_by.items()],
            },
            "retrospective": incident.retro_status.value if incident.retro_status else None,
        })
        return body

    # Routes: who -------------------------------------------------------------------------------

    async def openapi(self, request: web.Request) -> web.Response:
        response = ok(openapi_document())
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    async def me(self, request: web.Request) -> web.Response:
        who = viewer(request)
        return ok({"user_id": who.user_id, "username": who.username,
                   "signed_in_with": "token" if who.by_token else "session"})

    async def teams(self, request: web.Request) -> web.Response:
        who = viewer(request)
        shared = set(await self.s.history.teams_of(who.user_id, ""))
        teams = [{"id": t.id, "name": t.name, "display_name": t.display_name}
                 for t in await self.ctx.client.my_teams() if t.id in shared]
        return ok({"items": teams})

    # Routes: incidents -------------------------------------------------------------------------

    async def list_incidents(self, request: web.Request) -> web.Response:
        who = viewer(request)
        query = request.query
        team_id = await self._team(request, who)
        status_word = query.get("status", "all").lower()
        if status_word not in _STATUSES:
            raise ValidationError("status is ongoing, ended or all.", field="status")
        commander_id = None
        if query.get("commander"):
            user = await self.directory.team_user_by_username(team_id, query["commander"][:64])
            if user is None:
                raise ValidationError("There is no user by that name in this team (commander is a username).",
                                      field="commander")
            commander_id = user.id
        playbook_id = query.get("playbook") or None
        if playbook_id is not None:
            if not is_valid_id(playbook_id):
                raise ValidationError("playbook is a playbook id; GET /api/v1/playbooks lists yours.", field="playbook")
            await self._usable_playbook(team_id, who, playbook_id)
        field_values: tuple[tuple[str, str], ...] = ()
        if query.get("severity"):
            field_id, value, _ = await self.s.history.field_filter(team_id, who.user_id, "severity",
                                                                   query["severity"][:64])
            field_values = ((field_id, value),)
        search = query.get("q", "").strip() or None
        if search is not None and len(search) > limits.INCIDENT_NAME_MAX:
            raise ValidationError(f"q is at most {limits.INCIDENT_NAME_MAX} characters.", field="q")
        page = self._int(request, "page", 1, 1, 100_000)
        per_page = self._int(request, "per_page", PER_PAGE_DEFAULT, 1, limits.LIST_PER_PAGE_MAX)
        filters = ListFilters(status=_STATUSES[status_word], commander_id=commander_id, playbook_id=playbook_id,
                              search=search, overdue=query.get("overdue", "") == "true", field_values=field_values)
        result = await self.s.history.list_page(who.user_id, team_id, filters, page - 1, per_page)
        names = await self._names(i.commander_id for i in result.items)
        channels = await self.s.history.channel_names((i.channel_id for i in result.items), team_id)
        now = self.ctx.clock()
        return ok({"team_id": team_id, "page": page, "per_page": per_page, "total": result.total,
                   "at_least": result.at_least, "has_more": result.has_more,
                   "items": [self._summary(i, names, channels, now) for i in result.items]})

    async def incident(self, request: web.Request) -> web.Response:
        incident = await self._visible(request, viewer(request))
        return ok(await self._detail(incident))

    async def timeline_page(self, request: web.Request) -> web.Response:
        who = viewer(request)
        incident = await self._visible(request, who)
        page = self._int(request, "page", 1, 1, 100_000)
        per_page = self._int(request, "per_page", limits.TIMELINE_PER_PAGE, 1, 100)
        include_hidden = request.query.get("all", "") == "true"
        try:
            shown = await self.s.timeline.incident_page(incident, who.user_id, page=page - 1,
                                                        include_hidden=include_hidden, per_page=per_page)
        except PermissionDenied as error:
            raise Refused(403, user_message(error, self.trigger), "all") from None
        except NotFound as error:  # a page past the end
            raise Refused(404, user_message(error, self.trigger), "page") from None
        names = shown.names
        return ok({"incident_id": incident.id, "page": page, "per_page": per_page, "pages": shown.pages,
                   "total": shown.total,
                   "items": [{"number": entry.number, "at": entry.event.at, "kind": _kind(entry.event),
                              "actor": self._user(entry.event.actor_id, names),
                              "text": event_text(entry.event, incident, names), "hidden": entry.hidden}
                             for entry in shown.entries]})

    async def updates_list(self, request: web.Request) -> web.Response:
        who = viewer(request)
        incident = await self._visible(request, who)
        page = self._int(request, "page", 1, 1, 100_000)
        per_page = self._int(request, "per_page", UPDATES_PER_PAGE_DEFAULT, 1, 100)
        updates = [e for e in await self.s.timeline.events(incident) if e.kind is EventKind.STATUS_UPDATE]
        updates.sort(key=lambda e: -e.at)  # newest first
        shown = updates[(page - 1) * per_page:page * per_page]
        names = await self._names(e.actor_id for e in shown)
        return ok({"incident_id": incident.id, "page": page, "per_page": per_page, "total": len(updates),
                   "items": [{"at": e.at, "author": self._user(e.actor_id, names),
                              "text": str(e.details.get("message", "")), "final": bool(e.details.get("final")),
                              "next_due_at": e.details.get("next_update_due_at")} for e in shown]})

    # Routes: actions ---------------------------------------------------------------------------

    async def _step_change(self, request: web.Request, done: bool) -> web.Response:
        who = viewer(request)
        incident = await self._visible(request, who)
        body = await read_body(request, CheckBody, optional=True)
        target = _step_ref(request)

        async def change() -> Incident:
            updated, _ = await self.s.incidents.check(incident, who.user_id, target, done, drawn=body.mark,
                                                      fresh=True)
            return updated
        return await self._acting(incident, who, change)

    async def check(self, request: web.Request) -> web.Response:
        return await self._step_change(request, True)

    async def uncheck(self, request: web.Request) -> web.Response:
        return await self._step_change(request, False)

    async def commander(self, request: web.Request) -> web.Response:
        who = viewer(request)
        incident = await self._visible(request, who)
        body = await read_body(request, CommanderBody)
        if (body.user_id is None) == (body.username is None):
            raise ValidationError("Name the new commander with either user_id or username (not both).",
                                  field="username" if body.username is not None else "user_id")
        if body.user_id is not None:
            if not is_valid_id(body.user_id):
                raise ValidationError("user_id is a Mattermost user id (26 letters and digits).", field="user_id")
            # Someone outside the incident's team is answered exactly like nobody.
            new_id = body.user_id if await self.directory.is_team_member(incident.team_id, body.user_id) else None
        else:
            user = await self.directory.team_user_by_username(incident.team_id, body.username or "")
            new_id = user.id if user is not None else None
        if new_id is None:
            field = "user_id" if body.user_id is not None else "username"
            raise ValidationError("There is no such user in this incident's team. Check the spelling.", field=field)

        async def change() -> Incident:
            updated, _ = await self.s.incidents.change_commander(incident, who.user_id, new_id, fresh=True)
            return updated
        return await self._acting(incident, who, change)

    async def post_update(self, request: web.Request) -> web.Response:
        who = viewer(request)
        incident = await self._visible(request, who)
        body = await read_body(request, UpdateBody)

        async def change() -> Incident:
            return await self.s.updates.post(incident, who.user_id, body.text, body.next_in)
        return await self._acting(incident, who, change)

    async def start(self, request: web.Request) -> web.Response:
        who = viewer(request)
        body = await read_body(request, StartBody)
        if body.team_id is not None:
            if not is_valid_id(body.team_id):
                raise ValidationError("team_id is a team id; GET /api/v1/teams lists yours.", field="team_id")
            team_id = body.team_id
        else:
            teams = await self.s.history.teams_of(who.user_id, "")
            if not teams:
                raise NotFound("You share no team with the bot yet.")
            team_id = teams[0]
        if not is_valid_id(body.playbook_id):
            raise ValidationError("playbook_id is a playbook id; GET /api/v1/playbooks lists yours.",
                                  field="playbook_id")
        try:
            started = await self.s.incidents.start_named(StartRequest(
                actor_id=who.user_id, team_id=team_id, playbook_id=body.playbook_id, name=body.name,
                description=body.description))
        except NotFound as error:
            raise Refused(404, user_message(error, self.trigger), "playbook_id") from None
        except PermissionDenied as error:
            raise Refused(404, user_message(error, self.trigger), "playbook_id") from None
        return ok(await self._detail(started.incident), status=201)

    # Routes: playbooks and stats ---------------------------------------------------------------

    async def playbook_list(self, request: web.Request) -> web.Response:
        who = viewer(request)
        team_id = await self._team(request, who)
        playbooks = await self.s.playbooks.visible(team_id, who.user_id)
        return ok({"team_id": team_id, "items": [_playbook_summary(p) for p in playbooks]})

    async def playbook(self, request: web.Request) -> web.Response:
        who = viewer(request)
        playbook_id = request.match_info["playbook_id"]
        if not is_valid_id(playbook_id):
            raise NotFound("No such playbook.")
        teams = [await self._team(request, who)] if request.query.get("team") else \
            await self.s.history.teams_of(who.user_id, "")
        found: Playbook | None = None
        for team_id in teams:
            try:
                found = await self.s.playbooks.get(team_id, who.user_id, playbook_id)
                break
            except (NotFound, PermissionDenied):
                continue
        if found is None:
            raise NotFound("No such playbook.")
        spec = await self.s.playbooks.spec(found)
        return ok({**_playbook_summary(found), "spec": playbook_yaml.spec_data(spec)})

    async def stats_of(self, request: web.Request) -> web.Response:
        who = viewer(request)
        team_id = await self._team(request, who)
        days = self._int(request, "days", DAYS_DEFAULT, 1, 3650)
        playbook: Playbook | None = None
        if request.query.get("playbook"):
            playbook_id = request.query["playbook"]
            if not is_valid_id(playbook_id):
                raise ValidationError("playbook is a playbook id; GET /api/v1/playbooks lists yours.",
                                      field="playbook")
            playbook = await self._usable_playbook(team_id, who, playbook_id)
        result = await self.s.stats.stats(who.user_id, team_id, days=days,
                                          playbook_name=playbook.title if playbook else "")
        by_playbook = [{"playbook": {"id": pid, "title": result.titles.get(pid, "")} if pid else None,
                        **_playbook_figures(figures)}
                       for pid, figures in sorted(result.stats.by_playbook.items(),
                                                  key=lambda item: (item[0] is None, item[0] or ""))]
        return ok({"team_id": team_id, "days": result.days, "since": result.since,
                   "playbook": {"id": playbook.id, "title": playbook.title} if playbook else None,
                   **_playbook_figures(result.stats.total), "by_playbook": by_playbook})


def _kind(event: TimelineEvent) -> str:
    return event.kind.value if isinstance(event.kind, EventKind) else str(event.kind)


def _step_ref(request: web.Request) -> StepRef:
    """The step of the path: 1-based stage and step numbers, as people type them (``check 2.1``)."""
    stage, step = request.match_info["stage"], request.match_info["step"]
    for name, value in (("stage", stage), ("step", step)):
        if not value.isdigit() or not 1 <= int(value) <= 1000:
            raise ValidationError(f"{name} is a number from 1 (the first {name}).", field=name)
    return StepRef(int(stage) - 1, int(step) - 1)


def _figures(figures: Figures) -> dict[str, int | None]:
    return {"count": figures.count, "resolved": figures.resolved, "median_resolve_ms": figures.median_ms,
            "p90_resolve_ms": figures.p90_ms}


def _playbook_figures(stats: PlaybookStats) -> dict[str, Any]:
    return {**_figures(stats.total),
            "by_severity": [{"severity": severity, **_figures(figures)}
                            for severity, figures in sorted(stats.by_severity.items(),
                                                            key=lambda item: (item[0] is None, item[0] or ""))]}


def _playbook_summary(playbook: Playbook) -> dict[str, Any]:
    return {"id": playbook.id, "team_id": playbook.team_id, "title": playbook.title,
            "description": playbook.description, "public": playbook.create_public_channel,
            "stages": len(playbook.stages), "steps": playbook.step_count, "members": len(playbook.member_ids),
            "version": playbook.version, "updated_at": playbook.updated_at}
