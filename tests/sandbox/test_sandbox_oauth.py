"""The sandbox's OAuth 2.0 provider and login page answer as the real server's do (sandbox/oauth.py names
the functions): who may register an app, every refusal of /oauth/authorize and /oauth/access_token,
single-use and expiring codes, the access token as a session, and what cookie sessions must carry."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from sandbox import Sandbox, SandboxConfig
from sandbox.oauth import WEB_PAGES
from tests.contract.openapi_contract import assert_exchanges_valid

DEMO = Path(__file__).resolve().parents[2] / "sandbox" / "seeds" / "demo.yaml"
CALLBACK = "http://127.0.0.1:9/backstage/oauth/callback"


@pytest.fixture
async def sb():
    """The demo world; every recorded exchange (the REST API and the token endpoint, not the web app's
    pages) is checked against the OpenAPI contract at the end."""
    async with Sandbox(DEMO, config=SandboxConfig(record=True)) as sandbox:
        yield sandbox
        exchanges = list(sandbox.recording)
    assert not any(exchange.path in WEB_PAGES for exchange in exchanges)
    assert assert_exchanges_valid(exchanges) > 0


async def _register(sb: Sandbox, who: str = "alice", **changes) -> tuple[int, dict]:
    body = {"name": "Command Center", "description": "backstage", "homepage": "http://127.0.0.1:9/",
            "callback_urls": [CALLBACK], **changes}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sb.url}/api/v4/oauth/apps", json=body,
                             headers={"Authorization": f"Bearer {sb.token_of(who)}"}) as response:
            return response.status, await response.json()


class Browser:
    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def go(self, path: str, *, method: str = "GET", **kwargs) -> tuple[int, str, str]:
        async with self.http.request(method, self.sb.url + path, allow_redirects=False, **kwargs) as response:
            return response.status, response.headers.get("Location", ""), await response.text()

    async def log_in(self, username: str = "alice", password: str | None = None) -> int:
        status, _, _ = await self.go("/login", method="POST", data={
            "login_id": username, "password": password or f"{username}-password", "redirect_to": "/"})
        return status

    async def code(self, app: dict, *, state: str = "st", redirect_uri: str = CALLBACK) -> str:
        status, location, page = await self.go("/oauth/authorize", params={
            "response_type": "code", "client_id": app["id"], "redirect_uri": redirect_uri, "state": state})
        if status == 200:  # the Allow page
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
            status, location, _ = await self.go("/oauth/authorize", method="POST",
                                                data={**fields, "decision": "allow"})
        assert status == 302, page
        query = parse_qs(urlsplit(location).query)
        assert query["state"] == [state]
        return query["code"][0]

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def browser(sb):
    b = Browser(sb)
    yield b
    await b.close()


async def _token(sb: Sandbox, **form) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sb.url}/oauth/access_token", data=form) as response:
            return response.status, await response.json(), dict(response.headers)


def _form(app: dict, code: str) -> dict:
    return {"grant_type": "authorization_code", "client_id": app["id"], "client_secret": app["client_secret"],
            "code": code, "redirect_uri": CALLBACK}


async def test_only_admins_register_apps_and_the_app_is_checked(sb):
    status, error = await _register(sb, "bob")
    assert status == 403 and error["id"] == "api.context.permissions.app_error"
    for change, error_id in (({"name": ""}, "name"), ({"callback_urls": []}, "callback"),
                             ({"callback_urls": ["ftp://x/cb"]}, "callback"), ({"homepage": "nope"}, "homepage"),
                             ({"description": "d" * 513}, "description")):
        status, error = await _register(sb, **change)
        assert status == 400 and error["id"] == f"model.oauth.is_valid.{error_id}.app_error", change
    status, app = await _register(sb, is_trusted=True)
    assert status == 201 and app["creator_id"] == sb.user_id("alice") and app["is_trusted"]
    assert len(app["id"]) == 26 and len(app["client_secret"]) == 26


async def test_a_server_with_the_provider_off_answers_501():
    async with Sandbox(DEMO, config=SandboxConfig(enable_oauth_service_provider=False)) as off:
        status, error = await _register(off)
        assert status == 501 and error["id"] == "api.oauth.register_oauth_app.turn_off.app_error"
        b = Browser(off)
        status, _, _ = await b.go("/oauth/authorize", params={"response_type": "code", "client_id": "a" * 26,
                                                               "redirect_uri": CALLBACK})
        await b.close()
        assert status == 501
        status, error, _ = await _token(off, grant_type="authorization_code", code="c", client_id="a" * 26)
        assert status == 501 and error["id"] == "api.oauth.get_access_token.disabled.app_error"


async def test_the_login_page_signs_people_in_with_their_password_only(sb, browser):
    status, _, page = await browser.go("/login", params={"redirect_to": "https://evil.example/"})
    assert status == 200 and 'value="/"' in page  # a redirect elsewhere is dropped
    assert await browser.log_in("alice", "wrong") == 401
    assert await browser.log_in("nobody", "x") == 401
    assert await browser.log_in("incident", "x") == 401  # a bot has no password
    status, location, _ = await browser.go("/login", method="POST", data={
        "login_id": "alice@example.com", "password": "alice-password", "redirect_to": "/oauth/authorize?x=1"})
    assert status == 302 and location == "/oauth/authorize?x=1"
    cookies = {c.key: c for c in browser.http.cookie_jar}
    assert cookies["MMAUTHTOKEN"]["httponly"] and cookies["MMUSERID"].value == sb.user_id("alice")
    status, _, body = await browser.go("/api/v4/users/me")
    assert status == 200 and sb.user_id("alice") in body
    # A cookie session must send its CSRF token on unsafe requests (web/handlers.go checkCSRFToken).
    post = {"channel_id": sb.channel("acme", "town-square")["id"], "message": "hi"}
    status, _, _ = await browser.go("/api/v4/posts", method="POST", json=post)
    assert status == 401
    status, _, _ = await browser.go("/api/v4/posts", method="POST", json=post,
                                    headers={"X-CSRF-Token": cookies["MMCSRF"].value})
    assert status == 201


async def test_authorize_refuses_as_the_server_does(sb, browser):
    _, app = await _register(sb)
    good = {"response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": "s"}
    for change in ({"client_id": "short"}, {"response_type": ""}, {"redirect_uri": "not a url"},
                   {"state": "s" * 1025}, {"scope": "s" * 129}):
        status, _, page = await browser.go("/oauth/authorize", params={**good, **change})
        assert status == 400 and "/error?type=oauth_invalid_param" in page, change
    status, _, _ = await browser.go("/oauth/authorize", params={**good, "client_id": "z" * 26})
    assert status == 404
    status, location, _ = await browser.go("/oauth/authorize", params=good)
    assert status == 302 and location.startswith("/login?redirect_to=%2Foauth%2Fauthorize%3F")
    await browser.log_in()
    status, _, page = await browser.go("/oauth/authorize", params={**good, "redirect_uri": CALLBACK + "x"})
    assert status == 400 and "oauth_invalid_redirect_url" in page
    status, _, page = await browser.go("/oauth/authorize", params={**good, "state": '"><script>x</script>'})
    assert status == 200 and 'id="allow"' in page and "<script>x" not in page


async def test_deny_goes_back_with_access_denied_and_no_code(sb, browser):
    _, app = await _register(sb)
    await browser.log_in()
    _, _, page = await browser.go("/oauth/authorize", params={"response_type": "code", "client_id": app["id"],
                                                               "redirect_uri": CALLBACK, "state": "s"})
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    status, _, _ = await browser.go("/oauth/authorize", method="POST", data={**fields, "csrf": "x"})
    assert status == 401  # the form needs the session's CSRF token
    status, location, _ = await browser.go("/oauth/authorize", method="POST", data={**fields, "decision": "deny"})
    assert status == 302 and parse_qs(urlsplit(location).query) == {"error": ["access_denied"], "state": ["s"]}
    assert not sb.oauth.codes


async def test_the_token_endpoint_refuses_as_the_server_does(sb, browser):
    _, app = await _register(sb)
    await browser.log_in()
    code = await browser.code(app)
    cases = [({"grant_type": "password"}, 400, "bad_grant"), ({"code": ""}, 400, "missing_code"),
             ({"grant_type": "refresh_token"}, 400, "missing_refresh_token"),
             ({"client_id": "nope"}, 400, "bad_client_id"), ({"client_id": "z" * 26}, 404, "credentials"),
             ({"client_secret": "wrong"}, 403, "credentials"), ({"redirect_uri": CALLBACK + "/x"}, 400, "redirect_uri"),
             ({"code": code + "x"}, 400, "expired_code")]
    for change, status, what in cases:
        got, error, _ = await _token(sb, **{**_form(app, code), **change})
        assert (got, error["id"]) == (status, f"api.oauth.get_access_token.{what}.app_error"), change
    status, access, headers = await _token(sb, **_form(app, code))
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert set(access) == {"access_token", "token_type", "expires_in", "scope", "refresh_token", "id_token"}
    assert access["token_type"] == "bearer" and access["expires_in"] == 720 * 3600
    status, error, _ = await _token(sb, **_form(app, code))
    assert status == 400 and error["id"] == "api.oauth.get_access_token.expired_code.app_error"  # spent
    # A second code for the same person and app: the same live token (GetPreviousAccessData).
    status, again, _ = await _token(sb, **_form(app, await browser.code(app)))
    assert status == 200 and again["access_token"] == access["access_token"]
    # Refreshing: a new token, the old one ends.
    status, renewed, _ = await _token(sb, grant_type="refresh_token", client_id=app["id"],
                                      client_secret=app["client_secret"], refresh_token=access["refresh_token"])
    assert status == 200 and renewed["access_token"] != access["access_token"]
    async with aiohttp.ClientSession() as http:
        for token, expected in ((access["access_token"], 401), (renewed["access_token"], 200)):
            async with http.get(f"{sb.url}/api/v4/users/me", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == expected


async def test_a_code_expires_after_ten_minutes_of_server_time(sb, browser):
    _, app = await _register(sb)
    await browser.log_in()
    code = await browser.code(app)
    sb.advance_clock(10 * 60 + 1)
    status, error, _ = await _token(sb, **_form(app, code))
    assert status == 403 and error["id"] == "api.oauth.get_access_token.expired_code.app_error"
    status, _, _ = await _token(sb, **_form(app, code))
    assert status == 400  # and it is gone


async def test_an_access_token_is_a_session_that_expires_and_cannot_authorize_apps(sb, browser):
    _, app = await _register(sb, is_trusted=True)
    await browser.log_in("bob")
    _, access, _ = await _token(sb, **_form(app, await browser.code(app)))
    headers = {"Authorization": f"Bearer {access['access_token']}"}
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{sb.url}/api/v4/users/me", headers=headers) as response:
            assert (await response.json())["username"] == "bob"
        async with http.post(f"{sb.url}/oauth/authorize", headers=headers, json={
                "response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": "s"}) as response:
            assert response.status == 403  # an OAuth session may not authorize apps itself
        sb.advance_clock(720 * 3600 + 1)
        async with http.get(f"{sb.url}/api/v4/users/me", headers=headers) as response:
            assert response.status == 401


async def test_the_json_authorize_answers_the_redirect(sb):
    _, app = await _register(sb)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sb.url}/oauth/authorize", json={
                "response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": "s"},
                headers={"Authorization": f"Bearer {sb.token_of('carol')}"}) as response:
            assert response.status == 200
            redirect = (await response.json())["redirect"]
    assert redirect.startswith(CALLBACK + "?") and "code=" in redirect and "state=s" in redirect


async def test_the_json_authorize_from_a_cookie_session_needs_the_csrf_header(sb, browser):
    _, app = await _register(sb)
    await browser.log_in("dave")
    body = {"response_type": "code", "client_id": app["id"], "redirect_uri": CALLBACK, "state": "s"}
    status, _, _ = await browser.go("/oauth/authorize", method="POST", json=body)
    assert status == 401
    csrf = next(c.value for c in browser.http.cookie_jar if c.key == "MMCSRF")
    status, _, answer = await browser.go("/oauth/authorize", method="POST", json=body, headers={"X-CSRF-Token": csrf})
    assert status == 200 and "code=" in answer
