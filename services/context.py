"""What every service and plugin is given: the shared pieces, built once by the composition root (bot.py).

It lives here, below plugins/, so that services never import upwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.api import MattermostAPI
from gateway.ids import Route
from gateway.signing import Signer
from settings import Settings
from storage.base import Store
from telemetry import NULL_TELEMETRY, Telemetry


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

    @property
    def action_url(self) -> str:
        return self.callback_base_url + Route.ACTION.value

    @property
    def dialog_url(self) -> str:
        return self.callback_base_url + Route.DIALOG.value
