"""Service tests run against the sandbox Mattermost and the real bot, like the e2e tests."""

from tests.e2e.conftest import bot, sandbox, start_bot  # noqa: F401  (fixtures)
