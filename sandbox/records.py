"""What the sandbox records: REST exchanges (for contract checks) and outbound integration callbacks.

A leaf module: app.py keeps lists of these and the integration modules create ``Callback`` records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Exchange:
    """One REST request/response pair that crossed the sandbox (for contract checks)."""

    method: str
    url: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes


@dataclass
class Callback:
    """One outbound request the sandbox made to an integration, and what came back."""

    kind: str                      # "command" | "action" | "dialog"
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None = None      # None when the integration never answered
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    error: str | None = None       # timeout / connection error text

    def json(self) -> Any:
        """The request body decoded as JSON (action and dialog callbacks)."""
        return json.loads(self.body)

    def form(self) -> dict[str, list[str]]:
        """The request fields of a slash command (form body or GET query)."""
        raw = self.body.decode() if self.body else urlsplit(self.url).query
        return parse_qs(raw, keep_blank_values=True)
