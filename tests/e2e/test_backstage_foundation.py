"""The backstage's foundation (issue 19): signing in with a one-time link, sessions, CSRF, the
headers every page carries, logout — against the real bot on the sandbox."""

from __future__ import annotations

import aiohttp
from yarl import URL

from backstage.app import COOKIE, CSP
from services.webauth import LOGIN_LINK_TTL_MS

from .backstage import BackstageClient


async def test_a_login_link_signs_in_once_and_the_session_reaches_the_pages(bot, sandbox):
    async with BackstageClient(bot) as browser:
        status, _ = await browser.get("/")
        assert status == 303  # signed out: to the login page
        token = browser.login_token(sandbox.user_id("alice"))
        # Opening the link does not spend it (link previews fetch links too): it asks to continue.
        status, page = await browser.get(f"/login/link?t={token}")
        assert status == 200 and 'id="continue"' in page
        async with browser.http.post(browser.url("/login/link"), data={"t": token},
                                     allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.cookies[COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        status, page = await browser.get("/")
        assert status == 200 and "@alice" in page and browser.csrf
    # The same link a second time, from another browser: refused.
    async with BackstageClient(bot) as other:
        status, page = await other.post("/login/link", {"t": token}, csrf=False)
        assert status == 400 and "used already" in page
        status, _ = await other.get("/")
        assert status == 303


async def test_an_expired_or_forged_link_is_refused(bot, sandbox):
    async with BackstageClient(bot) as browser:
        token = browser.login_token(sandbox.user_id("alice"))
        now = bot.ctx.clock()
        bot.ctx.clock = lambda: now + LOGIN_LINK_TTL_MS
        status, page = await browser.post("/login/link", {"t": token}, csrf=False)
        assert status == 400 and "expired" in page
        bot.ctx.clock = lambda: now
        body, _, signature = token.partition(".")
        forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
        status, page = await browser.post("/login/link", {"t": forged}, csrf=False)
        assert status == 400 and "not valid" in page
        status, _ = await browser.get("/")
        assert status == 303


async def test_every_page_carries_a_strict_policy(bot, sandbox):
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        async with browser.http.get(browser.url("/")) as response:
            assert response.headers["Content-Security-Policy"] == CSP
            assert "script-src" not in CSP and "default-src 'none'" in CSP
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"] == "no-store"
        async with browser.http.get(browser.url("/login")) as response:
            assert response.headers["Content-Security-Policy"] == CSP


async def test_logout_needs_the_csrf_token_and_ends_the_session_for_every_copy_of_the_cookie(bot, sandbox):
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        stolen = browser.http.cookie_jar.filter_cookies(URL(browser.url("/")))[COOKIE].value
        status, page = await browser.post("/logout", {"csrf": "wrong"})
        assert status == 403 and "nothing was changed" in page
        status, _ = await browser.post("/logout", csrf=False)
        assert status == 403
        # From another site (the browser says so in Origin) even with the token: refused.
        status, _ = await browser.post("/logout", headers={"Origin": "https://evil.example"})
        assert status == 403
        status, _ = await browser.get("/")
        assert status == 200
        status, _ = await browser.post("/logout")
        assert status == 303
        status, _ = await browser.get("/")
        assert status == 303
    # The cookie's value, replayed after logout: signed in no more.
    async with aiohttp.ClientSession(cookies={COOKIE: stolen}) as thief:
        async with thief.get(bot.callback_base_url + "/backstage/", allow_redirects=False) as response:
            assert response.status == 303


async def test_a_forged_cookie_or_a_foreign_next_signs_nobody_in(bot, sandbox):
    async with aiohttp.ClientSession(cookies={COOKIE: "abc.def"}) as forger:
        async with forger.get(bot.callback_base_url + "/backstage/", allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"].startswith("/backstage/login?next=")
    for target in ("https://evil.example/", "//evil.example/x", "/backstage\\..\\x"):
        async with BackstageClient(bot) as browser:
            async with browser.http.post(browser.url("/login/link"), data={"t": browser.login_token(
                    sandbox.user_id("alice")), "next": target}, allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"] == "/backstage/"
    async with BackstageClient(bot) as browser:
        token = browser.login_token(sandbox.user_id("alice"))
        async with browser.http.post(browser.url("/login/link"), data={"t": token, "next": "/backstage/x?y=1"},
                                     allow_redirects=False) as response:
            assert response.headers["Location"] == "/backstage/x?y=1"


async def test_the_api_answers_401_without_a_token(bot):
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(bot.callback_base_url + "/api/v1/anything") as response:
            assert response.status in (401, 404)


async def test_a_signed_in_person_may_use_a_new_link_from_its_page(bot, sandbox):
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        token = browser.login_token(sandbox.user_id("bob"))
        status, page = await browser.get(f"/login/link?t={token}")
        assert status == 200 and f'value="{browser.csrf}"' in page
        status, _ = await browser.post("/login/link", {"t": token})
        assert status == 303
        status, page = await browser.get("/")
        assert status == 200 and "@bob" in page
