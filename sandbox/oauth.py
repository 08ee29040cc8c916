"""Mattermost as an OAuth 2.0 provider, and the browser sign-in it needs (issue 19).

What the real server does, function by function (server/channels/…):

- **Apps** — api4/oauth.go ``createOAuthApp`` / ``getOAuthApps`` / ``getOAuthApp`` / ``getOAuthAppInfo``
  and app/oauth.go ``CreateOAuthApp``: registering needs ``manage_oauth`` (system admins by default);
  ``is_trusted`` is kept only for ``manage_system``; the secret is a new id; ``EnableOAuthServiceProvider``
  off → 501. public/model/oauth.go ``OAuthApp.IsValid``: name 1–64, callback URLs (http/https, at
  most 1024 characters together), homepage (http/https, ≤256), description ≤512, icon URL ≤512.
- **Signing in with a password** — the web app's login page posts to api4/user.go ``login``; app
  ``DoLogin`` + ``AttachSessionCookies`` set ``MMAUTHTOKEN`` (HttpOnly), ``MMUSERID`` and ``MMCSRF``.
  Bots may not log in (``api.user.login.bot_login_forbidden.app_error``). The sandbox's ``/login``
  page is a minimal stand-in for the web app's.
- **GET /oauth/authorize** — web/oauth.go ``authorizeOAuthPage``: ``AuthorizeRequest.IsValid``
  (public/model/authorize.go: client id an id, response_type set, redirect_uri an http(s) URL ≤256,
  state ≤1024, scope ≤128) → 400; unknown app → 404; signed out → 302 to
  ``/login?redirect_to=<this request>``; a redirect_uri that is not exactly one of the app's
  callback URLs (``OAuthApp.IsValidRedirectURL``) → 400; a trusted app, or one the person allowed
  before (the ``oauth_app`` preference), → 302 straight to the callback; else the Allow page.
  Errors are ``utils.RenderWebError`` pages that send the browser to ``/error?…``.
- **POST /oauth/authorize** — web/oauth.go ``authorizeOAuthApp`` → app ``AllowOAuthAppAccessToUser``:
  a session that is not itself an OAuth session; JSON ``AuthorizeRequest``; answers
  ``{"redirect": …}`` with ``code`` (``GetOAuthCodeRedirect``: two ids, kept ``AuthCodeExpireTime`` =
  10 minutes) or, for response_type=token, the implicit redirect. The Allow page's form (the web
  app's "Allow" and "Deny" buttons) is answered with the redirect itself; "Deny" goes to the callback
  with ``error=access_denied`` (the web app's ``handleDeny``).
- **POST /oauth/access_token** — web/oauth.go ``getAccessToken`` → app
  ``GetOAuthAccessTokenForCodeFlow``: grant_type authorization_code (code required) or refresh_token
  (refresh_token required), else 400 ``bad_grant``; client id not an id → 400; unknown app → 404
  ``credentials``; wrong secret → 403 ``credentials``; unknown or spent code → 400 ``expired_code``;
  expired code → 403 ``expired_code`` (and it is removed); redirect_uri not the code's → 400
  ``redirect_uri``; a deleted user → 403. A person with a live token for the app gets the same token
  again (``GetPreviousAccessData``); an expired one is replaced (``newSessionUpdateToken``). The code
  is removed once used. The answer is ``model.AccessResponse`` with ``Cache-Control: no-store``; the
  access token is a session (``newSession``: ``SessionLengthSSOInHours``, 30 days) accepted as
  ``Authorization: Bearer`` by every /api/v4 route.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from aiohttp import web

from . import errors
from .errors import AppError
from .httputil import caller, json_response, read_json
from .ids import is_valid_id, new_id, now_ms
from .keys import SB_KEY

if TYPE_CHECKING:
    from .app import Sandbox

#: public/model/authorize.go AuthCodeExpireTime (seconds).
AUTH_CODE_EXPIRE_S = 10 * 60
#: ServiceSettings.SessionLengthSSOInHours and SessionLengthWebInHours defaults (30 days).
SSO_SESSION_HOURS = 720
WEB_SESSION_HOURS = 720
DEFAULT_SCOPE = "user"
#: The web app's pages the sandbox stands in for (HTML, outside the REST contract; not recorded).
WEB_PAGES = frozenset({"/login", "/error", "/oauth/authorize"})


@dataclass
class Session:
    """A session made here (a password login or an OAuth access token); seed tokens have none."""

    token: str
    user_id: str
    csrf: str
    expires_at: int
    is_oauth: bool = False


@dataclass
class AuthData:
    client_id: str
    user_id: str
    code: str
    create_at: int
    redirect_uri: str
    state: str
    scope: str

    def expired(self, now: int) -> bool:
        return now > self.create_at + AUTH_CODE_EXPIRE_S * 1000


@dataclass
class AccessData:
    client_id: str
    user_id: str
    token: str
    refresh_token: str
    redirect_uri: str
    expires_at: int
    scope: str


@dataclass
class OAuthState:
    """The provider's records (in memory, like the rest of the sandbox)."""

    enabled: bool = True
    apps: dict[str, dict] = field(default_factory=dict)
    codes: dict[str, AuthData] = field(default_factory=dict)
    access: dict[tuple[str, str], AccessData] = field(default_factory=dict)  # (user, client) -> data
    sessions: dict[str, Session] = field(default_factory=dict)
    authorized: set[tuple[str, str]] = field(default_factory=set)  # (user, client): the oauth_app preference

    def live_session(self, token: str, now: int) -> Session | None:
        session = self.sessions.get(token)
        return session if session is not None and now <= session.expires_at else None


def _sb(request: web.Request) -> Sandbox:
    return request.app[SB_KEY]


def _valid_http_url(value: object) -> bool:
    """public/model/utils.go ``IsValidHTTPURL``: http:// or https:// with something after it."""
    if not isinstance(value, str) or not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _disabled(where: str) -> AppError:
    return AppError(501, f"api.oauth.{where}.app_error",
                    "The system admin has turned off OAuth2 Service Provider.")


# ---------------------------------------------------------------------- sessions


def open_session(sb: Sandbox, user_id: str, *, hours: int, is_oauth: bool) -> Session:
    """A new session for ``user_id``; its token is accepted wherever a token is (``world.tokens``)."""
    session = Session(token=new_id(), user_id=user_id, csrf=new_id(),
                      expires_at=now_ms() + hours * 3_600_000, is_oauth=is_oauth)
    sb.oauth.sessions[session.token] = session
    sb.world.tokens[session.token] = user_id
    return session


def end_session(sb: Sandbox, token: str) -> None:
    sb.oauth.sessions.pop(token, None)
    sb.world.tokens.pop(token, None)


def _cookie_session(request: web.Request) -> Session | None:
    sb = _sb(request)
    token = request.cookies.get("MMAUTHTOKEN", "")
    return sb.oauth.live_session(token, now_ms()) if token else None


# ---------------------------------------------------------------------- apps (api4/oauth.go)


def _check_app(app: dict) -> None:
    """public/model/oauth.go ``OAuthApp.IsValid``."""
    def invalid(what: str) -> AppError:
        return AppError(400, f"model.oauth.is_valid.{what}.app_error", f"Invalid {what.replace('_', ' ')}.")
    name = app.get("name")
    if not isinstance(name, str) or not name or len(name) > 64:
        raise invalid("name")
    callbacks = app.get("callback_urls")
    if not isinstance(callbacks, list) or not callbacks or len(" ".join(map(str, callbacks))) + 2 > 1024:
        raise invalid("callback")
    if not all(_valid_http_url(url) for url in callbacks):
        raise invalid("callback")
    homepage = app.get("homepage")
    if not isinstance(homepage, str) or not homepage or len(homepage) > 256 or not _valid_http_url(homepage):
        raise invalid("homepage")
    description = app.get("description", "")
    if not isinstance(description, str) or len(description) > 512:
        raise invalid("description")
    icon = app.get("icon_url", "")
    if not isinstance(icon, str) or (icon and (len(icon) > 512 or not _valid_http_url(icon))):
        raise invalid("icon_url")


async def create_app(request: web.Request) -> web.Response:
    """api4/oauth.go ``createOAuthApp`` + app/oauth.go ``CreateOAuthApp``."""
    sb = _sb(request)
    body = await read_json(request, "oauth_app")
    user = caller(request)
    if not sb.world.has_system_permission(user["id"], "manage_oauth"):
        raise errors.permissions("manage_oauth")
    if not sb.oauth.enabled:
        raise _disabled("register_oauth_app.turn_off")
    trusted = bool(body.get("is_trusted")) and sb.world.has_system_permission(user["id"], "manage_system")
    now = now_ms()
    app = {"id": new_id(), "creator_id": user["id"], "create_at": now, "update_at": now,
           "client_secret": new_id(), "name": body.get("name"), "description": body.get("description", ""),
           "icon_url": body.get("icon_url", ""), "callback_urls": body.get("callback_urls"),
           "homepage": body.get("homepage"), "is_trusted": trusted, "mattermost_app_id": ""}
    _check_app(app)
    sb.oauth.apps[app["id"]] = app
    sb.world.touch()
    return json_response(app, status=201)


async def list_apps(request: web.Request) -> web.Response:
    """api4/oauth.go ``getOAuthApps``: manage_oauth (403 ``api.command.admin_only.app_error``); all apps
    with manage_system_wide_oauth, else the caller's."""
    sb = _sb(request)
    user = caller(request)
    if not sb.world.has_system_permission(user["id"], "manage_oauth"):
        raise AppError(403, "api.command.admin_only.app_error", "Integrations have been limited to admins only.")
    if not sb.oauth.enabled:
        raise _disabled("allow_oauth.turn_off")
    every = sb.world.has_system_permission(user["id"], "manage_system_wide_oauth")
    apps = [a for a in sb.oauth.apps.values() if every or a["creator_id"] == user["id"]]
    return json_response(apps)


def _app_or_404(sb: Sandbox, app_id: str) -> dict:
    if not sb.oauth.enabled:
        raise _disabled("allow_oauth.turn_off")
    app = sb.oauth.apps.get(app_id)
    if app is None:
        raise AppError(404, "app.oauth.get_app.find.app_error", "Unable to find the existing app.")
    return app


async def get_app(request: web.Request) -> web.Response:
    """api4/oauth.go ``getOAuthApp``: manage_oauth; someone else's app needs manage_system_wide_oauth."""
    sb = _sb(request)
    app_id = request.match_info["app_id"]
    if not is_valid_id(app_id):
        raise errors.invalid_url_param("app_id")
    user = caller(request)
    if not sb.world.has_system_permission(user["id"], "manage_oauth"):
        raise errors.permissions("manage_oauth")
    app = _app_or_404(sb, app_id)
    if app["creator_id"] != user["id"] and not sb.world.has_system_permission(user["id"], "manage_system_wide_oauth"):
        raise errors.permissions("manage_system_wide_oauth")
    return json_response(app)


async def get_app_info(request: web.Request) -> web.Response:
    """api4/oauth.go ``getOAuthAppInfo``: any session; the app without its secret (``Sanitize``)."""
    sb = _sb(request)
    app_id = request.match_info["app_id"]
    if not is_valid_id(app_id):
        raise errors.invalid_url_param("app_id")
    return json_response({**_app_or_404(sb, app_id), "client_secret": ""})


# ---------------------------------------------------------------------- web pages

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Mattermost</title><link rel="icon" href="data:,"></head>
<body><main>{body}</main></body></html>
"""


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(text=_PAGE.format(title=html.escape(title), body=body), status=status,
                        content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store", "X-Frame-Options": "SAMEORIGIN"})


def _web_error(error: AppError, kind: str = "") -> web.Response:
    """utils.RenderWebError: a page that sends the browser to ``/error?type=…&message=…``."""
    query = urlencode({**({"type": kind} if kind else {}), "message": error.message})
    target = html.escape(f"/error?{query}")
    return _page("Error", f'<meta http-equiv="refresh" content="0; url={target}">'
                          f'<p id="error">{html.escape(error.message)}</p><p><a href="{target}">Continue</a></p>',
                 status=error.status)


def _redirect(location: str) -> web.Response:
    """A 302 (returned, not raised: the sandbox's middleware answers raised HTTP exceptions as errors)."""
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _safe_redirect_to(value: str) -> str:
    """Only a path on this server (the web app never follows redirect_to elsewhere)."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


async def error_page(request: web.Request) -> web.Response:
    """The web app's ``/error`` route, as a plain page."""
    message = request.query.get("message", "An error occurred.")
    return _page("Error", f'<h1>Error</h1><p id="error">{html.escape(message)}</p>')


async def login_page(request: web.Request) -> web.Response:
    redirect_to = _safe_redirect_to(request.query.get("redirect_to", "/"))
    return _login_form(redirect_to, "")


def _login_form(redirect_to: str, problem: str, status: int = 200) -> web.Response:
    refusal = f'<p id="login-error">{html.escape(problem)}</p>' if problem else ""
    return _page("Log in", f"""<h1>Log in to Mattermost</h1>{refusal}
<form method="post" action="/login">
<input type="hidden" name="redirect_to" value="{html.escape(redirect_to)}">
<label>Email or Username <input id="login-id" name="login_id" autocomplete="username"></label>
<label>Password <input id="login-password" name="password" type="password" autocomplete="current-password"></label>
<button id="login-submit" type="submit">Log in</button>
</form>""", status=status)


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


async def login_submit(request: web.Request) -> web.StreamResponse:
    """The web app's login form → api4/user.go ``login`` → app ``DoLogin`` / ``AttachSessionCookies``."""
    sb = _sb(request)
    form = await request.post()
    login_id = str(form.get("login_id", "")).strip().lower()
    password = str(form.get("password", ""))
    redirect_to = _safe_redirect_to(str(form.get("redirect_to", "/")))
    world = sb.world
    user_id = world.user_by_name.get(login_id) or next(
        (uid for uid, u in world.users.items() if u.get("email", "").lower() == login_id and login_id), "")
    user = world.users.get(user_id) if user_id else None
    expected = world.passwords.get(user_id, "") if user_id else ""
    if user is None or not expected or not hmac.compare_digest(expected, password_hash(password)):
        return _login_form(redirect_to, "Enter a valid email or username and/or password.", status=401)
    if user.get("is_bot"):
        return _login_form(redirect_to, "Bot login is forbidden.", status=403)
    session = open_session(sb, user_id, hours=WEB_SESSION_HOURS, is_oauth=False)
    response = _redirect(redirect_to)
    max_age = WEB_SESSION_HOURS * 3600
    response.set_cookie("MMAUTHTOKEN", session.token, path="/", httponly=True, max_age=max_age, samesite="Lax")
    response.set_cookie("MMUSERID", user_id, path="/", max_age=max_age, samesite="Lax")
    response.set_cookie("MMCSRF", session.csrf, path="/", max_age=max_age, samesite="Lax")
    sb.world.touch()
    return response


# ---------------------------------------------------------------------- authorize (web/oauth.go)


def _authorize_request(values: dict) -> dict[str, str]:
    """public/model/authorize.go ``AuthorizeRequest.IsValid`` on the request's fields."""
    req = {k: str(values.get(k, "") or "") for k in ("response_type", "client_id", "redirect_uri", "scope", "state")}

    def invalid(what: str, message: str) -> AppError:
        return AppError(400, f"model.authorize.is_valid.{what}.app_error", message)
    if not is_valid_id(req["client_id"]):
        raise invalid("client_id", "Invalid client id.")
    if not req["response_type"]:
        raise invalid("response_type", "Invalid response type.")
    uri = req["redirect_uri"]
    if not uri or len(uri) > 256 or not _valid_http_url(uri):
        raise invalid("redirect_uri", "Invalid redirect uri.")
    if len(req["state"]) > 1024:
        raise invalid("state", "Invalid state.")
    if len(req["scope"]) > 128:
        raise invalid("scope", "Invalid scope.")
    return req


def _redirect_mismatch() -> AppError:
    return AppError(400, "api.oauth.allow_oauth.redirect_callback.app_error",
                    "invalid_request: Supplied redirect_uri did not match registered callback_url.")


def _with_query(uri: str, values: dict[str, str]) -> str:
    """The callback with ``values`` set in its query (``GetOAuthCodeRedirect`` keeps the URI's own)."""
    parts = urlsplit(uri)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(values)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def allow(sb: Sandbox, user_id: str, req: dict[str, str]) -> str:
    """app/oauth.go ``AllowOAuthAppAccessToUser``: where the browser goes next."""
    if not sb.oauth.enabled:
        raise _disabled("allow_oauth.turn_off")
    scope = req["scope"] or DEFAULT_SCOPE
    app = sb.oauth.apps.get(req["client_id"])
    if app is None:
        raise AppError(404, "app.oauth.get_app.find.app_error", "Unable to find the existing app.")
    if req["redirect_uri"] not in app["callback_urls"]:
        raise _redirect_mismatch()
    if req["response_type"] == "code":
        code = AuthData(client_id=app["id"], user_id=user_id, code=new_id() + new_id(), create_at=now_ms(),
                        redirect_uri=req["redirect_uri"], state=req["state"], scope=scope)
        sb.oauth.codes[code.code] = code
        target = _with_query(req["redirect_uri"], {"code": code.code, "state": req["state"]})
    elif req["response_type"] == "token":  # GetOAuthImplicitRedirect
        session = open_session(sb, user_id, hours=SSO_SESSION_HOURS, is_oauth=True)
        fragment = urlencode({"access_token": session.token, "token_type": "bearer",
                              "expires_in": str((session.expires_at - now_ms()) // 1000), "scope": scope,
                              "state": req["state"]})
        target = f"{req['redirect_uri']}#{fragment}"
    else:
        return f"{req['redirect_uri']}?error=unsupported_response_type&state={req['state']}"
    sb.oauth.authorized.add((user_id, app["id"]))
    sb.world.touch()
    return target


async def authorize_page(request: web.Request) -> web.StreamResponse:
    """web/oauth.go ``authorizeOAuthPage``."""
    sb = _sb(request)
    if not sb.oauth.enabled:
        return _web_error(AppError(501, "api.oauth.authorize_oauth.disabled.app_error",
                                   "The system admin has turned off OAuth2 Service Provider."))
    try:
        req = _authorize_request(dict(request.query))
    except AppError as error:
        return _web_error(error, "oauth_invalid_param")
    app = sb.oauth.apps.get(req["client_id"])
    if app is None:
        return _web_error(AppError(404, "app.oauth.get_app.find.app_error", "Unable to find the existing app."))
    session = _cookie_session(request)
    if session is None:
        return _redirect("/login?redirect_to=" + quote(request.raw_path, safe=""))
    if req["redirect_uri"] not in app["callback_urls"]:
        return _web_error(_redirect_mismatch(), "oauth_invalid_redirect_url")
    if app["is_trusted"] or (session.user_id, app["id"]) in sb.oauth.authorized:
        try:
            return _redirect(allow(sb, session.user_id, req))
        except AppError as error:
            return _web_error(error)
    hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in req.items())
    return _page("Authorize", f"""<h1 id="authorize-title">{html.escape(app['name'])} would like to access your
Mattermost account</h1>
<p id="authorize-app">{html.escape(app['description'])} ({html.escape(app['homepage'])})</p>
<form method="post" action="/oauth/authorize">{hidden}
<input type="hidden" name="csrf" value="{html.escape(session.csrf)}">
<button id="deny" type="submit" name="decision" value="deny">Deny</button>
<button id="allow" type="submit" name="decision" value="allow">Allow</button>
</form>""")


async def authorize_submit(request: web.Request) -> web.StreamResponse:
    """web/oauth.go ``authorizeOAuthApp`` (JSON, for the web app) and the Allow page's form."""
    sb = _sb(request)
    is_form = request.content_type == "application/x-www-form-urlencoded"
    token = sb.token_from_request(request)
    session = sb.oauth.live_session(token, now_ms()) if token else None
    user = sb.world.user_of_token(token) if token else None
    if user is None or (token in sb.oauth.sessions and session is None):
        raise errors.session_expired()
    if is_form:
        form = await request.post()
        values = {k: str(v) for k, v in form.items()}
        # The web app sends the session's CSRF token as X-CSRF-Token (web/handlers.go checkCSRFToken);
        # the stand-in page has no script, so its form carries it as a field.
        if session is None or not hmac.compare_digest(values.get("csrf", ""), session.csrf):
            raise errors.session_expired()
    else:
        check_cookie_csrf(sb, request, token)  # a cookie session: the web app's CSRF header
        values = await read_json(request, "authorize_request")
    req = _authorize_request(values)
    if session is not None and session.is_oauth:
        raise errors.permissions("edit_other_users, attempted access by oauth app")
    if is_form and values.get("decision") != "allow":
        # The web app's Deny: back to the app with access_denied (only to a registered callback).
        app = sb.oauth.apps.get(req["client_id"])
        if app is None or req["redirect_uri"] not in app["callback_urls"]:
            return _web_error(_redirect_mismatch(), "oauth_invalid_redirect_url")
        return _redirect(_with_query(req["redirect_uri"], {"error": "access_denied", "state": req["state"]}))
    target = allow(sb, user["id"], req)
    if is_form:
        return _redirect(target)
    return json_response({"redirect": target})


# ---------------------------------------------------------------------- access token (web/oauth.go)


def _access_response(access: AccessData, expires_in: int) -> web.Response:
    body = {"access_token": access.token, "token_type": "bearer", "expires_in": expires_in, "scope": "",
            "refresh_token": access.refresh_token, "id_token": ""}
    response = web.Response(body=json.dumps(body).encode(), content_type="application/json")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def _renew(sb: Sandbox, access: AccessData) -> AccessData:
    """app/oauth.go ``newSessionUpdateToken``: the old session ends, a new one and refresh token."""
    end_session(sb, access.token)
    session = open_session(sb, access.user_id, hours=SSO_SESSION_HOURS, is_oauth=True)
    access.token, access.refresh_token, access.expires_at = session.token, new_id(), session.expires_at
    return access


async def access_token(request: web.Request) -> web.Response:
    """web/oauth.go ``getAccessToken`` + app/oauth.go ``GetOAuthAccessTokenForCodeFlow``."""
    sb = _sb(request)
    form = await request.post()
    value = {k: str(form.get(k, "")) for k in ("grant_type", "client_id", "client_secret", "code",
                                                "redirect_uri", "refresh_token")}

    def fail(status: int, what: str, message: str) -> AppError:
        return AppError(status, f"api.oauth.get_access_token.{what}.app_error", message)
    grant = value["grant_type"]
    if grant == "authorization_code":
        if not value["code"]:
            raise fail(400, "missing_code", "invalid_request: Missing code.")
    elif grant == "refresh_token":
        if not value["refresh_token"]:
            raise fail(400, "missing_refresh_token", "invalid_request: Missing refresh_token.")
    else:
        raise fail(400, "bad_grant", "invalid_request: Bad grant_type.")
    if not is_valid_id(value["client_id"]):
        raise fail(400, "bad_client_id", "invalid_request: Bad client_id.")
    if not sb.oauth.enabled:
        raise fail(501, "disabled", "The system admin has turned off OAuth2 Service Provider.")
    app = sb.oauth.apps.get(value["client_id"])
    if app is None:
        raise fail(404, "credentials", "invalid_client: Invalid client credentials.")
    if not hmac.compare_digest(app["client_secret"].encode(), value["client_secret"].encode()):
        raise fail(403, "credentials", "invalid_client: Invalid client credentials.")
    now = now_ms()
    expires_in = SSO_SESSION_HOURS * 3600
    if grant == "refresh_token":
        found = next((a for a in sb.oauth.access.values()
                      if a.refresh_token == value["refresh_token"] and a.client_id == app["id"]), None)
        if found is None:
            raise fail(404, "refresh_token", "invalid_grant: Invalid refresh token.")
        sb.world.touch()
        return _access_response(_renew(sb, found), expires_in)
    code = sb.oauth.codes.get(value["code"])
    if code is None or code.client_id != app["id"]:
        raise fail(400, "expired_code", "invalid_grant: Invalid or expired authorization code.")
    if code.expired(now):
        sb.oauth.codes.pop(code.code, None)
        raise fail(403, "expired_code", "invalid_grant: Invalid or expired authorization code.")
    if code.redirect_uri != value["redirect_uri"]:
        raise fail(400, "redirect_uri", "invalid_request: Supplied redirect_uri does not match authorization "
                                        "code redirect_uri.")
    user = sb.world.users.get(code.user_id)
    if user is None:
        raise fail(404, "internal_user", "server_error: Encountered internal server error while pulling user "
                                         "from database.")
    if user.get("delete_at"):
        raise fail(403, "expired_code", "invalid_grant: Invalid or expired authorization code.")
    previous = sb.oauth.access.get((user["id"], app["id"]))
    if previous is not None and previous.expires_at > now:
        response = _access_response(previous, (previous.expires_at - now) // 1000)
    elif previous is not None:
        response = _access_response(_renew(sb, previous), expires_in)
    else:
        session = open_session(sb, user["id"], hours=SSO_SESSION_HOURS, is_oauth=True)
        access = AccessData(client_id=app["id"], user_id=user["id"], token=session.token, refresh_token=new_id(),
                            redirect_uri=value["redirect_uri"], expires_at=session.expires_at, scope=code.scope)
        sb.oauth.access[(user["id"], app["id"])] = access
        response = _access_response(access, expires_in)
    sb.oauth.codes.pop(code.code, None)  # single use
    sb.world.touch()
    return response


def check_cookie_csrf(sb: Sandbox, request: web.Request, token: str) -> None:
    """web/handlers.go ``checkCSRFToken``: an unsafe /api/v4 request authenticated by the MMAUTHTOKEN
    cookie needs ``X-CSRF-Token`` equal to the session's token (or, non-strict, ``X-Requested-With:
    XMLHttpRequest``); else 401 session_expired."""
    if request.method in ("GET", "HEAD") or request.cookies.get("MMAUTHTOKEN") != token:
        return
    if request.headers.get("Authorization") or request.query.get("access_token"):
        return
    session = sb.oauth.sessions.get(token)
    sent = request.headers.get("X-CSRF-Token", "")
    if session is not None and sent and hmac.compare_digest(sent, session.csrf):
        return
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return
    raise errors.session_expired()


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v4/oauth/apps", create_app)
    app.router.add_get("/api/v4/oauth/apps", list_apps)
    app.router.add_get("/api/v4/oauth/apps/{app_id}", get_app)
    app.router.add_get("/api/v4/oauth/apps/{app_id}/info", get_app_info)
    app.router.add_get("/oauth/authorize", authorize_page)
    app.router.add_post("/oauth/authorize", authorize_submit)
    app.router.add_post("/oauth/access_token", access_token)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_submit)
    app.router.add_get("/error", error_page)


__all__ = ["WEB_PAGES", "OAuthState", "Session", "check_cookie_csrf", "end_session", "open_session", "password_hash",
           "setup"]
