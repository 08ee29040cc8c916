"""Signing in to the backstage (issue 19) against the real bot on the sandbox: "Sign in with Mattermost"
(OAuth 2.0 through the sandbox's provider) and every way it can fail, the ``backstage`` command's
login link, personal API tokens and their page, and expired sessions being forgotten."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiohttp
from yarl import URL

from backstage.app import COOKIE
from backstage.oauth import STATE_COOKIE
from domain.models import CredentialKind
from services.webauth import SESSION_TTL_MS, secret_hash

from .backstage import BackstageClient
from .oauth_flow import Flow, start_oauth_bot

XSS = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


async def signed_in_as(flow: Flow) -> str:
    status, page = await flow.browser.get("/")
    return page.split('id="signed-in-as">')[1].split("<")[0] if status == 200 else ""


# --- Sign in with Mattermost -------------------------------------------------------------------


async def test_sign_in_with_mattermost_through_login_and_allow(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    async with Flow(bot, sandbox) as flow:
        status, page = await flow.browser.get("/login?next=/backstage/tokens")
        assert status == 200 and 'id="oauth-login"' in page and "/backstage/oauth/start?next=" in page
        callback = await flow.to_callback("bob", next_path="/backstage/tokens")
        assert callback.startswith(bot.callback_base_url + "/backstage/oauth/callback?")
        status, location, _ = await flow.go(callback)
        assert status == 303 and location.endswith("/backstage/tokens")
        cookie = flow.http.cookie_jar.filter_cookies(URL(bot.callback_base_url))[COOKIE]
        assert cookie.value
        assert await signed_in_as(flow) == "@bob"
        async with flow.http.get(f"{bot.callback_base_url}/api/v1/me") as response:
            assert response.status == 200 and (await response.json())["username"] == "bob"
        # The state cookie is spent with the callback.
        assert STATE_COOKIE not in flow.http.cookie_jar.filter_cookies(URL(bot.callback_base_url + "/backstage/oauth/"))
        # Allowed once: the next sign-in goes straight through (Mattermost remembers the app).
        again = await flow.to_authorize()
        status, location, _ = await flow.go(again)
        assert status == 302 and location.startswith(bot.callback_base_url + "/backstage/oauth/callback?code=")


async def test_a_trusted_app_skips_the_allow_page(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox, trusted=True)
    async with Flow(bot, sandbox) as flow:
        status, location, _ = await flow.log_in_to_mattermost(await flow.to_authorize(), "carol")
        assert status == 302
        status, _, _ = await flow.go(location)
        assert status == 303 and await signed_in_as(flow) == "@carol"


async def test_without_oauth_settings_there_is_no_mattermost_button(bot, sandbox):
    async with BackstageClient(bot) as browser:
        status, page = await browser.get("/login")
        assert status == 200 and "oauth-login" not in page and "backstage</code>" in page
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        status, _ = await browser.get("/oauth/start")
        assert status == 404


async def test_cancelling_at_allow_signs_nobody_in(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    async with Flow(bot, sandbox) as flow:
        status, _, page = await flow.log_in_to_mattermost(await flow.to_authorize(), "alice")
        assert status == 200
        back = await flow.decide(page, "deny")
        assert "error=access_denied" in back
        status, _, page = await flow.go(back)
        assert status == 403 and "did not allow" in page and 'id="start-again"' in page
        assert await signed_in_as(flow) == ""


async def test_a_callback_from_another_browser_or_with_another_state_is_refused(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    async with Flow(bot, sandbox) as victim, Flow(bot, sandbox) as attacker:
        # Login CSRF: the attacker's own code, opened in the victim's browser (no state of theirs).
        callback = await attacker.to_callback("dave")
        status, _, page = await victim.go(callback)
        assert status == 400 and "not started in this browser" in page
        assert await signed_in_as(victim) == ""
        # The victim's own start, but a state that is not the one it was given.
        await victim.to_authorize()
        forged = callback.replace("state=", "state=x")
        status, _, page = await victim.go(forged)
        assert status == 400 and "does not match" in page
        assert await signed_in_as(victim) == ""
        # A forged state cookie is refused too.
        victim.http.cookie_jar.update_cookies({STATE_COOKIE: "e30.forged"}, URL(bot.callback_base_url + "/backstage/oauth/"))
        status, _, page = await victim.go(callback)
        assert status == 400 and await signed_in_as(victim) == ""


async def test_a_code_works_once(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    async with Flow(bot, sandbox) as first, Flow(bot, sandbox) as replayer:
        callback = await first.to_callback("alice")
        state = first.http.cookie_jar.filter_cookies(URL(bot.callback_base_url + "/backstage/oauth/"))[STATE_COOKIE]
        status, _, _ = await first.go(callback)
        assert status == 303 and await signed_in_as(first) == "@alice"
        # The same callback, state cookie and all (say, from a proxy log): Mattermost spent the code.
        replayer.http.cookie_jar.update_cookies({STATE_COOKIE: state.value}, URL(bot.callback_base_url + "/backstage/oauth/"))
        status, _, page = await replayer.go(callback)
        assert status == 400 and "used already or has expired" in page
        assert await signed_in_as(replayer) == ""


async def test_an_expired_code_is_refused(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    async with Flow(bot, sandbox) as flow:
        callback = await flow.to_callback("alice")
        sandbox.advance_clock(10 * 60 + 1)  # past AuthCodeExpireTime on Mattermost's clock
        status, _, page = await flow.go(callback)
        assert status == 400 and "used already or has expired" in page
        assert await signed_in_as(flow) == ""


async def test_a_wrong_client_secret_is_refused_with_what_to_check(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox, secret="not-the-secret")
    async with Flow(bot, sandbox) as flow:
        status, _, page = await flow.go(await flow.to_callback("alice"))
        assert status == 400 and "CC_OAUTH_CLIENT_SECRET" in page
        assert await signed_in_as(flow) == ""


async def test_mattermost_down_during_the_exchange_is_a_clear_page(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    async with Flow(bot, sandbox) as flow:
        callback = await flow.to_callback("alice")
        sandbox.faults.add("drop_before", path="/oauth/access_token")
        status, _, page = await flow.go(callback)
        assert status == 502 and "cannot be reached" in page
        assert await signed_in_as(flow) == ""


async def test_mattermost_refuses_a_redirect_uri_that_is_not_registered(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    async with Flow(bot, sandbox) as flow:
        authorize = await flow.to_authorize()
        await flow.log_in_to_mattermost(authorize, "alice")
        elsewhere = authorize.replace("%2Fbackstage%2Foauth%2Fcallback", "%2Fbackstage%2Fevil")
        status, _, page = await flow.go(elsewhere)
        assert status == 400 and "did not match registered callback_url" in page


# --- the backstage command ---------------------------------------------------------------------


def _dm_posts(sandbox, username: str) -> list[dict]:
    me, bot_id = sandbox.user_id(username), sandbox.user_id("incident")
    for channel_id, channel in sandbox.world.channels.items():
        if channel["type"] == "D" and set(channel["name"].split("__")) == {me, bot_id}:
            return [p for p in sandbox.posts(channel_id) if p["user_id"] == bot_id]
    return []


def _link(message: str) -> str:
    return message.split("(", 1)[1].split(")", 1)[0]


async def test_the_command_dms_a_link_that_signs_in_once(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    result = await sandbox.user("carol").command("town-square", "/incident backstage")
    assert result.status == 200 and "by direct message" in result.ephemeral[0]
    (post,) = await sandbox.wait_for(lambda: _dm_posts(sandbox, "carol"))
    assert "/backstage/oauth/start" in post["message"]  # and the OAuth way, as it is configured
    link = _link(post["message"])
    assert link.startswith(bot.callback_base_url + "/backstage/login/link?t=")
    async with BackstageClient(bot) as browser:
        status, page = await browser.get(link)
        assert status == 200 and 'id="continue"' in page
        token = page.split('name="t" value="')[1].split('"')[0]
        status, _ = await browser.post("/login/link", {"t": token})
        assert status == 303
        status, page = await browser.get("/")
        assert status == 200 and "@carol" in page
    async with BackstageClient(bot) as other:
        status, page = await other.post("/login/link", {"t": token}, csrf=False)
        assert status == 400 and "used already" in page
    assert (await sandbox.user("carol").command("town-square", "/incident backstage now")).ephemeral


async def test_the_command_in_the_bots_dm_answers_with_the_link(bot, sandbox):
    dave = sandbox.user("dave")
    await dave.post(await dave.dm_channel("incident"), "backstage")
    post = (await sandbox.wait_for(lambda: _dm_posts(sandbox, "dave")))[-1]
    assert "/backstage/login/link?t=" in post["message"] and "oauth/start" not in post["message"]


# --- personal API tokens -----------------------------------------------------------------------


async def test_tokens_are_created_once_listed_used_and_revoked(bot, sandbox):
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        status, page = await browser.get("/tokens")
        assert status == 200 and 'id="no-tokens"' in page and 'href="/backstage/tokens"' in page
        status, page = await browser.post("/tokens", {"name": "grafana"})
        assert status == 201
        secret = page.split('id="token-secret">')[1].split("<")[0]
        assert secret.startswith("cct_") and f"{bot.callback_base_url}/api/v1/me" in page
        status, page = await browser.get("/tokens")
        assert "grafana" in page and secret not in page  # shown once
        token_id = page.split('class="token" id="token-')[1].split('"')[0]
        async with aiohttp.ClientSession() as tool:
            headers = {"Authorization": f"Bearer {secret}"}
            async with tool.get(f"{bot.callback_base_url}/api/v1/me", headers=headers) as response:
                assert response.status == 200
                assert await response.json() == {"user_id": sandbox.user_id("alice"), "username": "alice",
                                                 "signed_in_with": "token"}
            # A token is for the API, not the pages.
            async with tool.get(f"{bot.callback_base_url}/backstage/tokens", headers=headers,
                                allow_redirects=False) as response:
                assert response.status == 303
            status, _ = await browser.post(f"/tokens/{token_id}/revoke")
            assert status == 303
            status, page = await browser.get("/tokens?revoked=1")
            assert 'id="token-revoked"' in page and "grafana" not in page
            async with tool.get(f"{bot.callback_base_url}/api/v1/me", headers=headers) as response:
                assert response.status == 401
            status, _ = await browser.post(f"/tokens/{token_id}/revoke")
            assert status == 404


async def test_nobody_revokes_or_sees_someone_elses_token(bot, sandbox):
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as alice, \
            await BackstageClient.signed_in(bot, sandbox, "bob") as bob:
        _, page = await alice.post("/tokens", {"name": "alice-ci"})
        secret = page.split('id="token-secret">')[1].split("<")[0]
        _, page = await alice.get("/tokens")
        token_id = page.split('class="token" id="token-')[1].split('"')[0]
        status, page = await bob.get("/tokens")
        assert "alice-ci" not in page and token_id not in page
        status, page = await bob.post(f"/tokens/{token_id}/revoke")
        assert status == 404 and "nothing here" in page
        # Nor a session of one's own through the tokens form.
        session_id = bob.http.cookie_jar.filter_cookies(URL(bot.callback_base_url))[COOKIE].value
        assert (await bob.post(f"/tokens/{session_id}/revoke"))[0] == 404
        async with aiohttp.ClientSession() as tool:
            async with tool.get(f"{bot.callback_base_url}/api/v1/me",
                                headers={"Authorization": f"Bearer {secret}"}) as response:
                assert response.status == 200


async def test_token_forms_need_the_csrf_token_and_our_origin(bot, sandbox):
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        await browser.get("/tokens")
        assert (await browser.post("/tokens", {"name": "x"}, csrf=False))[0] == 403
        assert (await browser.post("/tokens", {"name": "x", "csrf": "forged"}))[0] == 403
        assert (await browser.post("/tokens", {"name": "x"}, headers={"Origin": "https://evil.example"}))[0] == 403
        _, page = await browser.get("/tokens")
        assert 'id="no-tokens"' in page


async def test_token_names_are_checked_and_rendered_inert(bot, sandbox):
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        status, page = await browser.post("/tokens", {"name": "   "})
        assert status == 400 and 'id="token-problem"' in page and "Give the token a name" in page
        status, page = await browser.post("/tokens", {"name": "x" * 5000})
        assert status == 400 and "at most 64" in page and "x" * 200 not in page
        status, page = await browser.post("/tokens", {"name": XSS[:64]})
        assert status == 201
        _, page = await browser.get("/tokens")
        assert "<script>" not in page and "<img src=x" not in page and "&lt;script&gt;" in page


async def test_the_database_holds_no_secret_in_clear(bot, sandbox):
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        _, page = await browser.post("/tokens", {"name": "ci"})
        secret = page.split('id="token-secret">')[1].split("<")[0]
        session = browser.http.cookie_jar.filter_cookies(URL(bot.callback_base_url))[COOKIE].value.split(".")[0]
    alice = sandbox.user_id("alice")
    stored = [*await bot.store.credentials_of(alice, CredentialKind.API_TOKEN),
              *await bot.store.credentials_of(alice, CredentialKind.SESSION)]
    text = repr([credential.model_dump() for credential in stored])
    assert secret_hash(secret) in text and secret_hash(session) in text
    assert secret not in text and session not in text
    url = bot.settings.effective_database_url
    if url.startswith("sqlite:///"):  # and nowhere in the file (a PostgreSQL run checks the rows above)
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as db:
            db.execute("PRAGMA wal_checkpoint(FULL)")
        raw = b"".join(Path(name).read_bytes() for name in (path, path + "-wal") if Path(name).exists())
        assert secret.encode() not in raw and session.encode() not in raw


async def test_expired_sessions_are_forgotten_by_the_leader(bot, sandbox):
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        now = bot.ctx.clock()
        bot.ctx.clock = lambda: now + SESSION_TTL_MS + 1
        status, _ = await browser.get("/")
        assert status == 303  # expired: signed out
        bot._leader_rounds = 0
        await bot._leader_round()  # the first round prunes
        bot.ctx.clock = lambda: now
        (session,) = await bot.store.credentials_of(sandbox.user_id("alice"), CredentialKind.SESSION) or [None]
        assert session is None  # the row is gone, not just past its time


# --- restarts, two at once, hostile input ------------------------------------------------------


async def test_a_sign_in_started_before_a_restart_completes_after(start_bot, sandbox):
    bot, app = await start_oauth_bot(start_bot, sandbox)
    port = int(bot.callback_base_url.rsplit(":", 1)[1])
    async with Flow(bot, sandbox) as flow:
        callback = await flow.to_callback("bob")
        await bot.stop()
        again = await start_bot(listen_port=port, oauth_client_id=app.id, oauth_client_secret=app.secret)
        status, _, _ = await flow.go(callback)
        assert status == 303
        status, page = await flow.browser.get("/")
        assert status == 200 and "@bob" in page and again.callback_base_url == bot.callback_base_url


async def test_two_people_sign_in_at_once_each_as_themselves(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    async with Flow(bot, sandbox) as one, Flow(bot, sandbox) as two:
        callbacks = await asyncio.gather(one.to_callback("alice"), two.to_callback("carol"))
        results = await asyncio.gather(one.go(callbacks[0]), two.go(callbacks[1]))
        assert [status for status, _, _ in results] == [303, 303]
        assert [await signed_in_as(one), await signed_in_as(two)] == ["@alice", "@carol"]


async def test_hostile_callback_input_and_a_foreign_next_sign_nobody_in_elsewhere(start_bot, sandbox):
    bot, _ = await start_oauth_bot(start_bot, sandbox)
    async with Flow(bot, sandbox) as flow:
        async with flow.http.get(flow.browser.url("/oauth/start"), allow_redirects=False) as response:
            state = response.cookies[STATE_COOKIE]
            assert state["httponly"] and state["samesite"] == "Lax" and state["path"] == "/backstage/oauth"
            assert 0 < int(state["max-age"]) <= 600
        status, _, page = await flow.go(flow.browser.url(f"/oauth/callback?state={'s' * 5000}&code=x"))
        assert status == 400 and "does not match" in page and await signed_in_as(flow) == ""
    async with Flow(bot, sandbox) as flow:
        callback = await flow.to_callback("alice", next_path="https://evil.example/")
        status, location, _ = await flow.go(callback)
        assert status == 303 and location == bot.callback_base_url + "/backstage/"
