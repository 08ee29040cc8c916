"""What a browser opens goes to Mattermost's public address (its SiteURL), not the address the bot
uses: in deploy/docker-compose.yml the bot reaches Mattermost as http://mattermost:8065, a name no
browser resolves."""

from __future__ import annotations

from pathlib import Path

from sandbox import Sandbox, SandboxConfig

from .backstage import BackstageClient
from .conftest import DEMO_SEED, EDIT_TIME_LIMIT, bot_settings, make_playbook
from .oauth_flow import free_port, register_app
from .test_incidents import start_incident

SITE = "https://chat.example.com"


async def test_sign_in_and_channel_links_use_mattermosts_site_url(tmp_path: Path):
    from bot import CommandCenter

    config = SandboxConfig(site_url=SITE, post_edit_time_limit=EDIT_TIME_LIMIT)
    async with Sandbox(DEMO_SEED, config=config) as sandbox:
        port = free_port()
        app = await register_app(sandbox, f"http://127.0.0.1:{port}/backstage/oauth/callback")
        bot = CommandCenter(bot_settings(sandbox, tmp_path / "data", listen_port=port,
                                         oauth_client_id=app.id, oauth_client_secret=app.secret))
        await bot.start()
        try:
            await bot.wait_connected()
            assert bot.ctx is not None and bot.ctx.browser_mattermost_url == SITE
            async with BackstageClient(bot) as browser:
                async with browser.http.get(browser.url("/oauth/start"), allow_redirects=False) as response:
                    assert response.status == 303
                    assert response.headers["Location"].startswith(f"{SITE}/oauth/authorize?")
            await make_playbook(bot, sandbox)
            incident, channel = await start_incident(sandbox, bot, name="Site links")
            async with await BackstageClient.signed_in(bot, sandbox, "alice") as browser:
                status, text = await browser.get(f"/incidents/{incident.id}")
                assert status == 200
                assert f'href="{SITE}/acme/channels/{channel["name"]}"' in text
        finally:
            await bot.stop()
