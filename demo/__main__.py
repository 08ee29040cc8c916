"""Start the sandbox Mattermost and the real bot, act out a short session, print what people see."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import textwrap
from pathlib import Path

import aiohttp

from bot import CommandCenter, configure_logging
from sandbox import Sandbox, SandboxConfig
from settings import Settings

SEED = Path(__file__).resolve().parents[1] / "sandbox" / "seeds" / "demo.yaml"


class Transcript:
    """Prints chat lines the way a reader of the channel would see them."""

    def __init__(self, max_lines: int) -> None:
        self.max_lines = max_lines

    def say(self, where: str, who: str, text: str, *, private: bool = False) -> None:
        lines = text.strip().splitlines() or [""]
        if len(lines) > self.max_lines:
            lines = lines[: self.max_lines] + [f"… ({len(lines) - self.max_lines} more lines)"]
        tag = " (only you can see this)" if private else ""
        print(f"[{where}] {who}{tag}: {lines[0]}")
        for line in lines[1:]:
            print(textwrap.indent(line, " " * (len(where) + 3)))

    def note(self, text: str) -> None:
        print(f"-- {text}")


async def let_minutes_pass(sandbox: Sandbox, app: CommandCenter, minutes: int) -> None:
    """Move the sandbox clock on and let the bot's live card scheduler catch up (no waiting)."""
    from gateway.messages import format_live_duration

    assert app.incidents is not None and app.livecard is not None
    team = sandbox.team("acme")
    assert team is not None
    incident = next(i for i in (await app.store.list_incidents(team["id"], is_admin=True)).items)
    target = incident.created_at + minutes * 60_000 + 31_000  # past the refresh of that minute (spread ≤ 30 s)
    sandbox.advance_clock(max(0, target - sandbox.now_ms()) / 1000)
    app.livecard.wake()
    expected = format_live_duration(minutes * 60_000)

    def shown():
        card = sandbox.pinned(incident.channel_id)[0]
        fields = {f["title"]: f["value"] for f in card["props"]["attachments"][0]["fields"]}
        return fields["Duration"].startswith(expected)

    await sandbox.wait_for(shown, timeout=10)


async def act(transcript: Transcript, sandbox: Sandbox, app: CommandCenter) -> None:
    alice, bob = sandbox.user("alice"), sandbox.user("bob")
    bot_id = sandbox.user_id("incident")
    alice_dm = await alice.dm_channel("incident")

    async def bot_replies(channel_id: str, since: int, *, with_files: bool = False) -> list[dict]:
        """Wait for the bot's next post(s) in a channel (it answers asynchronously)."""
        return await sandbox.wait_for(lambda: [p for p in sandbox.posts(channel_id)[since:]
                                               if p["user_id"] == bot_id and (p.get("file_ids") or not with_files)],
                                      timeout=10)

    async def slash(person, channel: str, text: str, where: str | None = None):
        transcript.say(where or channel, person.username, text)
        result = await person.command(channel, text)
        for reply in result.ephemeral:
            transcript.say(where or channel, "incident", reply, private=True)
        if result.error:
            transcript.say(where or channel, "Mattermost", result.error.get("message", ""), private=True)
        return result

    transcript.note("alice asks for help in Town Square")
    await slash(alice, "town-square", "/incident help")

    transcript.note("alice asks the bot directly")
    before = len(sandbox.posts(alice_dm))
    transcript.say("@incident", "alice", "help")
    await alice.post(alice_dm, "help")
    transcript.say("@incident", "incident", (await bot_replies(alice_dm, before))[0]["message"])

    transcript.note("alice creates a playbook from the Service Outage template")
    result = await slash(alice, "town-square", '/incident playbook create service-outage "Payments outage"')
    transcript.note(f'a dialog opens: "{result.dialog["dialog"]["title"]}"; alice keeps the template and title, '
                    "clicks Create")
    before = len(sandbox.posts(alice_dm))
    await alice.submit_dialog({"template": "service-outage", "title": "Payments outage", "description": None,
                               "channel": None})
    transcript.say("@incident", "incident", (await bot_replies(alice_dm, before))[0]["message"])
    await slash(alice, "town-square", '/incident playbook members "Payments outage" add @bob')
    transcript.note("alice adds a description with a link to step 1.1 (descriptions take limited markdown)")
    await slash(alice, "town-square", '/incident playbook edit "Payments outage" step describe 1.1 Check from '
                                      'outside: **status checks** and the '
                                      '[synthetic tests](https://status.example.com/synthetics).')

    transcript.note("alice exports it as a YAML file, to keep it in version control")
    before = len(sandbox.posts(alice_dm))
    await slash(alice, "town-square", '/incident playbook export "Payments outage"')
    post = (await bot_replies(alice_dm, before, with_files=True))[0]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {alice.token}"}) as http:
        async with http.get(f"{sandbox.url}/api/v4/files/{post['file_ids'][0]}") as response:
            yaml_text = (await response.read()).decode()
    transcript.say("@incident", "incident", f"{post['message']}\n[file attached]\n{yaml_text}")

    transcript.note("carol spots trouble; bob reacts with :rotating_light: to start an incident from her post")
    alert = await sandbox.user("carol").post("town-square", "Payments API returns 502 for about a third of requests")
    transcript.say("town-square", "carol", alert["message"])
    bob_dm = await bob.dm_channel("incident")
    before = len(sandbox.posts(bob_dm))
    await bob.react(alert["id"], "rotating_light")
    offer = (await bot_replies(bob_dm, before))[0]
    transcript.say("@incident", "incident", offer["message"] + "  [Start incident from this post]")
    transcript.say("@incident", "bob", "(clicks Start incident from this post)")
    clicked = await bob.click(offer["id"], "Start incident from this post")
    options = {o["text"]: o["value"] for o in clicked.dialog["dialog"]["elements"][0]["options"]}
    transcript.note(f"the start dialog lists bob's playbooks: {', '.join(options)}; he names the incident "
                    '"Payments 502s" and clicks Start')
    before = len(sandbox.posts(bob_dm))
    await bob.submit_dialog({"playbook": options["Payments outage"], "name": "Payments 502s",
                             "description": "A third of payment requests fail with 502."})
    transcript.say("@incident", "incident", (await bot_replies(bob_dm, before))[0]["message"])
    channel = sandbox.channel("acme", "payments-502s")
    assert channel is not None
    cid = channel["id"]
    opening = next(p for p in sandbox.posts(cid) if p["user_id"] == bot_id and not p["type"].startswith("system_"))
    transcript.say("payments-502s", "incident", opening["message"])
    card_id = sandbox.pinned(cid)[0]["id"]
    show_card(transcript, sandbox, card_id, "the pinned incident card")

    transcript.note("three quiet minutes pass (simulated time): nobody touches the incident, the card's duration moves")
    await let_minutes_pass(sandbox, app, 3)
    show_card(transcript, sandbox, card_id, "the card, refreshed on its own", fields_only=True)

    transcript.note("bob looks ahead at stage 2 without making it active (a private view with its own buttons)")
    await slash(bob, cid, "/incident stage show 2", "payments-502s")
    view = [p for p in bob.ephemeral(cid) if (p.get("props") or {}).get("attachments")][-1]
    for attachment in view["props"]["attachments"]:
        buttons = " ".join(f"[{a['name']}]" for a in attachment.get("actions", []))
        transcript.say("payments-502s", "incident", f"{attachment['text']}  {buttons}".rstrip(), private=True)

    transcript.note("bob brings alice in and hands her the command")
    await bob.add_member(cid, "alice")
    transcript.say("payments-502s", "bob", "(adds @alice to the channel)")
    await slash(bob, cid, "/incident commander @alice", "payments-502s")
    await show_new_bot_posts(transcript, sandbox, cid, 1)

    transcript.note("they work the checklist: a button on the card, and the slash command")
    first_step = sandbox.pinned(cid)[0]["props"]["attachments"][2]
    transcript.say("payments-502s", "alice", f"(clicks Check on: {first_step['text']})")
    transcript.say("payments-502s", "bob", "(clicks Details on step 1.1)")
    details = await bob.click(card_id, next(a["id"] for a in first_step["actions"] if a["name"] == "Details"))
    transcript.say("payments-502s", "incident", "(only bob sees) " + details.ephemeral[0])
    await alice.click(card_id, next(a["id"] for a in first_step["actions"] if a["name"] == "Check"))
    await show_new_bot_posts(transcript, sandbox, cid, 1)
    await slash(bob, cid, "/incident run 1.2", "payments-502s")
    await show_new_bot_posts(transcript, sandbox, cid, 1)
    transcript.note(f'the channel header is now: {(sandbox.channel_by_id(cid) or {}).get("header", "")}')
    await slash(bob, cid, "/incident check 1.2", "payments-502s")
    await show_new_bot_posts(transcript, sandbox, cid, 1)
    await slash(alice, cid, "/incident assign 1.3 @bob", "payments-502s")
    await show_new_bot_posts(transcript, sandbox, cid, 1)
    await slash(alice, cid, "/incident stage next", "payments-502s")
    await show_new_bot_posts(transcript, sandbox, cid, 1)
    show_card(transcript, sandbox, card_id, "the card, updated in place")

    transcript.note("alice posts a status update; the next one is due in 30 minutes")
    result = await slash(alice, cid, "/incident update", "payments-502s")
    transcript.note(f'dialog: "{result.dialog["dialog"]["title"]}" → alice writes the update, picks '
                    '"Next update in: 30 min" and clicks Post')
    await alice.submit_dialog({"text": "**Impact:** a third of payments fail.\n**Now:** rolling back "
                                       "yesterday's deploy; next update after the rollback.", "next_in": "30m"})
    await show_new_bot_posts(transcript, sandbox, cid, 1)
    show_card(transcript, sandbox, card_id, "the card's status line", fields_only=True)

    transcript.note("alice sets the severity; bob pins a finding to the timeline with a 📌 reaction")
    await slash(alice, cid, "/incident severity SEV2", "payments-502s")
    await show_new_bot_posts(transcript, sandbox, cid, 1)
    finding = await bob.post(cid, "Rollback done at 16:40; the 502 rate is back under 0.1 %.")
    transcript.say("payments-502s", "bob", finding["message"])
    await bob.react(finding["id"], "pushpin")
    transcript.say("payments-502s", "bob", "(reacts with :pushpin:)")
    # (not shown) the bot handles its events in order on one connection: once it has answered a
    # direct message sent after the reaction, and no handler is running, the pin is on the timeline
    before = len(sandbox.posts(alice_dm))
    await alice.post(alice_dm, "help")
    await bot_replies(alice_dm, before)
    assert app.events is not None
    await app.events.settled()

    transcript.note("service is restored: alice ends the incident (with a confirmation dialog)")
    result = await slash(alice, cid, "/incident end", "payments-502s")
    transcript.note(f'dialog: "{result.dialog["dialog"].get("introduction_text", "")}" → alice clicks End incident')
    await alice.submit_dialog({})
    await show_new_bot_posts(transcript, sandbox, cid, 1)
    show_card(transcript, sandbox, card_id, "the final card")

    transcript.note("the record: the whole timeline, then the retrospective")
    await slash(alice, cid, "/incident timeline", "payments-502s")
    result = await slash(alice, cid, "/incident retro", "payments-502s")
    if result.dialog is not None:
        transcript.note(f'dialog: "{result.dialog["dialog"]["title"]}", prefilled with the key figures → alice '
                        "writes what happened and clicks Publish")
        await alice.submit_dialog({"text": "**What happened:** yesterday's deploy broke the payment gateway's "
                                           "connection pool.\n**Next time:** canary the gateway first."})
        await show_new_bot_posts(transcript, sandbox, cid, 1)


async def show_new_bot_posts(transcript: Transcript, sandbox: Sandbox, channel_id: str, count: int) -> None:
    """Print the bot's latest ``count`` non-card posts in the channel."""
    bot_id = sandbox.user_id("incident")
    posts = [p for p in sandbox.posts(channel_id) if p["user_id"] == bot_id
             and not p.get("type", "").startswith("system_") and not p["props"].get("command_center_card")]
    name = (sandbox.channel_by_id(channel_id) or {}).get("name", "")
    for post in posts[-count:]:
        transcript.say(name, "incident", post["message"])


def show_card(transcript: Transcript, sandbox: Sandbox, card_id: str, what: str, *,
              fields_only: bool = False) -> None:
    channel_id = sandbox_card_channel(sandbox, card_id)
    card = next((p for p in sandbox.pinned(channel_id) if p["id"] == card_id), None) or sandbox.pinned(channel_id)[0]
    lines = [card["message"]]
    attachments = card["props"]["attachments"][:1] if fields_only else card["props"]["attachments"]
    for attachment in attachments:
        if attachment.get("title"):
            lines.append(attachment["title"])
        for field in attachment.get("fields", []):
            lines.append(f"  {field['title']}: {field['value']}")
        if attachment.get("text"):
            lines.append(attachment["text"])
        buttons = [f"[{action['name']}]" for action in attachment.get("actions", [])]
        if buttons:
            lines.append("  " + " ".join(buttons))
    transcript.note(what + ":")
    print("\n".join("   | " + line for text in lines for line in text.splitlines()))


def sandbox_card_channel(sandbox: Sandbox, card_id: str) -> str:
    for channel_id in sandbox.world.channels:
        if any(p["id"] == card_id for p in sandbox.posts(channel_id, include_deleted=True)):
            return channel_id
    raise LookupError(card_id)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--max-lines", type=int, default=16, help="lines shown of each long reply")
    parser.add_argument("--verbose", action="store_true", help="show the bot's log lines")
    args = parser.parse_args(argv)
    configure_logging("INFO" if args.verbose else "WARNING")
    transcript = Transcript(args.max_lines)
    with tempfile.TemporaryDirectory(prefix="command-center-demo-") as data_dir:
        async with Sandbox(SEED, config=SandboxConfig(post_edit_time_limit=300)) as sandbox:
            settings = Settings(mattermost_url=sandbox.url, bot_token=sandbox.token_of("incident"),
                                listen_host="127.0.0.1", listen_port=0, data_dir=Path(data_dir))
            app = CommandCenter(settings)
            await app.start()
            try:
                await app.wait_connected()
                transcript.note(f"sandbox Mattermost at {sandbox.url}; bot @incident connected, "
                                f"callbacks at {app.callback_base_url}")
                # The bot's card clock follows the sandbox's simulated time (as a host synced with the server).
                assert app.incidents is not None
                assert app.ctx is not None
                app.ctx.clock = sandbox.now_ms
                assert app.inbound is not None
                app.inbound.triggers.replays.clock = lambda: sandbox.now_ms() / 1000
                await act(transcript, sandbox, app)
            finally:
                await app.stop()
    transcript.note("demo finished")
    return 0


if __name__ == "__main__":
    logging.captureWarnings(True)
    sys.exit(asyncio.run(main(sys.argv[1:])))
