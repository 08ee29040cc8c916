"""An unmodified mmpy_bot 2.2.1 Bot talks to the sandbox like to a real Mattermost."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

from mmpy_bot import Bot, Plugin, Settings, listen_to
from mmpy_bot.wrappers import Message

from sandbox import Sandbox


class Pong(Plugin):
    """Answers "ping X" with "pong X" in the same thread."""

    @listen_to(r"^ping (.*)$")
    def pong(self, message: Message, text: str) -> None:
        self.driver.reply_to(message, f"pong {text}")


async def test_mmpy_bot_receives_and_replies(sb: Sandbox, api, monkeypatch) -> None:
    # mmpy_bot lets environment variables override constructor arguments: control them all.
    for f in dataclasses.fields(Settings):
        monkeypatch.delenv(f.name, raising=False)
    settings = Settings(MATTERMOST_URL="http://127.0.0.1", MATTERMOST_PORT=sb.port,
                        BOT_TOKEN=sb.token_of("incident"), BOT_TEAM="acme", SSL_VERIFY=False,
                        WEBHOOK_HOST_ENABLED=False, SCHEDULER_PERIOD=0.05)
    bot_id = sb.user_id("incident")
    # Bot.__init__ makes a blocking GET /users/me, so it must not run on the sandbox's loop.
    bot = await asyncio.to_thread(Bot, settings=settings, plugins=[Pong()], enable_logging=False)
    assert bot.driver.user_id == bot_id

    def run_bot() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        bot.run()

    thread = threading.Thread(target=run_bot, name="mmpy-bot", daemon=True)
    thread.start()
    try:
        await sb.wait_for(lambda: any(c.user_id == bot_id for c in sb.ws_connections), timeout=10)
        ts = sb.channel("acme", "town-square")["id"]
        asked = await sb.user("bob").post("town-square", "ping hello")
        reply = await sb.wait_for(
            lambda: next((p for p in sb.posts(ts) if p["user_id"] == bot_id), None), timeout=10)
        assert reply["message"] == "pong hello" and reply["root_id"] == asked["id"]
        status, _, plist = await api("GET", f"/api/v4/channels/{ts}/posts", as_user="bob")
        assert status == 200 and reply["id"] in plist["order"]
        assert plist["posts"][reply["id"]]["props"]["from_bot"] == "true"
    finally:
        # Bot.stop() cannot end the WebSocket loop (mmpy_bot #517): mark the driver's socket
        # as not alive, then deliver one more event so its receive loop sees the flag and
        # returns; bot.run() then stops its thread pool and the thread ends.
        bot.driver.disconnect()
        await sb.user("carol").post("town-square", "bye")
        await asyncio.to_thread(thread.join, 15)
    assert not thread.is_alive()
