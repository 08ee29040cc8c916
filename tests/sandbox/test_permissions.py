"""Mattermost's default permissions per role, route by route, as the sandbox enforces them.

One row per row of the table in sandbox/README.md ("Permissions"): the callers in ``calls``
run in order against a fresh demo world; each gets the server's status and, for errors, its
error id. Demo world: alice is system admin; bob, carol and dave are team users; the bot
``incident`` is team admin and, like a bot nobody invited, not in ``off-topic``; private
``leadership`` has alice and carol.
"""

from __future__ import annotations

import aiohttp
import pytest

from sandbox import Sandbox

PERM = "api.context.permissions.app_error"
MISSING_ID = "zzzzzzzzzzzzzzzzzzzzzzzzzz"

# (row, method, path, body, [(caller, status, error id or None), ...])
ROWS = [
    ("get channel: private needs read_channel", "GET", "/api/v4/channels/{lead}", None,
     [("bob", 403, PERM), ("incident", 403, PERM), ("carol", 200, None)]),
    ("get channel: public is read_public_channel in the team", "GET", "/api/v4/channels/{off}", None,
     [("incident", 200, None)]),
    ("get channel: unknown", "GET", f"/api/v4/channels/{MISSING_ID}", None,
     [("bob", 404, "app.channel.get.existing.app_error")]),
    ("channel by name: private is 404 unless read_channel or manage_team", "GET",
     "/api/v4/teams/{team}/channels/name/leadership", None,
     [("bob", 404, "app.channel.get_by_name.missing.app_error"), ("incident", 200, None), ("carol", 200, None)]),
    ("channel by team name: private", "GET", "/api/v4/teams/name/acme/channels/name/leadership", None,
     [("dave", 404, "app.channel.get_by_name.missing.app_error"), ("carol", 200, None)]),
    ("channel by name: public", "GET", "/api/v4/teams/{team}/channels/name/off-topic", None,
     [("incident", 200, None)]),
    ("channel members need read_channel at channel scope", "GET", "/api/v4/channels/{off}/members", None,
     [("incident", 403, PERM), ("bob", 200, None)]),
    ("one channel member needs read_channel at channel scope", "GET", "/api/v4/channels/{off}/members/{bob_id}",
     None, [("incident", 403, PERM), ("carol", 200, None), ("alice", 200, None)]),
    ("channel member of an unknown channel is 403 too", "GET", f"/api/v4/channels/{MISSING_ID}/members/{{bob_id}}",
     None, [("bob", 403, PERM)]),
    ("channel stats need read_channel at channel scope", "GET", "/api/v4/channels/{off}/stats", None,
     [("incident", 403, PERM), ("bob", 200, None)]),
    ("pinned posts: public channel readable by the team", "GET", "/api/v4/channels/{off}/pinned", None,
     [("incident", 200, None)]),
    ("pinned posts: private needs read_channel_content", "GET", "/api/v4/channels/{lead}/pinned", None,
     [("bob", 403, PERM), ("carol", 200, None)]),
    ("channel posts: public channel readable by the team", "GET", "/api/v4/channels/{off}/posts", None,
     [("incident", 200, None)]),
    ("channel posts: private needs read_channel_content", "GET", "/api/v4/channels/{lead}/posts", None,
     [("bob", 403, PERM), ("carol", 200, None)]),
    ("channel posts: include_deleted is for system admins", "GET", "/api/v4/channels/{ts}/posts?include_deleted=true",
     None, [("bob", 403, PERM), ("alice", 200, None)]),
    ("create channel needs create_public_channel in the team", "POST", "/api/v4/channels",
     {"team_id": MISSING_ID, "name": "new-one", "display_name": "New", "type": "O"},
     [("bob", 403, PERM), ("alice", 404, "app.team.get.find.app_error")]),
    ("direct channel of others needs manage_system", "POST", "/api/v4/channels/direct", ["{carol_id}", "{dave_id}"],
     [("bob", 403, PERM), ("alice", 201, None)]),
    ("patch channel needs manage_public_channel_properties", "PUT", "/api/v4/channels/{off}/patch",
     {"purpose": "p"}, [("incident", 403, PERM), ("bob", 200, None)]),
    ("archive channel needs delete_private_channel (any member)", "DELETE", "/api/v4/channels/{lead}", None,
     [("bob", 403, PERM), ("carol", 200, None)]),
    ("join a public channel: join_public_channels", "POST", "/api/v4/channels/{off}/members",
     {"user_id": "{incident_id}"}, [("incident", 201, None)]),
    ("add others to a public channel: manage_public_channel_members", "POST", "/api/v4/channels/{off}/members",
     {"user_id": "{bob_id}"}, [("incident", 403, PERM), ("dave", 201, None)]),
    ("add to a private channel: manage_private_channel_members", "POST", "/api/v4/channels/{lead}/members",
     {"user_id": "{dave_id}"}, [("bob", 403, PERM), ("incident", 403, PERM), ("carol", 201, None)]),
    ("remove others from a public channel: manage_public_channel_members", "DELETE",
     "/api/v4/channels/{off}/members/{bob_id}", None, [("incident", 403, PERM), ("dave", 200, None)]),
    ("remove others from a private channel: manage_private_channel_members", "DELETE",
     "/api/v4/channels/{lead}/members/{carol_id}", None, [("bob", 403, PERM), ("alice", 200, None)]),
    ("team's public channels need list_team_channels", "GET", f"/api/v4/teams/{MISSING_ID}/channels", None,
     [("bob", 403, PERM), ("alice", 200, None)]),
    ("someone else's channels need edit_other_users", "GET", "/api/v4/users/{carol_id}/teams/{team}/channels", None,
     [("bob", 403, PERM), ("alice", 200, None)]),
    ("own channels need view_team", "GET", f"/api/v4/users/me/teams/{MISSING_ID}/channels", None,
     [("bob", 403, PERM)]),
    ("users in a channel need read_channel at channel scope", "GET", "/api/v4/users?in_channel={off}", None,
     [("incident", 403, PERM), ("bob", 200, None)]),
    ("users in a team need view_team", "GET", f"/api/v4/users?in_team={MISSING_ID}", None, [("bob", 403, PERM)]),
    ("someone else's teams need edit_other_users", "GET", "/api/v4/users/{carol_id}/teams", None,
     [("bob", 403, PERM), ("alice", 200, None)]),
    ("someone else's team members need edit_other_users", "GET", "/api/v4/users/{carol_id}/teams/members", None,
     [("bob", 403, PERM), ("carol", 200, None)]),
    ("team members need view_team", "GET", f"/api/v4/teams/{MISSING_ID}/members", None,
     [("bob", 403, PERM), ("alice", 404, "app.team.get.find.app_error")]),
    ("a team needs view_team", "GET", "/api/v4/teams/{team}", None, [("bob", 200, None)]),
    ("an unknown team", "GET", f"/api/v4/teams/{MISSING_ID}", None, [("bob", 404, "app.team.get.find.app_error")]),
    ("open a dialog needs a valid trigger id", "POST", "/api/v4/actions/dialogs/open",
     {"trigger_id": "bm90IGEgdHJpZ2dlcg==", "url": "http://127.0.0.1:1/d", "dialog": {}},
     [("bob", 400, "interactive_message.decode_trigger_id.missing_data")]),
    ("create post needs create_post", "POST", "/api/v4/posts", {"channel_id": "{off}", "message": "m"},
     [("incident", 403, PERM), ("bob", 201, None)]),
    ("create post in an unknown channel is 403", "POST", "/api/v4/posts", {"channel_id": MISSING_ID, "message": "m"},
     [("bob", 403, PERM)]),
    ("ephemeral posts need create_post_ephemeral (system admins)", "POST", "/api/v4/posts/ephemeral",
     {"user_id": "{bob_id}", "post": {"channel_id": "{ts}", "message": "psst"}},
     [("incident", 403, PERM), ("alice", 201, None)]),
    ("one post needs read access to its channel", "GET", "/api/v4/posts/{lead_post}", None,
     [("bob", 403, PERM), ("carol", 200, None)]),
    ("one post of a public channel", "GET", "/api/v4/posts/{off_post}", None, [("incident", 200, None)]),
    ("an unknown post", "GET", f"/api/v4/posts/{MISSING_ID}", None, [("bob", 404, "app.post.get.app_error")]),
    ("a thread needs read access", "GET", "/api/v4/posts/{lead_post}/thread", None,
     [("bob", 403, PERM), ("carol", 200, None)]),
    ("post files need read access (403 for unknown posts)", "GET", f"/api/v4/posts/{MISSING_ID}/files/info", None,
     [("bob", 403, PERM)]),
    ("patch someone else's post needs edit_others_posts (not team admins)", "PUT", "/api/v4/posts/{off_post}/patch",
     {"message": "edited"}, [("incident", 403, PERM), ("dave", 403, PERM), ("alice", 200, None), ("bob", 200, None)]),
    ("update someone else's post needs edit_others_posts", "PUT", "/api/v4/posts/{off_post}",
     {"id": "{off_post}", "message": "edited"}, [("carol", 403, PERM), ("bob", 200, None)]),
    ("patch an unknown post is 403", "PUT", f"/api/v4/posts/{MISSING_ID}/patch", {"message": "x"},
     [("bob", 403, PERM)]),
    ("delete someone else's post needs delete_others_posts (team admins have it)", "DELETE",
     "/api/v4/posts/{off_post}", None, [("dave", 403, PERM), ("incident", 200, None)]),
    ("pin needs read access to the channel", "POST", "/api/v4/posts/{lead_post}/pin", None,
     [("bob", 403, PERM), ("carol", 200, None)]),
    ("pin in a public channel: read access is enough", "POST", "/api/v4/posts/{off_post}/pin", None,
     [("incident", 200, None)]),
    ("unpin an unknown post is 403", "POST", f"/api/v4/posts/{MISSING_ID}/unpin", None, [("bob", 403, PERM)]),
    ("react needs add_reaction at channel scope", "POST", "/api/v4/reactions",
     {"user_id": "{incident_id}", "post_id": "{off_post}", "emoji_name": "eyes"},
     [("incident", 403, PERM)]),
    ("react as someone else", "POST", "/api/v4/reactions",
     {"user_id": "{carol_id}", "post_id": "{off_post}", "emoji_name": "eyes"},
     [("bob", 403, "api.reaction.save_reaction.user_id.app_error")]),
    ("list reactions needs read_channel_content at channel scope", "GET", "/api/v4/posts/{off_post}/reactions", None,
     [("incident", 403, PERM), ("bob", 200, None)]),
    ("unreact needs remove_reaction at channel scope", "DELETE",
     "/api/v4/users/{incident_id}/posts/{off_post}/reactions/tada", None, [("incident", 403, PERM)]),
    ("remove someone else's reaction needs remove_others_reactions", "DELETE",
     "/api/v4/users/{carol_id}/posts/{off_post}/reactions/tada", None, [("bob", 403, PERM), ("alice", 200, None)]),
    ("a file needs read_channel_content on its channel", "GET", "/api/v4/files/{off_file}/info", None,
     [("incident", 403, PERM), ("dave", 200, None), ("bob", 200, None)]),
    ("register a command needs manage_slash_commands", "POST", "/api/v4/commands",
     {"team_id": "{team}", "trigger": "x", "url": "http://127.0.0.1:1/x", "method": "P"},
     [("bob", 403, PERM), ("incident", 201, None)]),
    ("list commands: custom_only needs manage_slash_commands", "GET",
     "/api/v4/commands?team_id={team}&custom_only=true", None, [("bob", 403, PERM), ("incident", 200, None)]),
    ("list commands needs view_team", "GET", f"/api/v4/commands?team_id={MISSING_ID}", None, [("bob", 403, PERM)]),
    ("a command is hidden without manage_slash_commands", "GET", "/api/v4/commands/{cmd}", None,
     [("bob", 404, "store.sql_command.save.get.app_error"), ("incident", 200, None)]),
    ("regenerate a command token", "PUT", "/api/v4/commands/{cmd}/regen_token", None,
     [("dave", 404, "store.sql_command.save.get.app_error"), ("alice", 200, None)]),
    ("delete a command", "DELETE", "/api/v4/commands/{cmd}", None,
     [("bob", 404, "store.sql_command.save.get.app_error"), ("incident", 200, None)]),
    ("execute a command needs create_post at channel scope", "POST", "/api/v4/commands/execute",
     {"channel_id": "{off}", "command": "/echo hi"}, [("incident", 403, PERM), ("bob", 200, None)]),
    ("submit a dialog needs read access to the channel", "POST", "/api/v4/actions/dialogs/submit",
     {"url": "http://127.0.0.1:1/d", "channel_id": "{lead}", "callback_id": "c", "submission": {}},
     [("bob", 403, PERM)]),
    ("submit a dialog in an unknown channel", "POST", "/api/v4/actions/dialogs/submit",
     {"url": "http://127.0.0.1:1/d", "channel_id": MISSING_ID, "callback_id": "c", "submission": {}},
     [("bob", 404, "app.channel.get.existing.app_error")]),
    ("click an action needs read_channel_content at channel scope", "POST",
     "/api/v4/posts/{action_post}/actions/{action_id}", {}, [("incident", 403, PERM)]),
    ("a bot needs read_others_bots unless owned", "GET", "/api/v4/bots/{incident_id}", None,
     [("bob", 403, PERM), ("alice", 200, None)]),
]


async def _world(sb: Sandbox) -> dict[str, str]:
    """Ids the rows refer to, and a few objects made by their owners."""
    ids = {"team": sb.team("acme")["id"], "ts": sb.channel("acme", "town-square")["id"],
           "off": sb.channel("acme", "off-topic")["id"], "lead": sb.channel("acme", "leadership")["id"]}
    for name in ("alice", "bob", "carol", "dave", "incident"):
        ids[f"{name}_id"] = sb.user_id(name)
    bob, carol = sb.user("bob"), sb.user("carol")
    ids["off_post"] = (await bob.post("off-topic", "bob's post"))["id"]
    ids["lead_post"] = (await carol.post("leadership", "carol's secret"))["id"]
    ids["off_file"] = (await bob.upload("off-topic", "notes.txt", b"notes"))["id"]
    await carol.react(ids["off_post"], "tada")
    action = {"name": "Go", "integration": {"url": "http://127.0.0.1:1/act"}}
    # SimUser.post sends no props, so the post with a button is made through REST.
    async with aiohttp.ClientSession() as s:
        async with s.post(sb.url + "/api/v4/posts", headers={"Authorization": f"Bearer {sb.token_of('bob')}"},
                          json={"channel_id": ids["off"], "message": "",
                                "props": {"attachments": [{"text": "t", "actions": [action]}]}}) as r:
            post = await r.json()
        ids["action_post"] = post["id"]
        ids["action_id"] = post["props"]["attachments"][0]["actions"][0]["id"]
        async with s.post(sb.url + "/api/v4/commands", headers={"Authorization": f"Bearer {sb.token_of('incident')}"},
                          json={"team_id": ids["team"], "trigger": "table", "url": "http://127.0.0.1:1/c",
                                "method": "P"}) as r:
            ids["cmd"] = (await r.json())["id"]
    return ids


def _fill(value, ids: dict[str, str]):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("row, method, path, body, calls", ROWS, ids=[r[0] for r in ROWS])
async def test_permission_table(api, sb: Sandbox, row, method, path, body, calls) -> None:
    ids = await _world(sb)
    for who, status, error_id in calls:
        got, _, answer = await api(method, _fill(path, ids), as_user=who, json_body=_fill(body, ids))
        assert got == status, f"{row}: {who} got {got} {answer}"
        if error_id:
            assert answer["id"] == error_id, f"{row}: {who} got {answer}"


async def test_posts_by_ids_leaves_out_what_the_caller_cannot_read(api, sb: Sandbox) -> None:
    ids = await _world(sb)
    status, _, posts = await api("POST", "/api/v4/posts/ids", as_user="bob",
                                 json_body=[ids["lead_post"], ids["off_post"]])
    assert status == 200 and [p["id"] for p in posts] == [ids["off_post"]]


async def test_post_all_role_allows_posting_without_membership() -> None:
    seed = {"teams": [{"name": "t"}], "users": [
        {"username": "u", "teams": ["t"]},
        {"username": "poster", "roles": "system_user system_post_all", "is_bot": True, "teams": ["t"]},
        {"username": "public", "roles": "system_user system_post_all_public", "is_bot": True, "teams": ["t"]}],
        "channels": [{"team": "t", "name": "secret", "type": "P", "members": ["u"]}]}
    async with Sandbox(seed) as other:
        secret = other.channel("t", "secret")["id"]
        open_channel = other.channel("t", "off-topic")["id"]

        async def post(who: str, cid: str) -> int:
            async with aiohttp.ClientSession() as s:
                async with s.post(other.url + "/api/v4/posts", json={"channel_id": cid, "message": "m"},
                                  headers={"Authorization": "Bearer " + other.token_of(who)}) as r:
                    return r.status
        assert await post("poster", secret) == 201
        assert await post("public", secret) == 403        # post:channels covers public channels only
        assert await post("public", open_channel) == 201


async def test_ephemeral_post_reaches_only_its_user(api, sb: Sandbox) -> None:
    ts = sb.channel("acme", "town-square")
    body = {"user_id": sb.user_id("bob"), "post": {"channel_id": ts["id"], "message": "psst"}}
    status, _, post = await api("POST", "/api/v4/posts/ephemeral", as_user="alice", json_body=body)
    assert status == 201 and post["type"] == "system_ephemeral"
    assert [p["message"] for p in sb.user("bob").ephemeral("town-square")] == ["psst"]
    assert post["id"] not in [p["id"] for p in sb.posts(ts["id"])]
    status, _, _ = await api("GET", f"/api/v4/posts/{post['id']}", as_user="bob")
    assert status == 404


async def test_command_listing_for_non_managers_hides_secrets(api, sb: Sandbox) -> None:
    team = sb.team("acme")["id"]
    await api("POST", "/api/v4/commands", as_user="incident", json_body={
        "team_id": team, "trigger": "x", "url": "http://127.0.0.1:1/x", "method": "P", "auto_complete": True})
    status, _, listed = await api("GET", f"/api/v4/commands?team_id={team}", as_user="bob")
    assert status == 200 and listed and all(c["token"] == "" and c["url"] == "" for c in listed)
