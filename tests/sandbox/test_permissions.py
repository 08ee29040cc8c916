"""Default Mattermost permissions as the sandbox enforces them."""

from __future__ import annotations

from sandbox import Sandbox


async def test_private_channel_invisible_to_non_members(api, sb: Sandbox) -> None:
    lead = sb.channel("acme", "leadership")
    tid = sb.team("acme")["id"]
    status, _, err = await api("GET", f"/api/v4/channels/{lead['id']}", as_user="bob")
    assert status == 403 and err["id"] == "api.context.permissions.app_error"
    status, _, err = await api("GET", f"/api/v4/teams/{tid}/channels/name/leadership", as_user="bob")
    assert status == 404 and err["id"] == "app.channel.get_by_name.missing.app_error"
    status, _, _ = await api("GET", f"/api/v4/channels/{lead['id']}/posts", as_user="bob")
    assert status == 403
    status, _, _ = await api("GET", f"/api/v4/channels/{lead['id']}/members", as_user="bob")
    assert status == 403
    # members and system admins see it
    for who in ("carol", "alice"):
        status, _, ch = await api("GET", f"/api/v4/teams/{tid}/channels/name/leadership", as_user=who)
        assert status == 200 and ch["id"] == lead["id"]
    _, _, mine = await api("GET", f"/api/v4/users/me/teams/{tid}/channels", as_user="bob")
    assert "leadership" not in {c["name"] for c in mine} and "town-square" in {c["name"] for c in mine}


async def test_posting_needs_channel_membership(api, sb: Sandbox) -> None:
    lead = sb.channel("acme", "leadership")
    off = sb.channel("acme", "off-topic")
    status, _, err = await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": lead["id"], "message": "x"})
    assert status == 403 and err["id"] == "api.context.permissions.app_error"
    # incident is a team member but not in off-topic: public non-member posting is 403 too
    status, _, _ = await api("POST", "/api/v4/posts", as_user="incident", json_body={"channel_id": off["id"], "message": "x"})
    assert status == 403
    # ... but reading a public channel as a team member is allowed
    status, _, _ = await api("GET", f"/api/v4/channels/{off['id']}/posts", as_user="incident")
    assert status == 200
    # system admin may post anywhere
    status, _, _ = await api("POST", "/api/v4/posts", as_user="alice", json_body={"channel_id": off["id"], "message": "x"})
    assert status == 201


async def test_post_all_role_allows_posting_without_membership(api) -> None:
    from sandbox import Sandbox as SB
    seed = {"teams": [{"name": "t"}], "users": [
        {"username": "u", "teams": ["t"]},
        {"username": "poster", "roles": "system_user system_post_all", "is_bot": True, "teams": ["t"]}],
        "channels": [{"team": "t", "name": "secret", "type": "P", "members": ["u"]}]}
    async with SB(seed) as other:
        import aiohttp
        cid = other.channel("t", "secret")["id"]
        async with aiohttp.ClientSession() as s:
            async with s.post(other.url + "/api/v4/posts", json={"channel_id": cid, "message": "m"},
                              headers={"Authorization": "Bearer " + other.token_of("poster")}) as r:
                assert r.status == 201


async def test_upload_needs_membership(api, sb: Sandbox) -> None:
    import aiohttp
    lead = sb.channel("acme", "leadership")
    form = aiohttp.FormData()
    form.add_field("channel_id", lead["id"])
    form.add_field("files", b"data", filename="x.txt")
    status, _, err = await api("POST", "/api/v4/files", as_user="bob", data=form)
    assert status == 403 and err["id"] == "api.context.permissions.app_error"


async def test_ephemeral_posts_need_system_admin(api, sb: Sandbox) -> None:
    ts = sb.channel("acme", "town-square")
    body = {"user_id": sb.user_id("bob"), "post": {"channel_id": ts["id"], "message": "psst"}}
    status, _, err = await api("POST", "/api/v4/posts/ephemeral", as_user="incident", json_body=body)
    assert status == 403 and err["id"] == "api.context.permissions.app_error"
    status, _, post = await api("POST", "/api/v4/posts/ephemeral", as_user="alice", json_body=body)
    assert status == 201 and post["type"] == "system_ephemeral"
    assert [p["message"] for p in sb.user("bob").ephemeral("town-square")] == ["psst"]
    assert post["id"] not in [p["id"] for p in sb.posts(ts["id"])]
    status, _, _ = await api("GET", f"/api/v4/posts/{post['id']}", as_user="bob")
    assert status == 404


async def test_command_registration_needs_team_admin(api, sb: Sandbox) -> None:
    body = {"team_id": sb.team("acme")["id"], "trigger": "x", "url": "http://127.0.0.1:1/x", "method": "P"}
    status, _, err = await api("POST", "/api/v4/commands", as_user="bob", json_body=body)
    assert status == 403 and err["id"] == "api.context.permissions.app_error"
    status, _, cmd = await api("POST", "/api/v4/commands", as_user="incident", json_body=body)
    assert status == 201
    body["trigger"] = "y"
    status, _, _ = await api("POST", "/api/v4/commands", as_user="alice", json_body=body)
    assert status == 201
    status, _, _ = await api("GET", f"/api/v4/commands?team_id={body['team_id']}&custom_only=true", as_user="bob")
    assert status == 403
    status, _, listed = await api("GET", f"/api/v4/commands?team_id={body['team_id']}", as_user="bob")
    assert status == 200 and all(c["token"] == "" for c in listed)
    status, _, _ = await api("DELETE", f"/api/v4/commands/{cmd['id']}", as_user="bob")
    assert status == 403


async def test_editing_and_deleting_others_posts(api, sb: Sandbox) -> None:
    ts = sb.channel("acme", "town-square")
    _, _, post = await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": ts["id"], "message": "m"})
    status, _, _ = await api("DELETE", f"/api/v4/posts/{post['id']}", as_user="dave")
    assert status == 403
    status, _, _ = await api("PUT", f"/api/v4/posts/{post['id']}/patch", as_user="incident", json_body={"message": "by team admin"})
    assert status == 200
    status, _, _ = await api("DELETE", f"/api/v4/posts/{post['id']}", as_user="alice")
    assert status == 200


async def test_private_channel_member_management(api, sb: Sandbox) -> None:
    lead = sb.channel("acme", "leadership")
    bob, dave = sb.user_id("bob"), sb.user_id("dave")
    status, _, _ = await api("POST", f"/api/v4/channels/{lead['id']}/members", as_user="bob", json_body={"user_id": bob})
    assert status == 403
    status, _, _ = await api("POST", f"/api/v4/channels/{lead['id']}/members", as_user="carol", json_body={"user_id": dave})
    assert status == 201 and dave in sb.channel_members(lead["id"])
