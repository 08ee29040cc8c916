"""Signing in and out of the backstage: the login page, one-time login links, logout.

A login link (sent by the ``backstage`` command) opens a confirmation page first and is spent only when
the person presses Continue (a POST): chat clients and link previews fetch links they show, and a
GET that signed in would spend the link before its owner clicks it.
"""

from __future__ import annotations

from aiohttp import web

from backstage.app import VIEWER, Backstage, see_other, viewer
from gateway.ids import BACKSTAGE_PREFIX

MAX_TOKEN_CHARS = 1024


def setup(backstage: Backstage) -> None:
    async def login_page(request: web.Request) -> web.Response:
        return backstage.render(request, "login.html", title="Sign in",
                                next=backstage.safe_next(request.query.get("next")),
                                oauth_url=backstage.oauth_start_url)

    async def link_page(request: web.Request) -> web.Response:
        token = request.query.get("t", "")
        if not token or len(token) > MAX_TOKEN_CHARS:
            return backstage.render(request, "error.html", status=400, title="Not accepted",
                                    message="This login link is incomplete. Copy the whole link from Mattermost.")
        user_id = backstage.auth.login_user(token)  # LoginRefused (forged, expired) → 400 with the reason
        current = request.get(VIEWER)
        return backstage.render(request, "login_link.html", title="Sign in", token=token,
                                next=backstage.safe_next(request.query.get("next")),
                                account=await backstage.username(user_id) or user_id,
                                switching=current is not None and current.user_id != user_id)

    async def redeem(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        token = form.get("t")
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return backstage.render(request, "error.html", status=400, title="Not accepted",
                                    message="This login link is incomplete. Copy the whole link from Mattermost.")
        issued = await backstage.auth.redeem_login(token)  # LoginRefused → 400 with the reason
        previous = request.get(VIEWER)
        if previous is not None and not previous.by_token:  # someone else signs in in this browser
            await backstage.auth.end_session(previous.credential)
        next_value = form.get("next")
        target = backstage.safe_next(next_value if isinstance(next_value, str) else None)
        return backstage.signed_in(see_other(target), issued.secret)

    async def logout(request: web.Request) -> web.StreamResponse:
        who = viewer(request)
        if not who.by_token:
            await backstage.auth.end_session(who.credential)
        return backstage.signed_out(see_other(f"{BACKSTAGE_PREFIX}/login?signed_out=1"))

    async def home(request: web.Request) -> web.Response:
        return backstage.render(request, "home.html", title="Backstage")

    backstage.page("GET", "/login", login_page, public=True)
    backstage.page("GET", "/login/link", link_page, public=True)
    backstage.page("POST", "/login/link", redeem, public=True)
    backstage.page("POST", "/logout", logout)
    backstage.page("GET", "/", home)
