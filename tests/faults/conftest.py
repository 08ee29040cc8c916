"""Fault-injection tests reuse the end-to-end fixtures (the demo sandbox and the real bot)."""

from tests.e2e.conftest import bot, e2e_database, make_playbook, sandbox, start_bot  # noqa: F401
