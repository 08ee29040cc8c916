"""The key the Sandbox and its route modules share: a leaf module (it imports none of them).

``Sandbox`` (app.py) stores itself on its aiohttp application under ``SB_KEY`` and wires the
route modules in; each handler reads it back with ``request.app[SB_KEY]``. Keeping the key here,
not in app.py, is what lets app.py import the route modules without them importing app.py back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:  # for the key's type only; never imported at run time
    from .app import Sandbox

SB_KEY: web.AppKey[Sandbox] = web.AppKey("sandbox")
