"""The sandbox's fault injection and create-post deduplication, seen from a plain HTTP client."""

from __future__ import annotations

import httpx
import pytest

from sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import DEMO_SEED


async def open_sandbox(**config) -> Sandbox:
    return await Sandbox(DEMO_SEED, config=SandboxConfig(**config)).start()


@pytest.fixture
async def sb():
    sandbox = await open_sandbox()
    yield sandbox
    await sandbox.close()


def http(sandbox: Sandbox, user: str = "incident") -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=sandbox.url, headers={"Authorization": f"Bearer {sandbox.token_of(user)}"})


async def statuses(sandbox: Sandbox, count: int = 30) -> list[int]:
    async with http(sandbox) as client:
        return [(await client.get("/api/v4/users/me")).status_code for _ in range(count)]


async def test_the_same_seed_injects_the_same_faults():
    runs = []
    for seed in (5, 5, 6):
        sandbox = await open_sandbox(fault_seed=seed, faults=[{"kind": "error", "probability": 0.3}])
        try:
            runs.append(await statuses(sandbox))
        finally:
            await sandbox.close()
    assert runs[0] == runs[1] != runs[2]
    assert 500 in runs[0] and 200 in runs[0]


async def test_rules_select_by_path_method_and_caller(sb):
    sb.faults.add("error", path="/api/v4/users/*", methods="GET", users=["incident"])
    async with http(sb) as bot, http(sb, "bob") as bob:
        assert (await bot.get("/api/v4/users/me")).status_code == 500
        assert (await bob.get("/api/v4/users/me")).status_code == 200
        assert (await bot.get("/api/v4/teams/name/acme")).status_code == 200
    assert [(e.kind, e.method, e.path, e.status) for e in sb.faults.events] == [
        ("error", "GET", "/api/v4/users/me", 500)]
    with sb.faults.paused():
        assert await statuses(sb, 1) == [200]


async def test_rate_limit_answers_like_mattermosts_limiter(sb):
    sb.faults.add("rate_limit", retry_after=3, limit=1)
    async with http(sb) as client:
        limited = await client.get("/api/v4/users/me")
        assert limited.status_code == 429 and limited.text == "limit exceeded\n"
        assert limited.headers["X-Ratelimit-Reset"] == "3" and limited.headers["Retry-After"] == "3"
        assert limited.headers["X-Ratelimit-Remaining"] == "0"
        assert (await client.get("/api/v4/users/me")).status_code == 200


@pytest.mark.parametrize(("kind", "made"), [("drop_before", 0), ("drop_after", 1)])
async def test_dropped_connections_before_and_after_processing(sb, kind, made):
    channel = sb.channel("acme", "town-square")["id"]
    sb.faults.add(kind, path="/api/v4/posts", methods="POST")
    async with http(sb) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post("/api/v4/posts", json={"channel_id": channel, "message": "lost"})
    assert len([p for p in sb.posts(channel) if p["message"] == "lost"]) == made


async def test_slow_answers_arrive_late_but_arrive(sb):
    sb.faults.add("slow", delay=0.2, limit=1)
    async with http(sb) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/api/v4/users/me", timeout=0.05)
    assert sb.faults.counts() == {"slow": 1}


async def test_the_http_api_configures_faults(sb):
    async with httpx.AsyncClient(base_url=sb.url) as client:
        added = await client.post("/_sandbox/faults", json={"kind": "error", "status": 503, "users": ["incident"]})
        assert added.status_code == 201 and added.json()["status"] == 503
        assert (await client.post("/_sandbox/faults", json={"kind": "nonsense"})).status_code == 400
        assert await statuses(sb, 1) == [503]
        shown = (await client.get("/_sandbox/faults")).json()
        assert shown["counts"] == {"error": 1} and len(shown["rules"]) == 1
        assert (await client.put("/_sandbox/faults", json={"enabled": False})).json()["enabled"] is False
        assert await statuses(sb, 1) == [200]
        await client.put("/_sandbox/faults", json={"enabled": True, "seed": 3, "rules": []})
        assert (await client.delete("/_sandbox/faults")).json() == {"status": "OK"}
        assert sb.faults.rules == [] and sb.faults.seed == 3


def test_bad_rules_are_refused():
    sandbox = Sandbox(DEMO_SEED)
    for bad in ({"kind": "explode"}, {"kind": "error", "probability": 2}, {"kind": "error", "status": 404},
                {"kind": "error", "colour": "red"}, {"probability": 0.5}):
        with pytest.raises(ValueError):
            sandbox.faults.add_rule(sandbox.faults.rule_from_dict(bad))


async def test_a_repeated_pending_post_id_returns_the_post_already_made(sb):
    channel = sb.channel("acme", "town-square")["id"]
    body = {"channel_id": channel, "message": "once", "pending_post_id": "abc:1"}
    async with http(sb) as client:
        first = await client.post("/api/v4/posts", json=body)
        again = await client.post("/api/v4/posts", json=body)
        other = await client.post("/api/v4/posts", json={**body, "pending_post_id": "abc:2"})
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again.json()["pending_post_id"] == ""
    assert "metadata" not in again.json()
    assert other.json()["id"] != first.json()["id"]
    assert len([p for p in sb.posts(channel) if p["message"] == "once"]) == 2


async def test_a_failed_save_forgets_the_pending_post_id(sb):
    channel = sb.channel("acme", "town-square")["id"]
    async with http(sb) as client:
        refused = await client.post("/api/v4/posts", json={"channel_id": channel, "message": "x" * 20000,
                                                            "pending_post_id": "abc:3"})
        made = await client.post("/api/v4/posts", json={"channel_id": channel, "message": "fits",
                                                         "pending_post_id": "abc:3"})
    assert refused.status_code == 400
    assert made.status_code == 201 and made.json()["message"] == "fits"
