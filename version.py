"""Command Center's version, reported as ``pluginVersion`` in telemetry and shown in logs.

Also the Mattermost server releases it supports (README "Works with Mattermost 11.7 and later"):
the current Extended Support Release and the monthly releases after it.
"""

from __future__ import annotations

__version__ = "0.1.0"

# The oldest supported Mattermost release: the v11.7 ESR (supported until 2027-05-15; the v10.11
# ESR before it reached end of support on 2026-08-15). Older servers get a start-up warning.
MIN_MATTERMOST = "11.7"

# The exact release deploy/docker-compose.yml pins and the sandbox announces by default.
TESTED_MATTERMOST = "11.7.15"


def parse_version(text: str) -> tuple[int, ...] | None:
    """'11.7.15' -> (11, 7, 15); None when ``text`` is not dotted numbers."""
    parts = text.strip().split(".")
    if not text.strip() or not all(part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)


def mattermost_supported(server_version: str) -> bool | None:
    """Whether a server version is MIN_MATTERMOST or newer; None when it cannot be read."""
    parsed = parse_version(server_version)
    if parsed is None:
        return None
    minimum = parse_version(MIN_MATTERMOST)
    assert minimum is not None  # MIN_MATTERMOST is dotted numbers
    return parsed[:len(minimum)] >= minimum
