"""REST v4 wire facts: headers, ids, status codes, error shapes, paging."""

from __future__ import annotations

import re

from sandbox import Sandbox, SandboxConfig
from sandbox.ids import ALPHABET, is_valid_id, new_id

from .conftest import DEMO

ID_RE = re.compile(r"^[a-z0-9]{26}$")


def assert_app_error(status: int, headers, body, expected_status: int, error_id: str) -> None:
    assert status == expected_status, body
    assert headers["Content-Type"] == "application/json"
    assert set(body) >= {"id", "message", "detailed_error", "request_id", "status_code"}
    assert body["id"] == error_id
    assert body["status_code"] == expected_status
    assert body["request_id"] == headers["X-Request-Id"]


def test_new_id_uses_mattermost_alphabet() -> None:
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 26 and set(i) <= set(ALPHABET) and is_valid_id(i) for i in ids)
    assert not is_valid_id("a" * 25) and not is_valid_id("a-" * 13)


async def test_headers_and_exact_content_type(api, sb: Sandbox) -> None:
    status, headers, me = await api("GET", "/api/v4/users/me", as_user="bob")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert ID_RE.match(headers["X-Request-Id"])
    assert headers["X-Version-Id"].startswith("11.7.15.")
    assert headers["Expires"] == "0"
    assert me["username"] == "bob" and me["id"] == sb.user_id("bob")
    assert isinstance(me["create_at"], int) and me["create_at"] > 1_600_000_000_000


async def test_ping_needs_no_auth(api) -> None:
    status, headers, body = await api("GET", "/api/v4/system/ping?get_server_status=true")
    assert status == 200 and body["status"] == "OK" and body["database_status"] == "OK"
    assert headers["X-Version-Id"]


async def test_missing_and_wrong_token_are_401(api) -> None:
    assert_app_error(*await api("GET", "/api/v4/users/me"), 401, "api.context.session_expired.app_error")
    assert_app_error(*await api("GET", "/api/v4/users/me", headers={"Authorization": "Bearer " + new_id()}),
                     401, "api.context.session_expired.app_error")


async def test_token_header_variants(api, sb: Sandbox) -> None:
    tok = sb.token_of("carol")
    for hdr in (f"Token {tok}", f"bearer {tok}", f"BEARER {tok}"):
        status, _, me = await api("GET", "/api/v4/users/me", headers={"Authorization": hdr})
        assert status == 200 and me["username"] == "carol"


async def test_unknown_route_and_wrong_method_are_404(api) -> None:
    assert_app_error(*await api("GET", "/api/v4/does/not/exist", as_user="bob"), 404, "api.context.404.app_error")
    assert_app_error(*await api("PATCH", "/api/v4/users/me", as_user="bob"), 404, "api.context.404.app_error")


async def test_invalid_id_is_400_invalid_url_param(api) -> None:
    assert_app_error(*await api("GET", "/api/v4/users/abc", as_user="bob"), 400,
                     "api.context.invalid_url_param.app_error")
    assert_app_error(*await api("GET", "/api/v4/channels/abc/posts", as_user="bob"), 400,
                     "api.context.invalid_url_param.app_error")


async def test_malformed_json_is_400_invalid_body_param(api) -> None:
    status, headers, body = await api("POST", "/api/v4/posts", as_user="bob", data=b"{not json",
                                      headers={"Content-Type": "application/json"})
    assert_app_error(status, headers, body, 400, "api.context.invalid_body_param.app_error")


async def test_oversized_body_is_413() -> None:
    async with Sandbox(DEMO, config=SandboxConfig(max_body_bytes=1000)) as small:
        import aiohttp
        async with aiohttp.ClientSession() as s:
            async with s.post(small.url + "/api/v4/posts", data=b"x" * 5000,
                              headers={"Authorization": "Bearer " + small.token_of("bob")}) as r:
                body = await r.json(content_type=None)
                assert r.status == 413 and r.headers["Content-Type"] == "application/json"
                assert body["status_code"] == 413 and body["id"]


async def test_unknown_objects_are_404(api) -> None:
    assert_app_error(*await api("GET", f"/api/v4/users/{new_id()}", as_user="bob"), 404,
                     "app.user.missing_account.const")
    assert_app_error(*await api("GET", f"/api/v4/posts/{new_id()}", as_user="bob"), 404, "app.post.get.app_error")
    assert_app_error(*await api("GET", f"/api/v4/channels/{new_id()}", as_user="bob"), 404,
                     "app.channel.get.existing.app_error")
    assert_app_error(*await api("GET", "/api/v4/users/username/nobody", as_user="bob"), 404,
                     "app.user.missing_account.const")


async def test_internal_errors_become_500_app_error(api, sb: Sandbox, monkeypatch) -> None:
    def boom(*a, **k):
        raise RuntimeError("kaput")
    monkeypatch.setattr(sb.world, "channel_stats", boom)
    ch = sb.channel("acme", "town-square")
    status, headers, body = await api("GET", f"/api/v4/channels/{ch['id']}/stats", as_user="bob")
    assert_app_error(status, headers, body, 500, "api.context.unexpected.app_error")


async def test_create_post_201_and_fields(api, sb: Sandbox) -> None:
    ch = sb.channel("acme", "town-square")
    status, _, post = await api("POST", "/api/v4/posts", as_user="bob",
                                json_body={"channel_id": ch["id"], "message": "hi"})
    assert status == 201
    assert ID_RE.match(post["id"]) and post["user_id"] == sb.user_id("bob")
    assert post["create_at"] == post["update_at"] and post["delete_at"] == 0 and post["type"] == ""
    assert sb.posts(ch["id"])[-1]["id"] == post["id"]
    status, _, bot_post = await api("POST", "/api/v4/posts", as_user="incident",
                                    json_body={"channel_id": ch["id"], "message": "beep"})
    assert bot_post["props"]["from_bot"] == "true"


async def test_ok_only_routes_return_status_ok(api, sb: Sandbox) -> None:
    ch = sb.channel("acme", "town-square")
    _, _, post = await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": ch["id"], "message": "x"})
    for path in (f"/api/v4/posts/{post['id']}/pin", f"/api/v4/posts/{post['id']}/unpin"):
        status, _headers, body = await api("POST", path, as_user="bob")
        assert (status, body) == (200, {"status": "OK"})
    status, _, body = await api("DELETE", f"/api/v4/posts/{post['id']}", as_user="bob")
    assert (status, body) == (200, {"status": "OK"})
    assert post["id"] not in [p["id"] for p in sb.posts(ch["id"])]


async def test_patch_update_pin_thread_and_stats(api, sb: Sandbox) -> None:
    ch = sb.channel("acme", "town-square")
    _, _, root = await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": ch["id"], "message": "root"})
    _, _, reply = await api("POST", "/api/v4/posts", as_user="carol",
                            json_body={"channel_id": ch["id"], "message": "reply", "root_id": root["id"]})
    status, _, patched = await api("PUT", f"/api/v4/posts/{root['id']}/patch", as_user="bob",
                                   json_body={"message": "edited"})
    assert status == 200 and patched["message"] == "edited" and patched["edit_at"] > 0
    status, _, updated = await api("PUT", f"/api/v4/posts/{root['id']}", as_user="bob",
                                   json_body={"id": root["id"], "message": "full"})
    assert status == 200 and updated["message"] == "full"
    status, _, _ = await api("PUT", f"/api/v4/posts/{root['id']}", as_user="bob", json_body={"message": "no id"})
    assert status == 400
    status, _, _ = await api("PUT", f"/api/v4/posts/{root['id']}/patch", as_user="carol", json_body={"message": "x"})
    assert status == 403
    await api("POST", f"/api/v4/posts/{root['id']}/pin", as_user="carol")
    _, _, stats = await api("GET", f"/api/v4/channels/{ch['id']}/stats", as_user="bob")
    assert stats["pinnedpost_count"] == 1 and stats["member_count"] == 5
    assert [p["id"] for p in sb.pinned(ch["id"])] == [root["id"]]
    _, _, pinned = await api("GET", f"/api/v4/channels/{ch['id']}/pinned", as_user="bob")
    assert pinned["order"] == [root["id"]]
    _, _, thread = await api("GET", f"/api/v4/posts/{reply['id']}/thread", as_user="dave")
    assert set(thread["order"]) == {root["id"], reply["id"]}
    assert thread["posts"][root["id"]]["reply_count"] == 1


async def test_channel_posts_paging_before_after(api, sb: Sandbox) -> None:
    ch = sb.channel("acme", "off-topic")
    ids = []
    for i in range(7):
        _, _, p = await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": ch["id"], "message": str(i)})
        ids.append(p["id"])
    newest_first = ids[::-1]
    _, _, page0 = await api("GET", f"/api/v4/channels/{ch['id']}/posts?page=0&per_page=3", as_user="bob")
    assert page0["order"] == newest_first[:3] and page0["has_next"] is True
    assert page0["prev_post_id"] == newest_first[3] and page0["next_post_id"] == ""
    _, _, page2 = await api("GET", f"/api/v4/channels/{ch['id']}/posts?page=2&per_page=3", as_user="bob")
    assert page2["order"] == newest_first[6:] and page2["has_next"] is False
    _, _, before = await api("GET", f"/api/v4/channels/{ch['id']}/posts?before={ids[3]}&per_page=2", as_user="bob")
    assert before["order"] == [ids[2], ids[1]]
    _, _, after = await api("GET", f"/api/v4/channels/{ch['id']}/posts?after={ids[3]}&per_page=2", as_user="bob")
    assert after["order"] == [ids[5], ids[4]]
    _, _, empty = await api("GET", f"/api/v4/channels/{ch['id']}/posts?before={ids[0]}", as_user="bob")
    assert empty["order"] == [] and empty["posts"] == {}


async def test_channel_posts_since_includes_edits_deletes_and_roots(api, sb: Sandbox) -> None:
    ch = sb.channel("acme", "off-topic")
    _, _, root = await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": ch["id"], "message": "r"})
    _, _, other = await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": ch["id"], "message": "o"})
    since = other["create_at"]
    _, _, reply = await api("POST", "/api/v4/posts", as_user="carol",
                            json_body={"channel_id": ch["id"], "message": "re", "root_id": root["id"]})
    await api("DELETE", f"/api/v4/posts/{other['id']}", as_user="bob")
    _, _, plist = await api("GET", f"/api/v4/channels/{ch['id']}/posts?since={since}", as_user="bob")
    assert set(plist["order"]) == {reply["id"], other["id"], root["id"]}
    assert plist["posts"][other["id"]]["delete_at"] > 0
    status, _, _ = await api("GET", f"/api/v4/channels/{ch['id']}/posts?since=abc", as_user="bob")
    assert status == 400


async def test_users_and_teams_routes(api, sb: Sandbox) -> None:
    team = sb.team("acme")
    ts = sb.channel("acme", "leadership")
    status, _, users = await api("POST", "/api/v4/users/ids", as_user="bob",
                                 json_body=[sb.user_id("alice"), new_id()])
    assert status == 200 and [u["username"] for u in users] == ["alice"]
    _, _, users = await api("POST", "/api/v4/users/usernames", as_user="bob", json_body=["carol", "nobody"])
    assert [u["username"] for u in users] == ["carol"]
    _, _, members = await api("GET", f"/api/v4/users?in_channel={ts['id']}", as_user="alice")
    assert sorted(u["username"] for u in members) == ["alice", "carol"]
    _, _, members = await api("GET", f"/api/v4/users?in_team={team['id']}&per_page=2", as_user="bob")
    assert len(members) == 2
    status, _, _ = await api("GET", f"/api/v4/users?in_channel={ts['id']}", as_user="bob")
    assert status == 403
    _, _, t = await api("GET", "/api/v4/teams/name/acme", as_user="bob")
    assert t["id"] == team["id"] and t["display_name"] == "ACME"
    _, _, teams = await api("GET", "/api/v4/users/me/teams", as_user="bob")
    assert [x["name"] for x in teams] == ["acme"]
    _, _, tm = await api("GET", f"/api/v4/teams/{team['id']}/members/{sb.user_id('incident')}", as_user="bob")
    assert tm["roles"] == "team_user team_admin" and tm["scheme_admin"] is True
    _, _, tms = await api("GET", f"/api/v4/teams/{team['id']}/members", as_user="bob")
    assert len(tms) == 5
    _, _, bot = await api("GET", f"/api/v4/bots/{sb.user_id('incident')}", as_user="alice")
    assert bot["username"] == "incident" and bot["owner_id"] == sb.user_id("alice")
    _, _, inc = await api("GET", "/api/v4/users/username/incident", as_user="bob")
    assert inc["is_bot"] is True


async def test_channel_create_validation_and_duplicates(api, sb: Sandbox) -> None:
    tid = sb.team("acme")["id"]
    status, _, ch = await api("POST", "/api/v4/channels", as_user="bob",
                              json_body={"team_id": tid, "name": "inc-42", "display_name": "INC 42", "type": "P"})
    assert status == 201 and ch["type"] == "P" and ch["creator_id"] == sb.user_id("bob")
    _, _, member = await api("GET", f"/api/v4/channels/{ch['id']}/members/me", as_user="bob")
    assert member["roles"] == "channel_user channel_admin"
    status, _, err = await api("POST", "/api/v4/channels", as_user="carol",
                               json_body={"team_id": tid, "name": "inc-42", "display_name": "dup", "type": "O"})
    assert status == 400 and err["id"] == "store.sql_channel.save_channel.exists.app_error"
    for bad in ("Bad Name", "-x", "a", "x" * 65, "UPPER"):
        status, _, err = await api("POST", "/api/v4/channels", as_user="carol",
                                   json_body={"team_id": tid, "name": bad, "display_name": "d", "type": "O"})
        assert status == 400 and err["id"] == "model.channel.is_valid.2_or_more.app_error", bad
    status, _, patched = await api("PUT", f"/api/v4/channels/{ch['id']}/patch", as_user="bob",
                                   json_body={"header": "sev1"})
    assert status == 200 and patched["header"] == "sev1"


async def test_direct_channel(api, sb: Sandbox) -> None:
    a, b = sb.user_id("bob"), sb.user_id("carol")
    status, _, dm = await api("POST", "/api/v4/channels/direct", as_user="bob", json_body=[a, b])
    assert status == 201 and dm["type"] == "D" and dm["name"] == "__".join(sorted((a, b))) and dm["team_id"] == ""
    status, _, again = await api("POST", "/api/v4/channels/direct", as_user="carol", json_body=[b, a])
    assert status == 201 and again["id"] == dm["id"]
    status, _, _ = await api("POST", "/api/v4/channels/direct", as_user="dave", json_body=[a, b])
    assert status == 403


async def test_members_add_remove_and_system_posts(api, sb: Sandbox) -> None:
    ch = sb.channel("acme", "off-topic")
    dave = sb.user_id("dave")
    status, _, _ = await api("DELETE", f"/api/v4/channels/{ch['id']}/members/{dave}", as_user="bob")
    assert status == 200 and dave not in sb.channel_members(ch["id"])
    removed = sb.posts(ch["id"])[-1]
    assert removed["type"] == "system_remove_from_channel" and removed["message"] == "@dave removed from the channel."
    status, _, member = await api("POST", f"/api/v4/channels/{ch['id']}/members", as_user="bob",
                                  json_body={"user_id": dave})
    assert status == 201 and member["user_id"] == dave
    assert sb.posts(ch["id"])[-1]["type"] == "system_add_to_channel"
    await api("DELETE", f"/api/v4/channels/{ch['id']}/members/{dave}", as_user="dave")
    left = sb.posts(ch["id"])[-1]
    assert left["type"] == "system_leave_channel" and left["message"] == "@dave left the channel."
    await api("POST", f"/api/v4/channels/{ch['id']}/members", as_user="dave", json_body={"user_id": dave})
    assert sb.posts(ch["id"])[-1]["type"] == "system_join_channel"
    assert sb.channel_by_id(ch["id"])["total_msg_count"] == 0
    ts = sb.channel("acme", "town-square")
    status, _, err = await api("DELETE", f"/api/v4/channels/{ts['id']}/members/{dave}", as_user="dave")
    assert status == 400 and err["id"] == "api.channel.remove.default.app_error"
    _, _, members = await api("GET", f"/api/v4/channels/{ts['id']}/members?per_page=2", as_user="bob")
    assert len(members) == 2


async def test_reactions_and_files(api, sb: Sandbox) -> None:
    ch = sb.channel("acme", "town-square")
    _, _, post = await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": ch["id"], "message": "x"})
    body = {"user_id": sb.user_id("carol"), "post_id": post["id"], "emoji_name": "eyes"}
    status, _, reaction = await api("POST", "/api/v4/reactions", as_user="carol", json_body=body)
    assert status == 201 and reaction["emoji_name"] == "eyes"
    status, _, _ = await api("POST", "/api/v4/reactions", as_user="bob", json_body=body)
    assert status == 403
    _, _, listed = await api("GET", f"/api/v4/posts/{post['id']}/reactions", as_user="dave")
    assert [r["user_id"] for r in listed] == [sb.user_id("carol")]
    status, _, ok = await api("DELETE", f"/api/v4/users/me/posts/{post['id']}/reactions/eyes", as_user="carol")
    assert (status, ok) == (200, {"status": "OK"})
    info = await sb.user("bob").upload("town-square", "notes.txt", b"hello")
    assert info["name"] == "notes.txt" and info["size"] == 5 and info["mime_type"] == "text/plain"
    p = await sb.user("bob").post("town-square", "with file", files=[("a.txt", b"abc")])
    fid = p["file_ids"][0]
    status, _headers, data = await api("GET", f"/api/v4/files/{fid}", as_user="dave")
    assert status == 200 and data == b"abc"
    _, _, finfo = await api("GET", f"/api/v4/files/{fid}/info", as_user="dave")
    assert finfo["post_id"] == p["id"]


async def test_hashtags_are_parsed(sb: Sandbox) -> None:
    post = await sb.user("bob").post("town-square", "db down #sev1 #db-outage, see a#b")
    assert post["hashtags"] == "#sev1 #db-outage"


async def test_archive_channel_keeps_its_name_taken(sb, api):
    """DELETE /channels/{id} archives; only channel admins (the creator) and system admins may."""
    team_id = sb.team("acme")["id"]
    status, _, channel = await api("POST", "/api/v4/channels", as_user="bob", json_body={
        "team_id": team_id, "name": "tmp-room", "display_name": "Tmp", "type": "O"})
    assert status == 201
    status, _, _ = await api("DELETE", f"/api/v4/channels/{channel['id']}", as_user="carol")
    assert status == 403
    status, _, body = await api("DELETE", f"/api/v4/channels/{channel['id']}", as_user="bob")
    assert status == 200 and body == {"status": "OK"}
    status, _, body = await api("POST", "/api/v4/channels", as_user="bob", json_body={
        "team_id": team_id, "name": "tmp-room", "display_name": "Tmp", "type": "O"})
    assert status == 400 and body["id"] == "store.sql_channel.save_channel.previously.app_error"
    assert sb.channel_by_id(channel["id"])["delete_at"] > 0
    assert any(p["type"] == "system_channel_deleted" for p in sb.posts(channel["id"]))


async def test_since_serves_edit_history_copies_and_deleted_posts(api, sb: Sandbox) -> None:
    """Every edit (message, props, pin) leaves a deleted copy that a since answer serves, as
    store Update / GetPostsSince do; editing a reply bumps its root too."""
    ch = sb.channel("acme", "off-topic")
    _, _, root = await api("POST", "/api/v4/posts", as_user="bob", json_body={"channel_id": ch["id"], "message": "r"})
    _, _, reply = await api("POST", "/api/v4/posts", as_user="bob",
                            json_body={"channel_id": ch["id"], "message": "v1", "root_id": root["id"]})
    since = sb.world.posts[root["id"]]["update_at"]
    await api("PUT", f"/api/v4/posts/{reply['id']}/patch", as_user="bob", json_body={"message": "v2"})
    await api("PUT", f"/api/v4/posts/{reply['id']}/patch", as_user="bob", json_body={"props": {"k": "v"}})
    await api("POST", f"/api/v4/posts/{reply['id']}/pin", as_user="bob")
    _, _, plist = await api("GET", f"/api/v4/channels/{ch['id']}/posts?since={since}", as_user="bob")
    copies = [p for p in plist["posts"].values() if p["original_id"] == reply["id"]]
    assert [c["message"] for c in sorted(copies, key=lambda c: c["update_at"])] == ["v1", "v2", "v2"]
    assert all(c["delete_at"] == c["update_at"] > 0 and c["create_at"] == reply["create_at"] for c in copies)
    assert {c["id"] for c in copies} < set(plist["order"])
    assert root["id"] in plist["order"]  # the reply's edit bumped its root's update_at
    # Copies are not posts of the channel: pages, the thread and the post itself know nothing of them.
    _, _, page = await api("GET", f"/api/v4/channels/{ch['id']}/posts", as_user="bob")
    assert not {c["id"] for c in copies} & set(page["posts"])
    status, _, _ = await api("GET", f"/api/v4/posts/{copies[0]['id']}", as_user="bob")
    assert status == 404
    # since=0 is no since at all (api4 getPostsForChannel): the newest page.
    _, _, zero = await api("GET", f"/api/v4/channels/{ch['id']}/posts?since=0&per_page=1", as_user="bob")
    assert zero["order"] == [reply["id"]]


async def test_since_past_the_cap_is_an_arbitrary_subset(api, sb: Sandbox) -> None:
    """LIMIT 1000 without ORDER BY: neither the oldest nor the newest changes are the ones kept,
    but the answer is sorted newest first; collapsedThreads=true keeps the newest roots."""
    ch = sb.channel("acme", "off-topic")
    bob = sb.user_id("bob")
    made = [sb.world.create_post(user_id=bob, channel_id=ch["id"], message=f"m{i}")["id"] for i in range(1300)]
    since = sb.world.posts[made[0]]["create_at"] - 1
    _, _, plist = await api("GET", f"/api/v4/channels/{ch['id']}/posts?since={since}", as_user="bob")
    kept = plist["order"]
    assert len(kept) == 1000 and set(kept) < set(made)
    assert set(made[:1000]) != set(kept) and set(made[-1000:]) != set(kept)
    times = [plist["posts"][pid]["create_at"] for pid in kept]
    assert times == sorted(times, reverse=True)
    _, _, again = await api("GET", f"/api/v4/channels/{ch['id']}/posts?since={since}", as_user="bob")
    assert again["order"] == kept  # the same query keeps the same rows, like a database would
    _, _, crt = await api("GET", f"/api/v4/channels/{ch['id']}/posts?since={since}&collapsedThreads=true",
                          as_user="bob")
    assert set(crt["order"]) == set(made[-1000:])


async def test_before_and_after_compare_create_at_like_get_posts_around(api, sb: Sandbox) -> None:
    """Posts made in the same millisecond as the anchor are neither before nor after it."""
    ch = sb.channel("acme", "off-topic")
    bob = sb.user_id("bob")
    posts = [sb.world.create_post(user_id=bob, channel_id=ch["id"], message=str(i)) for i in range(4)]
    for p in posts[1:3]:
        p["create_at"] = posts[1]["create_at"]  # 1 and 2 share a millisecond
    _, _, before = await api("GET", f"/api/v4/channels/{ch['id']}/posts?before={posts[2]['id']}", as_user="bob")
    assert posts[1]["id"] not in before["order"] and before["order"][0] == posts[0]["id"]
    _, _, after = await api("GET", f"/api/v4/channels/{ch['id']}/posts?after={posts[1]['id']}", as_user="bob")
    assert after["order"] == [posts[3]["id"]]


async def test_creating_a_channel_posts_the_creators_join_message(api, sb: Sandbox) -> None:
    """CreateChannelWithUser posts system_join_channel for the creator, public or private."""
    team = sb.team("acme")
    for kind in ("O", "P"):
        status, _, ch = await api("POST", "/api/v4/channels", as_user="bob", json_body={
            "team_id": team["id"], "name": f"made-{kind.lower()}", "display_name": "Made", "type": kind})
        assert status == 201
        posts = sb.posts(ch["id"])
        assert [(p["type"], p["user_id"], p["message"], p["props"]) for p in posts] == [
            ("system_join_channel", sb.user_id("bob"), "bob joined the channel.", {"username": "bob"})]
        assert sb.channel_by_id(ch["id"])["total_msg_count"] == 0
