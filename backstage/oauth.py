"""Sign in with Mattermost (issue 19): the backstage as an OAuth 2.0 client of Mattermost.

``GET /backstage/oauth/start`` sends the browser to Mattermost's ``/oauth/authorize`` with a random
``state`` that is also kept, signed and short-lived, in an HttpOnly cookie of this browser (so a
callback started by someone else's browser — login CSRF — or a forged state is refused).
``GET /backstage/oauth/callback`` checks the state against the cookie, trades the code for an
access token server to server (gateway/oauth_client.py), asks ``/api/v4/users/me`` who it is, opens
a backstage session (services/webauth.py) and goes on to the safe ``next``. The access token is
dropped right there. Every failure is a page that says what to do, and never a session.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets

from aiohttp import web

from backstage.app import VIEWER, Backstage, see_other
from gateway.ids import BACKSTAGE_PREFIX
from gateway.oauth_client import OAuthClient, OAuthFailure

STATE_COOKIE = "cc_oauth_state"
STATE_PURPOSE = "backstage-oauth-state"
#: How long a browser may take at Mattermost (login, Allow) before the callback is refused (ms).
STATE_TTL_MS = 10 * 60_000
START_PATH = "/oauth/start"
CALLBACK_PATH = "/oauth/callback"
MAX_PARAM_CHARS = 2048


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def setup(backstage: Backstage, client: OAuthClient | None) -> None:
    """Add the OAuth routes when "Sign in with Mattermost" is configured (``client`` given)."""
    if client is None:
        return
    backstage.oauth_start_url = BACKSTAGE_PREFIX + START_PATH
    signer = backstage.ctx.signer
    cookie_path = BACKSTAGE_PREFIX + "/oauth"

    def redirect_uri() -> str:
        return backstage.url(CALLBACK_PATH)

    def failed(request: web.Request, message: str, status: int = 400) -> web.Response:
        response = backstage.render(request, "oauth_failed.html", status=status, title="Not signed in",
                                    message=message)
        response.del_cookie(STATE_COOKIE, path=cookie_path)
        return response

    def read_state(request: web.Request) -> tuple[str, str] | None:
        """(state, next) from this browser's cookie, if it is ours and fresh."""
        value = request.cookies.get(STATE_COOKIE, "")
        body, _, signature = value.partition(".")
        if not body or len(value) > MAX_PARAM_CHARS or not signer.verify(STATE_PURPOSE, body, signature):
            return None
        try:
            data = json.loads(_unb64(body))
            state, target, expires_at = str(data["s"]), str(data["n"]), int(data["exp"])
        except (ValueError, KeyError, TypeError):
            return None
        if backstage.ctx.clock() >= expires_at:
            return None
        return state, target

    async def start(request: web.Request) -> web.StreamResponse:
        state = secrets.token_urlsafe(24)
        target = backstage.safe_next(request.query.get("next"))
        body = _b64(json.dumps({"s": state, "n": target, "exp": backstage.ctx.clock() + STATE_TTL_MS},
                               separators=(",", ":")).encode())
        response = see_other(client.authorize_url(redirect_uri(), state))
        # Lax: the cookie comes back on Mattermost's top-level redirect to the callback, never on a
        # request another site makes in the background.
        response.set_cookie(STATE_COOKIE, f"{body}.{signer.sign(STATE_PURPOSE, body)}", path=cookie_path,
                            httponly=True, samesite="Lax", secure=backstage.secure_cookies,
                            max_age=STATE_TTL_MS // 1000)
        return response

    async def callback(request: web.Request) -> web.StreamResponse:
        query = request.query
        kept = read_state(request)
        sent_state = query.get("state", "")
        if kept is None:
            return failed(request, "This sign-in was not started in this browser, or it took longer than ten "
                                   "minutes. Start again from the login page.")
        state, target = kept
        if not sent_state or len(sent_state) > MAX_PARAM_CHARS \
                or not hmac.compare_digest(sent_state.encode(), state.encode()):
            return failed(request, "This sign-in does not match the one started in this browser, so nobody was "
                                   "signed in. Start again from the login page.")
        if query.get("error"):
            if query.get("error") == "access_denied":
                return failed(request, "You did not allow Command Center to use your Mattermost account, so you "
                                       "are not signed in. To sign in, start again and press Allow, or ask for a "
                                       "login link in Mattermost.", status=403)
            return failed(request, "Mattermost did not sign you in. Start again from the login page.")
        code = query.get("code", "")
        if not code or len(code) > MAX_PARAM_CHARS:
            return failed(request, "Mattermost sent no sign-in code. Start again from the login page.")
        try:
            access_token = await client.exchange(code, redirect_uri())
            user = await client.identity(access_token)
        except OAuthFailure as failure:
            return failed(request, failure.reason, status=502 if failure.unreachable else 400)
        del access_token  # used for the one call above, never kept
        if user.is_bot or not user.active:
            return failed(request, "This Mattermost account cannot sign in to the backstage.", status=403)
        issued = await backstage.auth.open_session(user.id)
        previous = request.get(VIEWER)
        if previous is not None and not previous.by_token:  # someone else signs in in this browser
            await backstage.auth.end_session(previous.credential)
        response = backstage.signed_in(see_other(target), issued.secret)
        response.del_cookie(STATE_COOKIE, path=cookie_path)
        return response

    backstage.page("GET", START_PATH, start, public=True)
    backstage.page("GET", CALLBACK_PATH, callback, public=True)
