"""GET /config/client?format=old: what a bot learns of ServiceSettings.PostEditTimeLimit (live card slice).

Server: api4/config.go ``getClientConfig`` (format required; a signed-in session gets
config/client.go ``GenerateClientConfig``, which carries PostEditTimeLimit; no session: the limited set).
"""

from __future__ import annotations

import pytest

from sandbox import Sandbox, SandboxConfig

from .conftest import Api


@pytest.fixture
def config() -> SandboxConfig:
    return SandboxConfig(record=True, integration_timeout=2.0, post_edit_time_limit=300)


async def test_a_bot_reads_the_post_edit_time_limit(api: Api, sb: Sandbox) -> None:
    status, headers, body = await api("GET", "/api/v4/config/client?format=old", as_user="incident")
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body["PostEditTimeLimit"] == "300"


async def test_without_a_session_the_limit_is_not_given(api: Api, sb: Sandbox) -> None:
    status, _, body = await api("GET", "/api/v4/config/client?format=old")
    assert status == 200 and "PostEditTimeLimit" not in body and body["Version"]


async def test_the_format_must_be_old(api: Api, sb: Sandbox) -> None:
    status, _, body = await api("GET", "/api/v4/config/client", as_user="incident")
    assert (status, body["id"]) == (501, "api.config.client.old_format.app_error")
    status, _, body = await api("GET", "/api/v4/config/client?format=new", as_user="incident")
    assert (status, body["id"]) == (400, "api.context.invalid_body_param.app_error")


async def test_unlimited_is_minus_one() -> None:
    import aiohttp

    from .conftest import DEMO
    async with Sandbox(DEMO, config=SandboxConfig()) as sb:
        async with aiohttp.ClientSession() as http:
            async with http.get(sb.url + "/api/v4/config/client?format=old",
                                headers={"Authorization": f"Bearer {sb.token_of('incident')}"}) as response:
                assert (await response.json())["PostEditTimeLimit"] == "-1"
