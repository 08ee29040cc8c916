"""What every service and plugin is given: the shared pieces, built once by the composition root (bot.py).

It lives here, below plugins/, so that services never import upwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.api import MattermostAPI
from gateway.errors import MattermostError
from gateway.ids import Route
from gateway.signing import Signer
from settings import Settings
from storage.base import Store
from telemetry import NULL_TELEMETRY, Telemetry


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class BotContext:
    """The settings, the one Mattermost client, the signer, the store and the telemetry sender."""

    settings: Settings
    client: MattermostAPI
    signer: Signer
    store: Store
    telemetry: Telemetry = NULL_TELEMETRY
    #: Where Mattermost calls the bot back (known once the HTTP server has bound its port).
    callback_base_url: str = ""
    #: The one time every service stamps changes and draws cards with (epoch ms). The demo and the tests
    #: set it to the sandbox's simulated time, so what the bot records and what it shows agree.
    clock: Callable[[], int] = wall_clock_ms
    #: Mattermost's own public address (its SiteURL, read at start), for what a browser opens: the OAuth
    #: sign-in, links to channels. "" when Mattermost has none: ``settings.mattermost_url`` is used.
    mattermost_site_url: str = ""

    @property
    def browser_mattermost_url(self) -> str:
        """Where people's browsers reach Mattermost (the bot itself may reach it by an internal name)."""
        return (self.mattermost_site_url or self.settings.mattermost_url).rstrip("/")

    @property
    def action_url(self) -> str:
        return self.callback_base_url + Route.ACTION.value

    @property
    def dialog_url(self) -> str:
        return self.callback_base_url + Route.DIALOG.value

    async def tell(self, user_id: str, channel_id: str, text: str) -> None:
        """Tell one person something only they should see: ephemeral in ``channel_id`` when the bot may
        post ephemerally (Mattermost allows that only to system admins' tokens), else by direct message."""
        client = self.client
        dm = await client.direct_channel_with(user_id)  # remembered per person: asked once
        # Whether the bot may is learned at login, so a bot that may not never sends a request sure to fail.
        if client.may_post_ephemeral and channel_id and channel_id != dm.id:
            try:
                await client.create_ephemeral_post(user_id, channel_id, text)
                return
            except MattermostError as error:
                if error.status != 403:
                    raise
        await client.create_post(dm.id, text)
