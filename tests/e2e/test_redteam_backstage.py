"""Red team of the backstage (issue 19): attacks that got through, each pinned by a test."""

from __future__ import annotations

from backstage.app import COOKIE, CSP

from .backstage import BackstageClient


async def test_refusal_pages_carry_the_same_strict_headers_as_every_page(bot, sandbox):
    # A refusal is rendered by the outermost middleware: it must not lose the CSP, the framing ban
    # or no-store (an error page echoing input, framed by another site, would be the weak spot).
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        for path in ("/incidents/nosuchincident", "/no/such/page", "/stats?days=abc",
                     "/api/v1/incidents/nosuchincident"):
            async with browser.http.get(browser.url(path), allow_redirects=False) as response:
                assert response.status in (400, 404), (path, response.status)
                assert response.headers.get("Content-Security-Policy") == CSP, path
                assert response.headers.get("X-Frame-Options") == "DENY", path
                assert response.headers.get("X-Content-Type-Options") == "nosniff", path
                assert response.headers.get("Cache-Control") == "no-store", path
    async with BackstageClient(bot) as stranger:
        async with stranger.http.get(stranger.url("/api/v1/incidents"), allow_redirects=False) as response:
            assert response.status == 401
            assert response.headers.get("Cache-Control") == "no-store"
            assert response.headers.get("X-Content-Type-Options") == "nosniff"


async def test_another_site_cannot_sign_a_signed_out_browser_in_as_the_attacker(bot, sandbox):
    # Login CSRF: mallory asks for her own login link and makes alice's (signed-out) browser post it
    # from her site; alice would then work, unknowingly, in mallory's account.
    async with BackstageClient(bot) as victim:
        token = victim.login_token(sandbox.user_id("bob"))
        for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"},
                        {"Sec-Fetch-Site": "cross-site"}):
            status, page = await victim.post("/login/link", {"t": token}, csrf=False, headers=headers)
            assert status == 403 and "another site" in page, headers
            assert COOKIE not in {c.key for c in victim.http.cookie_jar}
        # The link was not spent by the refused attempts: its owner, on our own page, still signs in.
        status, _ = await victim.post("/login/link", {"t": token}, csrf=False,
                                      headers={"Origin": bot.callback_base_url, "Sec-Fetch-Site": "same-origin"})
        assert status == 303
        status, page = await victim.get("/")
        assert status == 200 and "@bob" in page


async def _trickle(bot, path: str, headers: dict[str, str],
                   content_type: str = "application/x-www-form-urlencoded") -> bytes:
    """A POST whose body never finishes (slowloris): what the server answers, if anything, in 10 s."""
    import asyncio
    from urllib.parse import urlsplit
    where = urlsplit(bot.callback_base_url)
    reader, writer = await asyncio.open_connection(where.hostname, where.port)
    try:
        lines = [f"POST {path} HTTP/1.1", f"Host: {where.netloc}",
                 f"Content-Type: {content_type}", "Content-Length: 1000"]
        lines += [f"{key}: {value}" for key, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n" + "t=abc").encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_a_body_that_never_finishes_is_answered_408_and_the_connection_closed(bot, sandbox):
    bot.backstage.body_timeout_s = 0.3
    answer = await _trickle(bot, "/backstage/login/link", {})
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        cookie = next(c for c in browser.http.cookie_jar if c.key == COOKIE).value
        answer = await _trickle(bot, "/backstage/tokens", {"Cookie": f"{COOKIE}={cookie}"})
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"took too long" in answer
        # A form that arrives whole still works (the body read first is the one the handlers see).
        status, page = await browser.post("/tokens", {"name": "grafana"})
        assert status == 201 and "cct_" in page
        # The API (a bearer token, a JSON body) alike.
        issued = await bot.web_auth.create_token(sandbox.user_id("alice"), "slow")
        answer = await _trickle(bot, "/api/v1/incidents", {"Authorization": f"Bearer {issued.secret}"},
                                "application/json")
        assert answer.startswith(b"HTTP/1.1 408") and b'"status": 408' in answer, answer[:300]


async def test_a_huge_multipart_upload_is_refused_413_and_leaves_the_playbook_alone(bot, sandbox):
    import aiohttp

    from gateway.inbound import MAX_BODY_BYTES

    from .conftest import make_playbook
    playbook = await make_playbook(bot, sandbox, title="Big upload target")
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        form = aiohttp.FormData()
        form.add_field("csrf", browser.csrf)
        form.add_field("version", str(playbook.version))
        form.add_field("file", b"title: x\n" + b"#" * (MAX_BODY_BYTES + 10), filename="p.yaml",
                       content_type="application/x-yaml")
        async with browser.http.post(browser.url(f"/playbooks/{playbook.id}/upload"), data=form,
                                     allow_redirects=False) as response:
            assert response.status == 413
            assert response.headers.get("Content-Security-Policy") == CSP
        assert (await bot.store.get_playbook(playbook.id)).title == "Big upload target"


async def test_the_link_confirmation_names_the_account_it_signs_in(bot, sandbox):
    # A login link forwarded by someone else (or planted by an attacker) would sign the clicker in to
    # the sender's account; the Continue page says whose account it is, and warns before switching.
    async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
        token = browser.login_token(sandbox.user_id("bob"))
        status, page = await browser.get(f"/login/link?t={token}")
        assert status == 200 and 'id="link-account">@bob<' in page
        assert 'id="switching"' in page and "@alice" in page
        own = browser.login_token(sandbox.user_id("alice"))
        status, page = await browser.get(f"/login/link?t={own}")
        assert status == 200 and 'id="link-account">@alice<' in page and 'id="switching"' not in page
        # A forged link is refused on the confirmation page already, saying why.
        status, page = await browser.get(f"/login/link?t={token[:-3]}xyz")
        assert status == 400 and "not valid" in page


async def test_a_person_deactivated_in_mattermost_is_signed_out_and_their_tokens_refused(bot, sandbox):
    from backstage.app import PERSON_TTL_MS
    async with await BackstageClient.signed_in(bot, sandbox, "bob") as browser:
        issued = await bot.web_auth.create_token(sandbox.user_id("bob"), "script")
        bearer = {"Authorization": f"Bearer {issued.secret}"}
        async with browser.http.get(browser.url("/api/v1/me"), headers=bearer) as response:
            assert response.status == 200
        sandbox.world.users[sandbox.user_id("bob")]["delete_at"] = bot.ctx.clock()
        now = bot.ctx.clock()
        bot.ctx.clock = lambda: now + PERSON_TTL_MS  # what Mattermost said is asked again after this
        status, _ = await browser.get("/incidents")
        assert status == 303  # to the login page: the session is over
        async with aiohttp_session() as http:
            async with http.get(browser.url("/api/v1/me"), headers=bearer) as response:
                assert response.status == 401
        # Reactivated: the token works again, the ended session does not come back.
        sandbox.world.users[sandbox.user_id("bob")]["delete_at"] = 0
        bot.ctx.clock = lambda: now + 2 * PERSON_TTL_MS
        status, _ = await browser.get("/incidents")
        assert status == 303
        async with aiohttp_session() as http:
            async with http.get(browser.url("/api/v1/me"), headers=bearer) as response:
                assert response.status == 200


def aiohttp_session():
    import aiohttp
    return aiohttp.ClientSession()
