"""What every service and plugin is given: the shared pieces, built once by the composition root (bot.py).

It lives here, below plugins/, so that services never import upwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.api import MattermostAPI
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

    @property
    def action_url(self) -> str:
        return self.callback_base_url + Route.ACTION.value

    @property
    def dialog_url(self) -> str:
        return self.callback_base_url + Route.DIALOG.value
