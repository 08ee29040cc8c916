"""The incident pages' small pure pieces (backstage/incidents.py): chat Markdown as plain text for a
page, download file names, and the links from chat (the card's title, list/info/update lines)."""

from __future__ import annotations

import pytest

from backstage.incidents import plain, safe_filename
from gateway.messages import limited_markdown, neutralize, page_link
from gateway.signing import Signer
from gateway.ui import Attachment, UIError


@pytest.mark.parametrize("text", ["a*b_c", "[x](javascript:alert(1))", "<b>bold</b>", "`code` ~town", "#1 + !x"])
def test_plain_gives_back_what_was_typed_from_neutralized_text(text):
    assert plain(neutralize(text)).replace("\u2060", "").replace("\u200d", "") == text


def test_plain_drops_link_targets_and_emphasis():
    assert plain("added [a post](https://x/y) by **@bob**") == "added a post by @bob"
    # limited markdown shows a link's target as text; the page shows that text, never a link.
    assert plain(limited_markdown("[click](javascript:alert(1))")) == "click (javascript:alert(1))"


@pytest.mark.parametrize(("name", "expected"), [
    ("payments-502s-20261201-1200.csv", "payments-502s-20261201-1200.csv"),
    ('evil"; filename=x.exe\r\nX: y', "evil-filename-x.exe-X-y"),
    ("../../etc/passwd", "etc-passwd"),
    ("ünïcode ✓.md", "n-code-.md"),
    ("", "report.md"),
])
def test_download_names_are_safe_characters_only(name, expected):
    assert safe_filename(name, "report.md") == expected


def test_page_links_only_for_an_http_address():
    assert page_link("http://bot:8080", "i" * 26) == f"[page](http://bot:8080/backstage/incidents/{'i' * 26})"
    assert page_link("", "i" * 26) == ""


def test_a_title_link_needs_a_title_and_an_http_url():
    signer = Signer("s" * 40)
    body = Attachment(fallback="f", title="T", title_link="https://bot/backstage/incidents/x").to_json(
        signer, "http://bot/action", "c" * 26)
    assert body["title_link"] == "https://bot/backstage/incidents/x"
    assert "title_link" not in Attachment(fallback="f", title="T").to_json(signer, "http://bot/action", "c" * 26)
    with pytest.raises(UIError):
        Attachment(fallback="f", title="T", title_link="javascript:alert(1)")
    with pytest.raises(UIError):
        Attachment(fallback="f", title_link="https://bot/x")
