"""The backstage's web application (issue 19): the pages under ``/backstage`` and the API under ``/api/v1``.

Both are aiohttp sub-applications mounted on the bot's own HTTP server (gateway/inbound.py), so
they are served at ``CC_PUBLIC_URL``. What every request goes through, outermost first:

1. **errors** — a refusal becomes a page (or JSON under ``/api/v1``) that says what to do; a redirect
   stays a redirect; a bug is logged and answered plainly. Domain errors map to statuses:
   ``NotFound`` and ``PermissionDenied`` on a thing → 404 (the same answer for "missing" and "not
   yours", so nothing leaks), ``ValidationError`` → 400.
2. **headers** — a strict Content-Security-Policy (nothing but our own stylesheet and images; no
   script at all unless a route says so), no framing, no sniffing, no referrer to other sites, no caching.
3. **who** — the session cookie (signed, HttpOnly, SameSite=Lax; services/webauth.py) or, for the
   API, ``Authorization: Bearer cct_…``. A page without one redirects to the login page; the API
   answers 401. Only routes registered with ``public=True`` are reachable signed out.
4. **csrf** — every unsafe request made with a session cookie carries the session's CSRF token
   (form field ``csrf`` or header ``X-CSRF-Token``) and, when the browser sends one, an ``Origin``
   that is ours; else 403. Bearer-token requests carry no cookie, so they need none.

Slices add their routes with :meth:`Backstage.page` / :meth:`Backstage.api` from their own module's
``setup(backstage, ...)`` (bot.py calls each).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import web

from domain.errors import DomainError, NotFound, PermissionDenied, ValidationError
from domain.models import CredentialKind, WebCredential
from gateway.errors import MattermostError, user_message
from gateway.ids import API_PREFIX, BACKSTAGE_PREFIX
from services.context import BotContext
from services.webauth import LoginRefused, WebAuth

log = logging.getLogger("command_center.backstage")

HERE = Path(__file__).resolve().parent
COOKIE = "cc_backstage"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
#: The policy of every page: our own stylesheet and images, nothing else, no script.
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: How long what Mattermost said about a signed-in person (username, still active) is trusted (ms).
PERSON_TTL_MS = 60_000
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Viewer:
    """Who is asking, as the backstage knows them: a Mattermost user id and the credential used."""

    user_id: str
    credential: WebCredential
    #: The Mattermost username, for the page header ("" if Mattermost could not be asked).
    username: str = ""

    @property
    def csrf(self) -> str:
        return self.credential.csrf

    @property
    def by_token(self) -> bool:
        return self.credential.kind is CredentialKind.API_TOKEN


VIEWER = web.RequestKey("viewer", Viewer)
_PUBLIC = "cc_backstage_public"


def viewer(request: web.Request) -> Viewer:
    """The signed-in viewer of a non-public route (the middleware has made sure there is one)."""
    return request[VIEWER]


@dataclass
class Backstage:
    """The two sub-applications and what their handlers share."""

    ctx: BotContext
    auth: WebAuth
    pages: web.Application = field(init=False)
    api_app: web.Application = field(init=False)
    templates: jinja2.Environment = field(init=False)
    #: Where the backstage's navigation links (label, path under /backstage), in order; slices add theirs.
    nav: list[tuple[str, str]] = field(default_factory=list)
    #: The path that starts "Sign in with Mattermost" (OAuth), when OAuth is configured; None: login links only.
    oauth_start_url: str | None = None
    #: How long an unsafe request's whole body may take to arrive (a body trickled byte by byte would
    #: hold a handler forever: slowloris); bot.py passes InboundLimits.body_timeout_s.
    body_timeout_s: float = 10.0
    #: user id → (username, active, when asked): who a credential belongs to, asked again after PERSON_TTL_MS.
    _people: dict[str, tuple[str, bool, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates.globals.update(prefix=BACKSTAGE_PREFIX, trigger=self.ctx.settings.command_trigger)
        # The headers outermost: a refusal page (rendered by errors) carries the same policy as any page.
        self.pages = web.Application(middlewares=[_headers, self._errors(html=True), self._who(html=True),
                                                  self._body, self._csrf])
        self.api_app = web.Application(middlewares=[_headers, self._errors(html=False), self._who(html=False),
                                                    self._body, self._csrf])
        self.pages.router.add_static("/static/", HERE / "static", append_version=False)

    # Registration -----------------------------------------------------------------------------

    def page(self, method: str, path: str, handler: Handler, *, public: bool = False, name: str | None = None) -> None:
        """A page route under /backstage (``path`` relative to it, e.g. ``/incidents``)."""
        if public:
            setattr(handler, _PUBLIC, True)
        self.pages.router.add_route(method, path, handler, name=name)

    def api(self, method: str, path: str, handler: Handler, *, public: bool = False) -> None:
        """An API route under /api/v1 (``path`` relative to it, e.g. ``/incidents``)."""
        if public:
            setattr(handler, _PUBLIC, True)
        self.api_app.router.add_route(method, path, handler)

    def mount(self, root: web.Application) -> None:
        root.add_subapp(BACKSTAGE_PREFIX, self.pages)
        root.add_subapp(API_PREFIX, self.api_app)

    # URLs ---------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The public address of the bot's server (CC_PUBLIC_URL, or the bound address)."""
        return self.ctx.callback_base_url

    def url(self, path: str) -> str:
        """The absolute URL of a backstage path (``/incidents/x`` → ``https://bot/backstage/incidents/x``)."""
        return f"{self.base_url}{BACKSTAGE_PREFIX}{path}"

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.base_url).scheme == "https"

    # Rendering ----------------------------------------------------------------------------------

    def render(self, request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
        """A page from ``backstage/templates/<template>``; every page gets the viewer, its CSRF token and
        the navigation."""
        who = request.get(VIEWER)
        values = {"viewer": who, "csrf": who.csrf if who else "", "nav": self.nav, "path": request.path,
                  "viewer_name": f"@{who.username}" if who and who.username else ""}
        values.update(context)
        body = self.templates.get_template(template).render(values)
        return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")

    async def username(self, user_id: str) -> str:
        """A user's Mattermost username ("" if Mattermost cannot be asked and it is not known)."""
        try:
            return (await self._person(user_id))[0]
        except MattermostError:
            return ""

    async def _person(self, user_id: str) -> tuple[str, bool]:
        """(username, active) of a user, asked at most once per :data:`PERSON_TTL_MS`; when Mattermost
        cannot be asked, the last answer (else MattermostError)."""
        now = self.ctx.clock()
        known = self._people.get(user_id)
        if known is not None and now - known[2] < PERSON_TTL_MS:
            return known[0], known[1]
        try:
            user = await self.ctx.client.get_user(user_id)
        except MattermostError:
            if known is None:
                raise
            return known[0], known[1]
        if len(self._people) >= 10_000:
            self._people.clear()
        self._people[user_id] = (user.username, user.active and not user.is_bot, now)
        return user.username, user.active and not user.is_bot

    # Sessions -----------------------------------------------------------------------------------

    def signed_in(self, response: web.StreamResponse, secret: str) -> web.StreamResponse:
        """Give the browser a session cookie (after a login link or OAuth)."""
        response.set_cookie(COOKIE, self.auth.cookie_value(secret), path="/", httponly=True, samesite="Lax",
                            secure=self.secure_cookies, max_age=None)
        return response

    def signed_out(self, response: web.StreamResponse) -> web.StreamResponse:
        response.del_cookie(COOKIE, path="/")
        return response

    def safe_next(self, target: str | None) -> str:
        """Where to go after logging in: a path of ours (never another site), else the incident list."""
        if target and target.startswith(BACKSTAGE_PREFIX + "/") and not target.startswith("//") \
                and "\\" not in target and all(c.isprintable() and c != " " for c in target):
            return target
        return BACKSTAGE_PREFIX + "/"

    # Middleware ---------------------------------------------------------------------------------

    def _errors(self, *, html: bool) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
            try:
                return await handler(request)
            except web.HTTPException as exc:
                if 300 <= exc.status < 400:
                    return web.Response(status=exc.status, headers={"Location": exc.headers.get("Location", "/")})
                return self._refusal(request, exc.status, exc.text if exc.text and not exc.text.startswith(
                    f"{exc.status}:") else _STATUS_WORDS.get(exc.status, exc.reason), html=html)
            except (NotFound, PermissionDenied):
                return self._refusal(request, 404, _STATUS_WORDS[404], html=html)
            except LoginRefused as error:
                return self._refusal(request, 400, str(error), html=html)
            except ValidationError as error:
                return self._refusal(request, 400, self.message(error), html=html, field_name=error.field)
            except DomainError as error:
                return self._refusal(request, 409, self.message(error), html=html)
            except MattermostError as error:
                log.warning("Mattermost failed during %s %s: %s", request.method, request.path, error)
                return self._refusal(request, 502, "Mattermost did not answer as expected; try again in a moment.",
                                     html=html)
            except Exception:
                log.exception("backstage error for %s %s", request.method, request.path)
                return self._refusal(request, 500, "Something went wrong on our side; it has been logged.",
                                     html=html)
        return errors

    def message(self, error: BaseException) -> str:
        """What a person is told about ``error``: the chat's words, with the commands it names written for
        the configured trigger (gateway/errors.py)."""
        return user_message(error, self.ctx.settings.command_trigger)

    def _refusal(self, request: web.Request, status: int, message: str, *, html: bool,
                 field_name: str | None = None) -> web.Response:
        if not html:
            body: dict[str, Any] = {"error": message, "status": status}
            if field_name:
                body["field"] = field_name
            return web.json_response(body, status=status)
        return self.render(request, "error.html", status=status, title=_TITLES.get(status, "Refused"),
                           message=message)

    def _who(self, *, html: bool) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def who(request: web.Request, handler: Handler) -> web.StreamResponse:
            credential = await self._credential(request, allow_token=not html)
            if credential is not None:
                # A person deactivated in Mattermost is signed out here too, as Mattermost ends their own
                # sessions (app/user.go UpdateActive → userDeactivated → RevokeAllSessions): the session is
                # ended, a token refused while the account is inactive.
                username, active = await self._person(credential.user_id)
                if active:
                    request[VIEWER] = Viewer(credential.user_id, credential, username)
                elif credential.kind is CredentialKind.SESSION:
                    await self.auth.end_session(credential)
            if VIEWER not in request and not _is_public(request, handler):
                if not html:
                    return web.json_response({"error": "Sign in: send a personal API token as "
                                              "“Authorization: Bearer cct_…” (create one on the backstage's "
                                              "Tokens page).", "status": 401}, status=401,
                                             headers={"WWW-Authenticate": 'Bearer realm="command-center"'})
                if request.method in SAFE_METHODS:
                    raise web.HTTPSeeOther(f"{BACKSTAGE_PREFIX}/login?next={_quote(request.path_qs)}")
                return self._refusal(request, 401, "You are signed out. Sign in again and retry.", html=True)
            return await handler(request)
        return who

    async def _credential(self, request: web.Request, *, allow_token: bool) -> WebCredential | None:
        header = request.headers.get("Authorization", "")
        if allow_token and header[:7].lower() == "bearer ":
            return await self.auth.token(header[7:].strip())
        cookie = request.cookies.get(COOKIE)
        return await self.auth.session(cookie) if cookie else None

    @web.middleware
    async def _body(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Read an unsafe request's body within :attr:`body_timeout_s` (aiohttp keeps what it read, so
        handlers' ``post()``/``json()`` get it at once); a body that does not arrive in time is answered 408
        and the connection closed, as the inbound routes do (gateway/inbound.py)."""
        if request.method not in SAFE_METHODS and request.can_read_body:
            try:
                async with asyncio.timeout(self.body_timeout_s):
                    if request.content_type in _FORM_TYPES:
                        await request.post()
                    else:
                        await request.read()
            except TimeoutError:
                response = self._refusal(request, 408, "The request took too long to arrive; nothing was changed. "
                                         "Try again.", html=request.path.startswith(BACKSTAGE_PREFIX))
                response.force_close()
                return response
        return await handler(request)

    @web.middleware
    async def _csrf(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        who = request.get(VIEWER)
        if request.method in SAFE_METHODS or (who is not None and who.by_token):
            return await handler(request)
        # Signed out too (the login link's POST): another site must not sign this browser in as
        # someone else (login CSRF), so the origin is checked before anything else.
        if not self._same_origin(request):
            raise web.HTTPForbidden(text="This request came from another site, so nothing was changed.")
        if who is not None:
            sent = request.headers.get(CSRF_HEADER)
            if sent is None and request.content_type in _FORM_TYPES:
                form = await request.post()
                value = form.get(CSRF_FIELD)
                sent = value if isinstance(value, str) else None
            if not sent or not hmac.compare_digest(sent.encode(), who.csrf.encode()):
                raise web.HTTPForbidden(text="This form has expired or did not come from this page, so nothing "
                                        "was changed. Reload the page and try again.")
        return await handler(request)

    def _same_origin(self, request: web.Request) -> bool:
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return False  # the browser itself says another site (or a sibling subdomain) sent it
        origin = request.headers.get("Origin")
        if origin is None or not self.base_url:
            return True  # no Origin (older browsers, curl): the CSRF token alone decides
        ours = urlsplit(self.base_url)
        theirs = urlsplit(origin)
        return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)


def see_other(location: str) -> web.Response:
    """A 303 redirect (after a form: the browser then GETs ``location``)."""
    return web.Response(status=303, headers={"Location": location})


def _is_public(request: web.Request, handler: Handler) -> bool:
    info = request.match_info
    route_handler = info.handler if info is not None else handler
    return bool(getattr(route_handler, _PUBLIC, False)) or request.path.startswith(BACKSTAGE_PREFIX + "/static/")


def _quote(path: str) -> str:
    from urllib.parse import quote
    return quote(path, safe="/")


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    # same-origin, not no-referrer: under no-referrer Chromium sends "Origin: null" with our own forms.
    headers["Referrer-Policy"] = "same-origin"
    headers.setdefault("Cache-Control", "no-store")
    return response


_STATUS_WORDS: Mapping[int, str] = {
    400: "The request was not understood.",
    401: "Sign in first.",
    403: "You may not do that.",
    404: "There is nothing here, or you may not see it. Check the link, or ask the incident's commander to "
         "add you to its channel.",
    405: "That does not work here.",
    413: "That is too large.",
}
_TITLES: Mapping[int, str] = {400: "Not accepted", 401: "Signed out", 403: "Refused", 404: "Not found",
                              409: "Not possible", 500: "Error", 502: "Mattermost unavailable"}
