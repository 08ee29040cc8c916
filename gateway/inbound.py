"""The bot's own HTTP server: slash commands, button clicks and dialog submissions from Mattermost.

Runs on the bot's event loop (no threads, no queues, nothing polls).  Every request is
authenticated before anything else happens — the command token for slash commands, the bot's
signature for clicks and dialogs, Mattermost's trigger id against replays — and anything that
fails gets 401 and changes nothing.  Spent trigger ids and dialog nonces are kept in the store
(:class:`ReplayGuard`), so a captured request stays refused after a restart.  One log line per request says what, who, how long, outcome.

Hostile callers cost little (:class:`InboundLimits`): each route takes only the content type
Mattermost sends (else 415), bodies are size-capped (413), must arrive within a deadline (408)
and must decode as strict UTF-8 with a bounded number of form fields (400); connections idle or
still trickling headers are closed by aiohttp's keep-alive timer; malformed HTTP is refused by
the parser and logged in one line.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict
from pydantic import ValidationError

from gateway.alerts import AlertPayloadError, AlertSink, AlertSource, authenticated, parse_notification
from gateway.binding import ChannelTeams
from gateway.errors import MattermostError, user_message
from gateway.ids import Route
from gateway.messages import DEFAULT_TRIGGER, command
from gateway.models import (
    ActionCallback,
    ActionReply,
    CommandReply,
    DialogReply,
    DialogSubmission,
    SlashCommand,
)
from gateway.payloads import PayloadError
from gateway.routing import Registry, Surface
from gateway.signing import (
    DialogState,
    OutdatedPayload,
    ReplayGuard,
    SignatureError,
    Signer,
    TriggerGuard,
    spends_own_key_marked,
)

log = logging.getLogger("command_center.http")

MAX_BODY_BYTES = 1024 * 1024
#: The kind of single-use key a dialog state's nonce is recorded as.
DIALOG_NONCE = "dialog"
#: What a click on a button signed in a previous format gets when no plugin answers it.
OUTDATED_BUTTON = "This message is out of date (Command Center has been updated). Run the command again."
#: What a dialog opened before an update gets on submission: nothing in it is acted on.
OUTDATED_DIALOG = ("This dialog is out of date (Command Center has been updated), so nothing was changed. "
                   "Close it and open it again.")
# Mattermost gives up on an integration after 30 s; answer well before that.
ANSWER_WITHIN_S = 20.0
# Per-request notes for the log line.
WHAT = web.RequestKey("what", str)
WHO = web.RequestKey("who", str)
OUTCOME = web.RequestKey("outcome", str)
_LIST_FIELDS = ("user_mentions", "user_mentions_ids", "channel_mentions", "channel_mentions_ids")
# Command fields taken from the request (via_dm and file_ids are never set by a caller).
_SCALAR_FIELDS = tuple(key for key in SlashCommand.model_fields if key not in _LIST_FIELDS + ("via_dm", "file_ids"))


class CommandTokens:
    """The slash command token Mattermost issued for each team the command is registered on."""

    def __init__(self) -> None:
        self._by_team: dict[str, str] = {}

    def set(self, team_id: str, token: str) -> None:
        self._by_team[team_id] = token

    def teams(self) -> list[str]:
        return list(self._by_team)

    def known(self, token: str) -> bool:
        """Whether ``token`` is the command token of any team."""
        found = False
        for expected in self._by_team.values():
            found |= hmac.compare_digest(expected.encode(), token.encode())
        return found

    def matches(self, team_id: str, token: str) -> bool:
        expected = self._by_team.get(team_id)
        # Compare against something even for unknown teams so timing says nothing.
        return hmac.compare_digest((expected or "\x00" * 26).encode(), token.encode()) and expected is not None


@dataclass(frozen=True)
class InboundLimits:
    """What one caller may cost the server; anything beyond is refused, never waited for."""

    max_body_bytes: int = MAX_BODY_BYTES
    # A slash command form has ~15 fields plus one per mention; thousands are an attack.
    max_form_fields: int = 1000
    # The whole body must arrive within this (a body that never completes is answered 408).
    body_timeout_s: float = 10.0
    # A connection idle this long is closed, including one still trickling its first request's
    # headers (aiohttp's keep-alive timer runs from the connection's start).
    idle_timeout_s: float = 30.0
    # After refusing a request whose body is still arriving, discard it for at most this long
    # (so the caller can read the answer) before closing the connection.
    linger_s: float = 2.0
    max_line_bytes: int = 8190
    max_headers: int = 64


class _Refused(Exception):
    """A request rejected while its body was read or parsed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def _reject(request: web.Request, status: int, reason: str) -> web.Response:
    request[OUTCOME] = f"rejected: {reason}"
    return _json({"error": reason}, status)


class InboundServer:
    """aiohttp application that authenticates Mattermost's callbacks and dispatches them."""

    def __init__(self, registry: Registry, signer: Signer, tokens: CommandTokens,
                 health: Callable[[], Awaitable[tuple[bool, dict[str, Any]]]],
                 *, replays: ReplayGuard | None = None, trigger_guard: TriggerGuard | None = None,
                 answer_within_s: float = ANSWER_WITHIN_S, limits: InboundLimits | None = None,
                 channel_teams: ChannelTeams | None = None, trigger: str = DEFAULT_TRIGGER,
                 alerts: AlertSink | None = None, alert_secrets: dict[str, str] | None = None) -> None:
        self.limits = limits or InboundLimits()
        #: Where alert notifications go (services/alerts.py), and each source's secret (settings).
        self.alerts = alerts
        self.alert_secrets = dict(alert_secrets or {})
        # Binds every request's channel to its team (gateway/binding.py); None only in unit tests.
        self.channel_teams = channel_teams
        self.registry = registry
        #: The slash command's trigger (``settings.command_trigger``), for the commands replies name.
        self.trigger = trigger
        self.signer = signer
        self.tokens = tokens
        self.health = health
        self._health_check: asyncio.Future[tuple[bool, dict[str, Any]]] | None = None
        self.replays = replays or (trigger_guard.replays if trigger_guard else ReplayGuard())
        self.triggers = trigger_guard or TriggerGuard(replays=self.replays)
        self.answer_within_s = answer_within_s
        self.app = web.Application(client_max_size=self.limits.max_body_bytes, middlewares=[self._log_and_guard])
        self.app.router.add_route("POST", Route.COMMAND.value, self.handle_command)
        self.app.router.add_route("GET", Route.COMMAND.value, self.handle_command)
        self.app.router.add_post(Route.ACTION.value, self.handle_action)
        self.app.router.add_post(Route.DIALOG.value, self.handle_dialog)
        self.app.router.add_get(Route.HEALTH.value, self.handle_health)
        for route, source in ((Route.ALERTS_ALERTMANAGER, AlertSource.ALERTMANAGER),
                              (Route.ALERTS_GRAFANA, AlertSource.GRAFANA), (Route.ALERTS_GENERIC, AlertSource.GENERIC)):
            self.app.router.add_post(route.value, self._alerts_handler(source))
        self._runner: web.AppRunner | None = None
        #: Requests being handled right now (the store's ``busy_when`` probe: several at once).
        self.requests_in_flight = 0
        self.port = 0

    async def start(self, host: str, port: int) -> int:
        """Bind and serve; returns the port really bound (useful with port 0)."""
        limits = self.limits
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                     keepalive_timeout=limits.idle_timeout_s, lingering_time=limits.linger_s,
                                     max_line_size=limits.max_line_bytes,
                                     max_field_size=limits.max_line_bytes, max_headers=limits.max_headers,
                                     logger=_ProtocolLog(log, {}))
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        addresses = self._runner.addresses  # (host, port, ...) of each socket really bound
        self.port = int(addresses[0][1]) if addresses else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # Middleware: one line per request; no traceback ever reaches the caller ------------------

    @web.middleware
    async def _log_and_guard(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        started = time.perf_counter()
        request[WHAT] = request.path
        request[WHO] = "-"
        request[OUTCOME] = "ok"
        self.requests_in_flight += 1
        try:
            response = await handler(request)
        except _Refused as exc:
            response = _reject(request, exc.status, exc.reason)
            # The rest of the body may still be on its way (or never come): end the connection.
            response.force_close()
        except web.HTTPException as exc:
            request[OUTCOME] = f"rejected: {exc.reason}"
            response = _json({"error": exc.reason}, exc.status)
            if exc.status == 413:
                response.force_close()
        except Exception:  # a bug: log it, answer plainly
            log.exception("unhandled error for %s %s", request.method, request.path)
            request[OUTCOME] = "error"
            response = _json({"error": "internal error"}, 500)
        finally:
            self.requests_in_flight -= 1
        elapsed_ms = (time.perf_counter() - started) * 1000
        if request.path != Route.HEALTH.value or response.status != 200:
            log.info("%s user=%s status=%d %.1fms %s", request[WHAT], request[WHO], response.status,
                     elapsed_ms, request[OUTCOME])
        return response

    async def _read_body(self, request: web.Request, content_type: str) -> bytes:
        """The whole body, within the time and size limits, of the one content type Mattermost sends."""
        if request.content_type != content_type:
            raise _Refused(415, f"the body must be {content_type}")
        try:
            async with asyncio.timeout(self.limits.body_timeout_s):
                return await request.read()
        except TimeoutError:
            raise _Refused(408, "the request body did not arrive in time") from None
        except (ConnectionError, HttpProcessingError, web.HTTPBadRequest) as exc:  # the client left or sent a broken body
            raise _Refused(400, f"incomplete request body ({type(exc).__name__})") from None

    async def _read_json(self, request: web.Request) -> dict[str, Any] | None:
        raw = await self._read_body(request, "application/json")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        return body if isinstance(body, dict) else None

    async def _read_form(self, request: web.Request) -> MultiDict[str]:
        raw = await self._read_body(request, "application/x-www-form-urlencoded")
        try:
            pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict",
                              max_num_fields=self.limits.max_form_fields)
        except ValueError as exc:  # includes UnicodeDecodeError: bytes that are not UTF-8
            raise _Refused(400, "the command request body is not valid form data"
                           if "fields" not in str(exc) else "too many form fields") from None
        return MultiDict(pairs)

    async def _answer(self, request: web.Request, work: Awaitable[Any], on_error: Callable[[str], Any],
                      on_slow: Callable[[], Any]) -> Any:
        """Run a handler; map its failure to a user message; never keep Mattermost waiting too long.

        A handler still running at the deadline is not cancelled (it may be committing): it
        finishes in the background and the user is told the result will appear in the channel.
        """
        task = asyncio.ensure_future(work)
        done, _ = await asyncio.wait({task}, timeout=self.answer_within_s)
        if not done:
            request[OUTCOME] = "slow: answered before the handler finished"
            task.add_done_callback(_log_background_failure)
            return on_slow()
        try:
            return task.result()
        except Exception as error:  # domain refusals and Mattermost failures become words
            request[OUTCOME] = f"refused: {type(error).__name__}: {error}"[:300]
            return on_error(user_message(error, self.trigger))

    async def _unbound(self, channel_id: str, team_id: str, *, signed: bool = False) -> str:
        """Why a request for ``channel_id`` in ``team_id`` is refused ("" when its channel is the team's).

        ``signed``: the channel is bound by the bot's signature already (see gateway/binding.py)."""
        if self.channel_teams is None:
            return ""
        try:
            return await self.channel_teams.mismatch(channel_id, team_id, ask=not signed) or ""
        except MattermostError as error:  # fail closed: nothing runs unbound
            log.warning("could not look up the team of channel %s: %s", channel_id, error)
            return "the channel's team could not be checked; try again"

    # Slash commands ----------------------------------------------------------------------

    async def handle_command(self, request: web.Request) -> web.Response:
        request[WHAT] = "slash"
        header = request.headers.get("Authorization", "")
        # Mattermost sends the token as a header too: refuse strangers before reading their body.
        if header[:6].lower() == "token " and not self.tokens.known(header[6:].strip()):
            return _reject(request, 401, "invalid command token")
        fields = await self._read_form(request) if request.method == "POST" else request.query
        # Only the fields a command has are looked at, however many the caller sent.
        form: dict[str, Any] = {key: fields.get(key) for key in _SCALAR_FIELDS if key in fields}
        for key in _LIST_FIELDS:
            if key in fields:
                form[key] = tuple(str(value) for value in fields.getall(key))
        token = str(form.get("token") or "")
        if header[:6].lower() == "token ":
            token = token or header[6:].strip()
            if not hmac.compare_digest(header[6:].strip().encode(), token.encode()):
                return _reject(request, 401, "command token mismatch")
        if not token or not self.tokens.matches(str(form.get("team_id") or ""), token):
            return _reject(request, 401, "invalid command token")
        try:
            command = SlashCommand.model_validate(form)
        except ValidationError:
            return _reject(request, 400, "the command request is missing required fields")
        request[WHO] = f"{command.user_name or '?'}({command.user_id})"
        request[WHAT] = f"slash {command.command or '/'} {command.subcommand or '(none)'}"
        # The token is the team's: the channel must be that team's too (or a DM, which has none).
        refusal = await self._unbound(command.channel_id, command.team_id)
        if refusal:
            return _reject(request, 401, refusal)
        try:
            await self.triggers.check(command.trigger_id, command.user_id)
        except SignatureError as exc:
            return _reject(request, 401, str(exc))
        reply = await self._answer(
            request, self.registry.command(command),
            on_error=lambda message: CommandReply(text=message),
            on_slow=lambda: CommandReply(text="This is taking longer than usual; the result will appear in the channel."),
        )
        return _json(reply.to_json())

    # Button clicks ----------------------------------------------------------------------

    async def handle_action(self, request: web.Request) -> web.Response:
        request[WHAT] = "action"
        body = await self._read_json(request)
        if body is None:
            return _reject(request, 400, "the action request body is not a JSON object")
        user_id, channel_id = body.get("user_id"), body.get("channel_id")
        if not isinstance(user_id, str) or not isinstance(channel_id, str) or not user_id or not channel_id:
            return _reject(request, 400, "user_id and channel_id are required")
        outdated: OutdatedPayload | None = None
        try:
            try:
                action, args = self.signer.open_action_context(body.get("context"), channel_id)
            except OutdatedPayload as old:  # a button posted by a previous version
                outdated, action, args = old, old.action, old.old_args
            await self.triggers.check(body.get("trigger_id"), user_id)
            if outdated is None and self.registry.handles(Surface.ACTION, action):
                self.registry.payload(Surface.ACTION, action, args)  # refused like a bad signature
        except (SignatureError, PayloadError) as exc:
            return _reject(request, 401, str(exc))
        context = body.get("context") or {}
        try:
            callback = ActionCallback.model_validate({
                **{k: v for k, v in body.items() if k != "context"},
                "action": action, "args": args,
                "selected_option": context.get("selected_option") if isinstance(context, dict) else None,
            })
        except ValidationError:
            return _reject(request, 400, "the action request has invalid fields")
        request[WHO] = f"{callback.user_name or '?'}({callback.user_id})"
        request[WHAT] = f"action {action}"
        # Mattermost sends the clicked post's channel's team (doPostAction); anything else is forged.
        refusal = await self._unbound(callback.channel_id, callback.team_id, signed=True)
        if refusal:
            return _reject(request, 401, refusal)
        if outdated is not None:
            request[OUTCOME] = "outdated button"
            reply = await self._answer(
                request, self._outdated(callback),
                on_error=lambda message: ActionReply(ephemeral_text=message),
                on_slow=lambda: ActionReply(ephemeral_text=OUTDATED_BUTTON),
            )
            return _json(reply.to_json())
        if not self.registry.handles(Surface.ACTION, action):
            request[OUTCOME] = "unknown action"
            return _json(ActionReply(ephemeral_text="This button is no longer supported. "
                                     f"Type {command(self.trigger, 'help')} to see what you can do.").to_json())
        reply = await self._answer(
            request, self.registry.action(callback),
            on_error=lambda message: ActionReply(ephemeral_text=message),
            on_slow=lambda: ActionReply(ephemeral_text="This is taking longer than usual; the card will update when it is done."),
        )
        return _json(reply.to_json())

    async def _outdated(self, callback: ActionCallback) -> ActionReply:
        reply = await self.registry.outdated(callback)
        return reply if reply is not None else ActionReply(ephemeral_text=OUTDATED_BUTTON)

    # Dialog submissions -------------------------------------------------------------------

    async def handle_dialog(self, request: web.Request) -> web.Response:
        request[WHAT] = "dialog"
        body = await self._read_json(request)
        if body is None:
            return _reject(request, 400, "the dialog request body is not a JSON object")
        if body.get("type") != "dialog_submission":
            return _reject(request, 400, "not a dialog submission")
        callback_id, user_id = body.get("callback_id"), body.get("user_id")
        channel_id = body.get("channel_id") or ""
        if not isinstance(callback_id, str) or not self.registry.handles(Surface.DIALOG, callback_id):
            return _reject(request, 401, "unknown dialog")
        if not isinstance(user_id, str) or not user_id or not isinstance(channel_id, str):
            return _reject(request, 400, "user_id is required")
        try:
            state = self.signer.open_dialog_state(body.get("state"), callback_id, user_id, channel_id)
            self.registry.payload(Surface.DIALOG, callback_id, state.args)  # refused like a bad signature
        except OutdatedPayload:  # opened before an update: nothing to act on, and the user can see why
            request[OUTCOME] = "outdated dialog"
            return _json(DialogReply(error=OUTDATED_DIALOG).to_json())
        except (SignatureError, PayloadError) as exc:
            return _reject(request, 401, str(exc))
        cancelled = body.get("cancelled") is True
        submission = body.get("submission")
        if not cancelled and not isinstance(submission, dict):
            return _reject(request, 400, "submission must be an object")
        try:
            form = DialogSubmission.model_validate({
                "callback_id": callback_id, "user_id": user_id, "channel_id": channel_id,
                "team_id": body.get("team_id") or "", "submission": submission or {},
                "cancelled": cancelled, "args": state.args,
            })
        except ValidationError:
            return _reject(request, 400, "the dialog submission has invalid fields")
        request[WHO] = user_id
        request[WHAT] = f"dialog {callback_id}{' (cancelled)' if cancelled else ''}"
        refusal = await self._unbound(form.channel_id, form.team_id, signed=True) if form.channel_id else ""
        if refusal:
            return _reject(request, 401, refusal)
        if spends_own_key_marked(self.registry.dialogs.get(callback_id)):
            return await self._dialog_spending_own_key(request, form, state)
        # Claimed before the handler runs, atomically in the store: of two copies of one submission
        # (a replay, a double click, a copy sent after a restart) only one ever runs.
        if not await self.replays.claim(DIALOG_NONCE, state.nonce, state.expires_at_ms):
            return _reject(request, 401, "this dialog was already submitted; open it again to make another change")
        closes = False
        try:
            reply = await self._answer(
                request, self.registry.dialog(form),
                on_error=lambda message: DialogReply(error=message),
                on_slow=lambda: DialogReply(),
            )
            closes = reply.closes
        finally:
            if not closes:  # the dialog stays open with errors: the same state may be submitted again
                await self.replays.release(DIALOG_NONCE, state.nonce)
        return _json(reply.to_json())

    async def _dialog_spending_own_key(self, request: web.Request, form: DialogSubmission,
                                       state: DialogState) -> web.Response:
        """A handler that claims the nonce in its own first write (gateway.signing.spends_own_key): one
        commit fewer, and still only one copy of a submission gets past that write."""
        slow: list[bool] = []

        def on_slow() -> DialogReply:
            slow.append(True)
            return DialogReply()

        async with self.replays.deferred(DIALOG_NONCE, state.nonce, state.expires_at_ms) as pending:
            reply = await self._answer(request, self.registry.dialog(form),
                                       on_error=lambda message: DialogReply(error=message),
                                       on_slow=on_slow)
            if pending.spent is False:
                return _reject(request, 401, "this dialog was already submitted; open it again to make another change")
            if not reply.closes:
                if pending.spent:
                    await self.replays.release(DIALOG_NONCE, state.nonce)
            elif not slow and pending.spent is None and not await pending.spend():
                # It wrote nothing (a cancellation): the key is spent now, as any closed dialog's is.
                return _reject(request, 401, "this dialog was already submitted; open it again to make another change")
        return _json(reply.to_json())

    # Alerts from monitoring (README "Alerts") -------------------------------------------------

    def _alerts_handler(self, source: AlertSource) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await self.handle_alerts(request, source)
        return handle

    async def handle_alerts(self, request: web.Request, source: AlertSource) -> web.Response:
        """One notification: size-capped (413), authenticated with the source's own secret (401), parsed
        (400 naming the field), then recorded; posting happens after the answer (services/alerts.py).
        Nothing is recorded for any 4xx."""
        request[WHAT] = f"alerts {source.value}"
        secret = self.alert_secrets.get(source.value)
        if self.alerts is None or not secret:
            return _reject(request, 404, f"alerts from {source.value} are not accepted here: set "
                                         f"CC_ALERTS_{source.value.upper()}_SECRET (README \"Alerts\")")
        raw = await self._read_body(request, "application/json")
        if not authenticated(secret, request.headers, raw):
            return _reject(request, 401, "missing or wrong secret: send it as `Authorization: Bearer <secret>` or "
                                         "sign the body (X-Command-Center-Signature: sha256=<hex HMAC-SHA256>)")
        request[WHO] = source.value
        try:
            body = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError):
            return _reject(request, 400, "the body is not JSON (UTF-8); nothing was recorded")
        try:
            alerts = parse_notification(source, body)
        except AlertPayloadError as error:
            return _reject(request, 400, str(error))
        summary = await self.alerts.ingest(source.value, alerts)
        request[OUTCOME] = f"ok: {len(alerts)} alerts"
        return _json({"status": "ok", **summary})

    # Health ------------------------------------------------------------------------------

    async def handle_health(self, request: web.Request) -> web.Response:
        """Unauthenticated, so requests that arrive while a check runs share it (a flood is one store
        read and one ping at a time, not one per request); nothing is cached: the next check starts
        after this one ends."""
        check = self._health_check
        if check is None or check.done():
            check = self._health_check = asyncio.ensure_future(self.health())
        healthy, details = await asyncio.shield(check)  # one caller leaving does not cancel the others'
        return _json({"status": "ok" if healthy else "unhealthy", **details}, 200 if healthy else 503)


class _ProtocolLog(logging.LoggerAdapter):
    """aiohttp logs every malformed HTTP request with a traceback; a flood of them must not flood
    the log, so those become one line.  Anything else it reports keeps its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            self.info("malformed HTTP request from %s rejected: %s", args[0] if args else "?",
                      " ".join(str(exc_info).split())[:200])
        else:
            self.error(msg, *args, exc_info=exc_info, **kwargs)


def _log_background_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a slow handler failed after its request was answered", exc_info=task.exception())
