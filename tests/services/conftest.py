"""Service tests run against the sandbox Mattermost and the real bot, like the e2e tests."""

from tests.e2e.conftest import bot, e2e_database, sandbox, start_bot  # noqa: F401  (fixtures)
