"""Issue 20: the bot on PostgreSQL starts, sizes its pool from the setting, and says clearly (without
the password) when its database cannot be reached."""

from __future__ import annotations

import pytest

from bot import CommandCenter, StartupError
from settings import Settings
from storage.postgres import PostgresStore
from tests import pg


async def test_an_unreachable_postgres_gives_a_clear_startup_error_without_the_password(tmp_path):
    port = pg.free_port()  # nothing listens there
    app = CommandCenter(Settings(mattermost_url="http://127.0.0.1:9", bot_token="t", listen_port=0, data_dir=tmp_path,
                                 database_url=f"postgresql://cc:hunter2secret@127.0.0.1:{port}/cc"))
    with pytest.raises(StartupError) as raised:
        await app.start()
    message = str(raised.value)
    assert "CC_DATABASE_URL" in message and f"postgresql://cc:***@127.0.0.1:{port}/cc" in message
    assert "hunter2secret" not in message


@pytest.mark.parametrize("e2e_database", ["postgresql"], indirect=True)
async def test_the_bot_runs_on_postgres_with_the_pool_size_it_is_given(start_bot, e2e_database):
    app = await start_bot(database_pool_size=3)
    store = app.store
    assert isinstance(store, PostgresStore) and store.url == e2e_database and store.pool_size == 3
