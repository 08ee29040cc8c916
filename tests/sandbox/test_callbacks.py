"""Integration callbacks: slash commands, response_url, buttons/menus, dialogs, webhooks."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web

from sandbox import Sandbox, SandboxConfig

from .conftest import DEMO, Integration, Received, json_reply, never, register_command

SLASH_FIELDS = {"channel_id", "channel_name", "command", "response_url", "team_domain", "team_id", "text",
                "token", "trigger_id", "user_id", "user_name", "root_id"}


# ---------------------------------------------------------------------- slash commands
async def test_slash_command_request_fields_and_headers(api, sb: Sandbox, integration: Integration) -> None:
    async def handler(_: Received) -> web.Response:
        return json_reply({"response_type": "ephemeral", "text": "got it"})
    integration.routes["/cmd"] = handler
    cmd = await register_command(api, sb, integration.url("/cmd"))
    result = await sb.user("bob").command("town-square", "/Incident declare  sev2 @carol ~off-topic")
    assert result.status == 200 and result.ephemeral == ["got it"]
    assert len(result.response["trigger_id"]) == 26
    req = integration.received[-1]
    assert req.method == "POST"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert req.headers["Authorization"] == f"Token {cmd['token']}"
    assert req.headers["Accept"] == "application/json"
    form = {k: v[0] for k, v in req.form().items()}
    assert SLASH_FIELDS <= set(form)
    assert form["command"] == "/incident" and form["text"] == "declare  sev2 @carol ~off-topic"
    assert form["team_domain"] == "acme" and form["channel_name"] == "town-square"
    assert form["user_name"] == "bob" and form["token"] == cmd["token"]
    assert form["response_url"].startswith(sb.url + "/hooks/commands/")
    assert req.form()["user_mentions_ids"] == [sb.user_id("carol")]
    assert req.form()["channel_mentions"] == ["off-topic"]
    assert sb.callbacks[-1].kind == "command" and sb.callbacks[-1].status == 200


async def test_slash_command_get_method(api, sb: Sandbox, integration: Integration) -> None:
    async def handler(_: Received) -> web.Response:
        return web.Response(text="plain text reply")  # text/plain -> ephemeral text
    integration.routes["/get"] = handler
    await register_command(api, sb, integration.url("/get"), trigger="lookup", method="G")
    result = await sb.user("bob").command("town-square", "/lookup x")
    req = integration.received[-1]
    assert req.method == "GET" and req.body == b"" and req.query["text"] == ["x"]
    assert result.ephemeral == ["plain text reply"]


async def test_in_channel_response_posted_as_invoker(api, sb: Sandbox, integration: Integration) -> None:
    async def handler(_: Received) -> web.Response:
        return json_reply({"response_type": "in_channel", "text": "see <http://x.io|dash>",
                           "goto_location": "http://x.io/inc/1",
                           "extra_responses": [{"response_type": "in_channel", "text": "second"},
                                               {"text": "just for you"}]})
    integration.routes["/cmd"] = handler
    await register_command(api, sb, integration.url("/cmd"))
    ts = sb.channel("acme", "town-square")
    result = await sb.user("bob").command("town-square", "/incident status")
    assert result.goto_location == "http://x.io/inc/1"
    assert result.ephemeral == ["just for you"]
    first, second = sb.posts(ts["id"])[-2:]
    assert first["user_id"] == sb.user_id("bob") and first["props"]["from_webhook"] == "true"
    assert first["message"] == "see [dash](http://x.io)" and second["message"] == "second"


async def test_command_not_found_and_bad_input(api, sb: Sandbox) -> None:
    result = await sb.user("bob").command("town-square", "/nothing here")
    assert result.status == 404 and result.error["id"] == "api.command.execute_command.not_found.app_error"
    ts = sb.channel("acme", "town-square")
    status, _, err = await api("POST", "/api/v4/commands/execute", as_user="bob",
                               json_body={"channel_id": ts["id"], "command": "no slash"})
    assert status == 400 and err["id"] == "api.command.execute_command.start.app_error"
    lead = sb.channel("acme", "leadership")
    status, _, err = await api("POST", "/api/v4/commands/execute", as_user="bob",
                               json_body={"channel_id": lead["id"], "command": "/incident"})
    assert status == 403


async def test_slow_integration_times_out(api, integration: Integration) -> None:
    async with Sandbox(DEMO, config=SandboxConfig(integration_timeout=0.3)) as sb:
        sandbox_gave_up = asyncio.Event()

        async def slow(_: Received) -> web.Response:
            # The integration does answer — but only after the sandbox has stopped waiting.
            await sandbox_gave_up.wait()
            return json_reply({"text": "too late"})
        integration.routes["/slow"] = slow
        api.sb = sb
        await register_command(api, sb, integration.url("/slow"), trigger="slow")
        result = await sb.user("bob").command("town-square", "/slow")
        sandbox_gave_up.set()
        assert result.status == 500 and result.error["id"] == "api.command.execute_command.failed.app_error"
        assert sb.callbacks[-1].status is None and "timeout" in sb.callbacks[-1].error
        assert result.ephemeral == []


async def test_integration_never_answering(api, integration: Integration) -> None:
    async with Sandbox(DEMO, config=SandboxConfig(integration_timeout=0.2)) as sb:
        integration.routes["/never"] = never
        api.sb = sb
        await register_command(api, sb, integration.url("/never"), trigger="never")
        result = await sb.user("bob").command("town-square", "/never")
        assert result.status == 500 and result.error["id"] == "api.command.execute_command.failed.app_error"


async def test_integration_unreachable(api, sb: Sandbox) -> None:
    await register_command(api, sb, "http://127.0.0.1:9/none", trigger="gone")
    result = await sb.user("bob").command("town-square", "/gone")
    assert result.status == 500 and result.error["id"] == "api.command.execute_command.failed.app_error"
    assert sb.callbacks[-1].error


async def test_integration_500_and_invalid_json(api, sb: Sandbox, integration: Integration) -> None:
    async def fail(_: Received) -> web.Response:
        return web.Response(status=500, text="boom")

    async def bad_json(_: Received) -> web.Response:
        return web.Response(body=b"{nope", content_type="application/json")

    async def empty_json(_: Received) -> web.Response:
        return web.Response(body=b"", content_type="application/json")

    async def empty_text(_: Received) -> web.Response:
        return web.Response(status=200)
    integration.routes.update({"/fail": fail, "/bad": bad_json, "/empty": empty_json, "/quiet": empty_text})
    for trigger in ("fail", "bad", "empty", "quiet"):
        await register_command(api, sb, integration.url("/" + trigger), trigger=trigger)
    result = await sb.user("bob").command("town-square", "/fail")
    assert result.status == 500 and result.error["id"] == "api.command.execute_command.failed_resp.app_error"
    for trigger in ("bad", "empty"):
        result = await sb.user("bob").command("town-square", "/" + trigger)
        assert result.status == 500 and result.error["id"] == "api.command.execute_command.failed.app_error"
    result = await sb.user("bob").command("town-square", "/quiet")
    assert result.status == 200 and result.ephemeral == []


async def test_response_url_lifetime_and_uses(api, integration: Integration) -> None:
    async with Sandbox(DEMO, config=SandboxConfig(command_hook_lifetime=60)) as sb:
        api.sb = sb
        urls = []

        async def handler(req: Received) -> web.Response:
            urls.append(req.form()["response_url"][0])
            return web.Response(status=200)
        integration.routes["/cmd"] = handler
        await register_command(api, sb, integration.url("/cmd"))
        await sb.user("bob").command("town-square", "/incident")
        path = urls[0][len(sb.url):]
        status, headers, body = await api("POST", path, json_body={"response_type": "in_channel", "text": "later"})
        assert (status, body) == (200, b"ok") and headers["Content-Type"].startswith("text/plain")
        post = sb.posts(sb.channel("acme", "town-square")["id"])[-1]
        assert post["message"] == "later" and post["user_id"] == sb.user_id("bob")
        for _ in range(4):
            status, _, _ = await api("POST", path, json_body={"text": "eph"})
            assert status == 200
        assert sb.user("bob").ephemeral("town-square")[-1]["message"] == "eph"
        status, _, err = await api("POST", path, json_body={"text": "sixth"})
        assert status == 400 and err["id"] == "app.command_webhook.try_use.invalid"
        status, _, err = await api("POST", "/hooks/commands/" + "x" * 26, json_body={"text": "?"})
        assert status == 404 and err["id"] == "app.command_webhook.get.missing"
        sb.config.command_hook_lifetime = 0
        await sb.user("bob").command("town-square", "/incident")
        status, _, err = await api("POST", urls[1][len(sb.url):], json_body={"text": "expired"})
        assert status == 404


async def test_command_crud_and_regen(api, sb: Sandbox) -> None:
    cmd = await register_command(api, sb, "http://127.0.0.1:1/x")
    status, _, err = await api("POST", "/api/v4/commands", as_user="incident", json_body={
        "team_id": sb.team("acme")["id"], "trigger": "incident", "url": "http://127.0.0.1:1/y", "method": "P"})
    assert status == 400 and err["id"] == "api.command.duplicate_trigger.app_error"
    for bad in ("/slash", "two words", ""):
        status, _, err = await api("POST", "/api/v4/commands", as_user="incident", json_body={
            "team_id": sb.team("acme")["id"], "trigger": bad, "url": "http://127.0.0.1:1/y", "method": "P"})
        assert status == 400 and err["id"] == "model.command.is_valid.trigger.app_error"
    status, _, got = await api("GET", f"/api/v4/commands/{cmd['id']}", as_user="incident")
    assert got["token"] == cmd["token"]
    status, _, updated = await api("PUT", f"/api/v4/commands/{cmd['id']}", as_user="incident",
                                   json_body=dict(cmd, description="new"))
    assert status == 200 and updated["description"] == "new"
    _, _, regen = await api("PUT", f"/api/v4/commands/{cmd['id']}/regen_token", as_user="incident")
    assert regen["token"] != cmd["token"] and sb.commands(cmd["team_id"])[0]["token"] == regen["token"]
    status, _, ok = await api("DELETE", f"/api/v4/commands/{cmd['id']}", as_user="incident")
    assert ok == {"status": "OK"} and sb.commands(cmd["team_id"]) == []


# ---------------------------------------------------------------------- buttons and menus
def card(url: str) -> dict:
    return {"attachments": [{"text": "INC-1", "actions": [
        {"id": "ack", "name": "Acknowledge", "type": "button",
         "integration": {"url": url, "context": {"incident": 1, "secret": "SECRET-CTX"}}},
        {"name": "Severity", "type": "select", "options": [{"text": "Sev1", "value": "sev1"}],
         "integration": {"url": url, "context": {"incident": 1}}},
    ]}]}


async def test_action_integration_hidden_and_ids_generated(api, sb: Sandbox, integration: Integration, http) -> None:
    from .test_websocket import connect
    bob = await connect(http, sb, "bob")
    ts = sb.channel("acme", "town-square")
    _, _, post = await api("POST", "/api/v4/posts", as_user="incident",
                           json_body={"channel_id": ts["id"], "message": "", "props": card(integration.url("/act"))})
    for served in (post, sb.posts(ts["id"])[-1], (await api("GET", f"/api/v4/posts/{post['id']}", as_user="bob"))[2],
                   json.loads((await bob.next_event("posted"))["data"]["post"])):
        actions = served["props"]["attachments"][0]["actions"]
        assert all("integration" not in a for a in actions)
        assert actions[0]["id"] == "ack" and len(actions[1]["id"]) == 26 and actions[1]["id"].isalnum()
    assert all(b"SECRET-CTX" not in ex.response_body for ex in sb.recording)


async def test_button_click_update_and_ephemeral(api, sb: Sandbox, integration: Integration) -> None:
    async def handler(req: Received) -> web.Response:
        body = req.json()
        return json_reply({"update": {"message": f"acked by {body['user_name']}",
                                      "props": {"attachments": []}},
                           "ephemeral_text": "You acknowledged"})
    integration.routes["/act"] = handler
    ts = sb.channel("acme", "town-square")
    _, _, post = await api("POST", "/api/v4/posts", as_user="incident",
                           json_body={"channel_id": ts["id"], "message": "card",
                                      "props": dict(card(integration.url("/act")), from_webhook="true")})
    await api("POST", f"/api/v4/posts/{post['id']}/pin", as_user="bob")
    result = await sb.user("bob").click(post["id"], "Acknowledge")
    assert result.status == 200 and result.ephemeral == ["You acknowledged"]
    sent = integration.received[-1]
    assert sent.headers["Content-Type"] == "application/json" and "Authorization" not in sent.headers
    body = sent.json()
    assert body["context"] == {"incident": 1, "secret": "SECRET-CTX"} and body["post_id"] == post["id"]
    assert body["user_id"] == sb.user_id("bob") and body["team_domain"] == "acme" and body["type"] == "button"
    assert len(body["trigger_id"]) > 26 and "selected_option" not in body
    assert result.post["message"] == "acked by bob"
    assert result.post["props"] == {"attachments": [], "from_webhook": "true"}
    assert result.post["is_pinned"] is True
    eph = sb.user("bob").ephemeral("town-square")[-1]
    assert eph["root_id"] == post["id"]


async def test_update_prop_retention_rules(api, sb: Sandbox, integration: Integration) -> None:
    replies = iter([{"update": {"message": "kept props"}},
                    {"update": {"message": "cleared", "props": {}}}])

    async def handler(_: Received) -> web.Response:
        return json_reply(next(replies))
    integration.routes["/act"] = handler
    ts = sb.channel("acme", "town-square")
    _, _, post = await api("POST", "/api/v4/posts", as_user="incident", json_body={
        "channel_id": ts["id"], "message": "card", "props": dict(card(integration.url("/act")), color="red")})
    r1 = await sb.user("carol").click(post["id"], "ack")
    assert r1.post["props"]["color"] == "red" and r1.post["props"]["attachments"]
    r2 = await sb.user("carol").click(post["id"], "ack")
    # `{}` clears everything but from_webhook/override_username/override_icon_url (none set here)
    assert r2.post["message"] == "cleared" and r2.post["props"] == {}


async def test_menu_selection_goes_into_context(api, sb: Sandbox, integration: Integration) -> None:
    async def handler(_: Received) -> web.Response:
        return web.Response(status=200)
    integration.routes["/act"] = handler
    ts = sb.channel("acme", "town-square")
    _, _, post = await api("POST", "/api/v4/posts", as_user="incident",
                           json_body={"channel_id": ts["id"], "message": "", "props": card(integration.url("/act"))})
    result = await sb.user("dave").select(post["id"], "Severity", "sev1")
    assert result.status == 200 and result.post is None
    body = integration.received[-1].json()
    assert body["context"] == {"incident": 1, "selected_option": "sev1"} and body["type"] == "select"
    assert "selected_option" not in body


async def test_action_failures(api, sb: Sandbox, integration: Integration) -> None:
    async def fail(_: Received) -> web.Response:
        return web.Response(status=500)

    async def bad(_: Received) -> web.Response:
        return web.Response(body=b"not json", content_type="application/json")
    ts = sb.channel("acme", "town-square")
    for path, fn in (("/fail", fail), ("/bad", bad)):
        integration.routes[path] = fn
        _, _, post = await api("POST", "/api/v4/posts", as_user="incident",
                               json_body={"channel_id": ts["id"], "message": "", "props": card(integration.url(path))})
        result = await sb.user("bob").click(post["id"], "ack")
        assert result.status == 400 and result.error["id"] == "api.post.do_action.action_integration.app_error"
    status, _, err = await api("POST", f"/api/v4/posts/{post['id']}/actions/nosuch", as_user="bob")
    assert status == 404 and err["id"] == "api.post.do_action.action_id.app_error"
    lead = sb.channel("acme", "leadership")
    _, _, secret = await api("POST", "/api/v4/posts", as_user="alice",
                             json_body={"channel_id": lead["id"], "message": "", "props": card(integration.url("/fail"))})
    status, _, _ = await api("POST", f"/api/v4/posts/{secret['id']}/actions/ack", as_user="bob")
    assert status == 403


async def test_action_timeout(api, integration: Integration) -> None:
    async with Sandbox(DEMO, config=SandboxConfig(integration_timeout=0.2)) as sb:
        api.sb = sb
        integration.routes["/never"] = never
        ts = sb.channel("acme", "town-square")
        _, _, post = await api("POST", "/api/v4/posts", as_user="incident",
                               json_body={"channel_id": ts["id"], "message": "", "props": card(integration.url("/never"))})
        result = await sb.user("bob").click(post["id"], "ack")
        assert result.status == 400 and sb.callbacks[-1].error


# ---------------------------------------------------------------------- dialogs
DIALOG = {"callback_id": "declare", "title": "Declare", "notify_on_cancel": True, "state": "st",
          "elements": [{"display_name": "Summary", "name": "summary", "type": "text"}]}


async def test_dialog_open_submit_errors_and_cancel(api, sb: Sandbox, integration: Integration, http) -> None:
    from .test_websocket import connect
    bob_ws = await connect(http, sb, "bob")

    async def command(req: Received) -> web.Response:
        trigger = req.form()["trigger_id"][0]
        status, _, body = await api("POST", "/api/v4/actions/dialogs/open", as_user="incident", json_body={
            "trigger_id": trigger, "url": integration.url("/submit"), "dialog": DIALOG})
        assert (status, body) == (200, {"status": "OK"})
        return web.Response(status=200)

    async def submit(req: Received) -> web.Response:
        body = req.json()
        if body["cancelled"]:
            return web.Response(status=200)
        if not body["submission"]["summary"]:
            return json_reply({"errors": {"summary": "required"}})
        return json_reply({})
    integration.routes.update({"/cmd": command, "/submit": submit})
    await register_command(api, sb, integration.url("/cmd"))
    bob = sb.user("bob")
    result = await bob.command("off-topic", "/incident declare")
    assert result.dialog is not None and result.dialog["dialog"]["callback_id"] == "declare"
    assert bob.dialog == result.dialog
    ev = await bob_ws.next_event("open_dialog")
    assert json.loads(ev["data"]["dialog"])["url"] == integration.url("/submit")
    assert ev["broadcast"]["user_id"] == sb.user_id("bob")

    res = await bob.submit_dialog({"summary": ""})
    assert res.status == 200 and res.errors == {"summary": "required"} and not res.closed
    assert bob.dialog is not None
    sent = integration.received[-1].json()
    assert sent["type"] == "dialog_submission" and sent["callback_id"] == "declare" and sent["state"] == "st"
    assert sent["user_id"] == sb.user_id("bob") and sent["channel_id"] == sb.channel("acme", "off-topic")["id"]
    res = await bob.submit_dialog({"summary": "db down"})
    assert res.closed and bob.dialog is None

    await bob.command("off-topic", "/incident declare")
    res = await bob.cancel_dialog()
    assert res.closed
    sent = integration.received[-1].json()
    assert sent["cancelled"] is True and sent["submission"] is None and sent["type"] == "dialog_submission"


async def test_dialog_generic_error_and_failures(api, sb: Sandbox, integration: Integration) -> None:
    async def command(req: Received) -> web.Response:
        await api("POST", "/api/v4/actions/dialogs/open", as_user="incident", json_body={
            "trigger_id": req.form()["trigger_id"][0], "url": integration.url("/submit"), "dialog": DIALOG})
        return web.Response(status=200)
    replies = iter([json_reply({"error": "try later"}), web.Response(status=500)])

    async def submit(_: Received) -> web.Response:
        return next(replies)
    integration.routes.update({"/cmd": command, "/submit": submit})
    await register_command(api, sb, integration.url("/cmd"))
    bob = sb.user("bob")
    await bob.command("town-square", "/incident")
    res = await bob.submit_dialog({"summary": "x"})
    assert res.status == 200 and res.error == "try later" and not res.closed
    res = await bob.submit_dialog({"summary": "x"})
    assert res.status == 400 and not res.closed


async def test_trigger_id_rules(api, integration: Integration, monkeypatch) -> None:
    """A trigger id opens a dialog for 3 s by default (the strictest supported server), then 400 expired."""
    import sandbox.trigger_ids as trigger_ids
    clock = [trigger_ids.now_ms()]
    monkeypatch.setattr(trigger_ids, "now_ms", lambda: clock[0])
    async with Sandbox(DEMO) as sb:
        api.sb = sb
        triggers = []

        async def command(req: Received) -> web.Response:
            triggers.append(req.form()["trigger_id"][0])
            return web.Response(status=200)
        integration.routes["/cmd"] = command
        await register_command(api, sb, integration.url("/cmd"))
        await sb.user("bob").command("town-square", "/incident")
        issued = clock[0]
        body = {"trigger_id": triggers[0], "url": integration.url("/s"), "dialog": DIALOG}
        clock[0] = issued + 3001
        status, _, err = await api("POST", "/api/v4/actions/dialogs/open", as_user="incident", json_body=body)
        assert status == 400 and err["id"] == "interactive_message.decode_trigger_id.expired"
        assert sb.user("bob").dialog is None
        clock[0] = issued
        import base64
        raw = base64.b64decode(triggers[0]).decode().split(":")
        forged = base64.b64encode(":".join([raw[0], sb.user_id("carol"), raw[2], raw[3]]).encode()).decode()
        status, _, err = await api("POST", "/api/v4/actions/dialogs/open", as_user="incident",
                                   json_body=dict(body, trigger_id=forged))
        assert status == 400 and err["id"] == "interactive_message.decode_trigger_id.verify_signature_failed"
        bad_sig = base64.b64encode(":".join(raw[:3] + ["%%%"]).encode()).decode()
        status, _, err = await api("POST", "/api/v4/actions/dialogs/open", as_user="incident",
                                   json_body=dict(body, trigger_id=bad_sig))
        assert status == 400 and err["id"] == "interactive_message.decode_trigger_id.base64_decode_failed_signature"
        status, _, err = await api("POST", "/api/v4/actions/dialogs/open", as_user="incident",
                                   json_body=dict(body, trigger_id="%%%"))
        assert status == 400 and err["id"] == "interactive_message.decode_trigger_id.base64_decode_failed"
        status, _, err = await api("POST", "/api/v4/actions/dialogs/open", as_user="incident",
                                   json_body=dict(body, url=""))
        assert status == 400 and err["id"] == "api.context.invalid_body_param.app_error"
        clock[0] = issued + 3000  # the last millisecond of its life
        status, _, _ = await api("POST", "/api/v4/actions/dialogs/open", as_user="incident", json_body=body)
        assert status == 200 and sb.user("bob").dialog is not None and sb.user("carol").dialog is None


async def test_trigger_id_lifetime_is_configurable(api, integration: Integration, monkeypatch) -> None:
    """Newer servers allow OutgoingIntegrationRequestsTimeout; the sandbox can be told so."""
    import sandbox.trigger_ids as trigger_ids
    clock = [trigger_ids.now_ms()]
    monkeypatch.setattr(trigger_ids, "now_ms", lambda: clock[0])
    async with Sandbox(DEMO, config=SandboxConfig(trigger_id_lifetime=30.0)) as sb:
        api.sb = sb
        triggers = []

        async def command(req: Received) -> web.Response:
            triggers.append(req.form()["trigger_id"][0])
            return web.Response(status=200)
        integration.routes["/cmd"] = command
        await register_command(api, sb, integration.url("/cmd"))
        await sb.user("bob").command("town-square", "/incident")
        body = {"trigger_id": triggers[0], "url": integration.url("/s"), "dialog": DIALOG}
        clock[0] += 30_001
        status, _, err = await api("POST", "/api/v4/actions/dialogs/open", as_user="incident", json_body=body)
        assert status == 400 and err["id"] == "interactive_message.decode_trigger_id.expired"
        clock[0] -= 2
        status, _, _ = await api("POST", "/api/v4/actions/dialogs/open", as_user="incident", json_body=body)
        assert status == 200 and sb.user("bob").dialog is not None


async def test_dialog_from_button_click(api, sb: Sandbox, integration: Integration) -> None:
    async def act(req: Received) -> web.Response:
        await api("POST", "/api/v4/actions/dialogs/open", as_user="incident", json_body={
            "trigger_id": req.json()["trigger_id"], "url": integration.url("/s"), "dialog": DIALOG})
        return json_reply({})
    integration.routes["/act"] = act
    ts = sb.channel("acme", "town-square")
    _, _, post = await api("POST", "/api/v4/posts", as_user="incident",
                           json_body={"channel_id": ts["id"], "message": "", "props": card(integration.url("/act"))})
    result = await sb.user("carol").click(post["id"], "ack")
    assert result.dialog["dialog"]["title"] == "Declare"


async def test_ephemeral_during_callback_is_in_result(api, sb: Sandbox, integration: Integration) -> None:
    async def command(req: Received) -> web.Response:
        form = req.form()
        await api("POST", "/api/v4/posts/ephemeral", as_user="alice", json_body={
            "user_id": form["user_id"][0], "post": {"channel_id": form["channel_id"][0], "message": "working..."}})
        return json_reply({"text": "done"})
    integration.routes["/cmd"] = command
    await register_command(api, sb, integration.url("/cmd"))
    result = await sb.user("dave").command("town-square", "/incident")
    assert result.ephemeral == ["working...", "done"]


async def test_ephemeral_post_buttons_use_cookie(api, sb: Sandbox, integration: Integration) -> None:
    async def act(req: Received) -> web.Response:
        return json_reply({"ephemeral_text": f"clicked {req.json()['context']['incident']}"})
    integration.routes["/act"] = act
    ts = sb.channel("acme", "town-square")
    _, _, eph = await api("POST", "/api/v4/posts/ephemeral", as_user="alice", json_body={
        "user_id": sb.user_id("bob"), "post": {"channel_id": ts["id"], "message": "", "props": card(integration.url("/act"))}})
    action = eph["props"]["attachments"][0]["actions"][0]
    assert "integration" not in action and action["cookie"]
    result = await sb.user("bob").click(eph["id"], "ack")
    assert result.status == 200 and result.ephemeral == ["clicked 1"]


async def _ephemeral_card_for_bob(api, sb: Sandbox, integration: Integration) -> dict:
    ts = sb.channel("acme", "town-square")
    _, _, eph = await api("POST", "/api/v4/posts/ephemeral", as_user="alice", json_body={
        "user_id": sb.user_id("bob"),
        "post": {"channel_id": ts["id"], "message": "page 1", "props": card(integration.url("/act"))}})
    return eph


async def test_update_of_an_ephemeral_post_fails_like_released_servers(api, sb: Sandbox,
                                                                       integration: Integration) -> None:
    """DoPostActionWithCookie hands `update` to UpdatePost, which cannot find an ephemeral post: the
    click answers 404 app.post.get.app_error, the post stays as it was and ephemeral_text is lost."""
    replies = iter([{"update": {"message": "page 2", "props": {"attachments": []}},
                     "ephemeral_text": "turned the page"},
                    {"update": {}},                       # even an empty update goes to UpdatePost
                    {"ephemeral_text": "fresh reply"}])   # no update: fine

    async def act(_: Received) -> web.Response:
        return json_reply(next(replies))
    integration.routes["/act"] = act
    eph = await _ephemeral_card_for_bob(api, sb, integration)
    bob = sb.user("bob")
    result = await bob.click(eph["id"], "ack")
    assert result.status == 404 and result.error["id"] == "app.post.get.app_error"
    assert result.ephemeral == [] and result.post is None
    assert len(integration.received) == 1          # the integration did run: its side effects happened
    assert sb.world.ephemeral[eph["id"]].post["message"] == "page 1"
    assert bob.ephemeral("town-square")[-1]["message"] == "page 1"
    assert (await bob.click(eph["id"], "ack")).status == 404
    fresh = await bob.click(eph["id"], "ack")
    assert fresh.status == 200 and fresh.ephemeral == ["fresh reply"]


async def test_update_of_an_ephemeral_post_in_place_when_opted_in(api, sb: Sandbox, integration: Integration) -> None:
    """Newer code (applyPostActionUpdate → UpdateEphemeralPost) updates it in place, with fresh cookies."""
    sb.config.update_ephemeral_in_place = True
    pages = iter(["page 2", "page 3"])

    async def act(_: Received) -> web.Response:
        return json_reply({"update": {"message": next(pages), "props": card(integration.url("/act"))}})
    integration.routes["/act"] = act
    eph = await _ephemeral_card_for_bob(api, sb, integration)
    bob = sb.user("bob")
    assert (await bob.click(eph["id"], "ack")).status == 200
    assert bob.ephemeral("town-square")[-1]["message"] == "page 2"
    assert (await bob.click(eph["id"], "ack")).status == 200
    assert sb.world.ephemeral[eph["id"]].post["message"] == "page 3"


# ---------------------------------------------------------------------- incoming webhooks
async def test_incoming_webhook(api, sb: Sandbox) -> None:
    status, _headers, body = await api("POST", "/hooks/pojxk7i9e3ydiq9qfwsd6npg5c",
                                      json_body={"text": "alert <http://g|graph>", "attachments": [{"text": "a"}]})
    assert (status, body) == (200, b"ok")
    post = sb.posts(sb.channel("acme", "town-square")["id"])[-1]
    assert post["message"] == "alert [graph](http://g)" and post["type"] == "slack_attachment"
    assert post["props"]["from_webhook"] == "true" and post["user_id"] == sb.user_id("alice")
    status, _, _ = await api("POST", "/hooks/pojxk7i9e3ydiq9qfwsd6npg5c", json_body={"text": "x", "channel": "off-topic"})
    assert sb.posts(sb.channel("acme", "off-topic")["id"])[-1]["message"] == "x"
    status, _, err = await api("POST", "/hooks/" + "z" * 26, json_body={"text": "x"})
    assert status == 400 and err["id"] == "web.incoming_webhook.invalid.app_error"


def _hook(sb: Sandbox, hook_id: str, *, user: str, channel: str, **extra) -> str:
    """Another incoming webhook of team acme (a 26-character ``hook_id``)."""
    ch = sb.channel("acme", channel)
    sb.world.incoming_hooks[hook_id] = {
        "id": hook_id, "create_at": 1, "update_at": 1, "delete_at": 0, "user_id": sb.user_id(user),
        "channel_id": ch["id"], "team_id": ch["team_id"], "display_name": "", "description": "",
        "username": "", "icon_url": "", "channel_locked": False, **extra}
    return f"/hooks/{hook_id}"


async def test_incoming_webhook_props_are_those_the_server_sets(api, sb: Sandbox) -> None:
    """HandleIncomingWebhook / CreateWebhookPost: webhook_display_name always; override props only
    when the server allows them (off by default); the payload's own props, minus the reserved keys."""
    status, _, _ = await api("POST", "/hooks/pojxk7i9e3ydiq9qfwsd6npg5c", json_body={
        "text": "CPU high", "username": "grafana", "icon_url": "http://i/x.png",
        "props": {"runbook": "r1", "from_webhook": "false", "override_username": "admin", "attachments": "x"}})
    assert status == 200
    post = sb.posts(sb.channel("acme", "town-square")["id"])[-1]
    assert post["props"] == {"runbook": "r1", "from_webhook": "true", "webhook_display_name": "Monitoring"}
    sb.config.enable_post_username_override = sb.config.enable_post_icon_override = True
    await api("POST", "/hooks/pojxk7i9e3ydiq9qfwsd6npg5c", json_body={
        "text": "again", "username": "grafana", "icon_url": "http://i/x.png"})
    post = sb.posts(sb.channel("acme", "town-square")["id"])[-1]
    assert post["props"]["override_username"] == "grafana" and post["props"]["override_icon_url"] == "http://i/x.png"
    await api("POST", "/hooks/pojxk7i9e3ydiq9qfwsd6npg5c", json_body={"text": "plain"})
    post = sb.posts(sb.channel("acme", "town-square")["id"])[-1]
    assert post["props"]["override_username"] == "webhook" and "override_icon_url" not in post["props"]
    status, _, err = await api("POST", "/hooks/pojxk7i9e3ydiq9qfwsd6npg5c", json_body={"text": "x", "type": "system_fake"})
    assert (status, err["id"]) == (400, "api.context.invalid_param.app_error")


async def test_incoming_webhook_channel_override_rules(api, sb: Sandbox) -> None:
    """A name with or without "#"; unknown → 404; a locked hook refuses other channels with 403;
    a private channel its owner cannot read → 403."""
    hook = "/hooks/pojxk7i9e3ydiq9qfwsd6npg5c"
    status, _, _ = await api("POST", hook, json_body={"text": "hash", "channel": "#off-topic"})
    assert status == 200 and sb.posts(sb.channel("acme", "off-topic")["id"])[-1]["message"] == "hash"
    status, _, err = await api("POST", hook, json_body={"text": "x", "channel": "nowhere"})
    assert (status, err["id"]) == (404, "web.incoming_webhook.channel.app_error")
    locked = _hook(sb, "lockedhook9e3ydiq9qfwsd6np", user="bob", channel="town-square", channel_locked=True)
    status, _, err = await api("POST", locked, json_body={"text": "x", "channel": "off-topic"})
    assert (status, err["id"]) == (403, "web.incoming_webhook.channel_locked.app_error")
    status, _, _ = await api("POST", locked, json_body={"text": "same", "channel": "town-square"})
    assert status == 200
    bobs = _hook(sb, "bobshook7i9e3ydiq9qfwsd6np", user="bob", channel="town-square")
    status, _, err = await api("POST", bobs, json_body={"text": "x", "channel": "leadership"})
    assert (status, err["id"]) == (403, "web.incoming_webhook.permissions.app_error")
    assert [p for p in sb.posts(sb.channel("acme", "leadership")["id"]) if p["message"] == "x"] == []


async def test_built_in_header_and_echo(sb: Sandbox) -> None:
    """The built-ins a playbook step typically runs work through /commands/execute, for members only."""
    bob = sb.user("bob")
    ts = sb.channel("acme", "town-square")
    result = await bob.command("town-square", "/header Incident in progress")
    assert result.status == 200 and result.error is None
    assert sb.channel_by_id(ts["id"])["header"] == "Incident in progress"
    change = [p for p in sb.posts(ts["id"]) if p["type"] == "system_header_change"][-1]
    assert change["props"]["new_header"] == "Incident in progress" and change["user_id"] == bob.id
    result = await bob.command("town-square", "/echo hello there")
    assert result.status == 200 and sb.posts(ts["id"])[-1]["message"] == "hello there"
    result = await bob.command("leadership", "/header mine now")
    assert result.status == 403 and sb.channel("acme", "leadership")["header"] != "mine now"
