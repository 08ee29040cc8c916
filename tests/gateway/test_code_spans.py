"""Code spans, code blocks and quotes the bot builds around user text: nothing inside gets out, no mention is live.

The judge of "live" is the sandbox's :func:`sandbox.mention_text.mention_text`, which follows the rules
Mattermost's server applies when it computes mentions (``getExplicitMentions`` over
``markdown.Inspect``: text outside code, escapes and character references resolved); its own
tests come first, so that a test below that finds no mention means something.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.messages import code_block, inline_code, neutralize, quote
from sandbox.mention_text import mention_text, post_mention_text
from sandbox.state import MENTION_RE

# Text that is mostly the characters that matter: backticks, line breaks, @, escapes, references.
HOSTILE = st.text(alphabet=st.sampled_from(list("``` @@all channel here x\n\r\\&#;64x40[]()~*_>-|\t")) | st.characters(),
                  max_size=80)
LIVE = re.compile(MENTION_RE.pattern, re.IGNORECASE)


def live_mentions(message: str) -> list[str]:
    return [m.group(1).lower().rstrip(".-_") for m in LIVE.finditer(mention_text(message))]


# The oracle ---------------------------------------------------------------------------------------

def test_the_oracle_finds_mentions_as_mattermost_does():
    assert live_mentions("@all look") == ["all"]
    assert live_mentions("\\@channel look") == ["channel"]          # an escaped @ is still an @
    assert live_mentions("&#64;here and &#x40;all and &commat;bob") == ["here", "all", "bob"]
    assert live_mentions("`x` @all `y`") == ["all"]
    assert live_mentions("`/echo ok` @all ping `") == ["all"]        # F4 as main wrote it
    assert live_mentions("@al&#108; and x@bob") == ["all", "bob"]
    assert live_mentions("~~~\n@all\n```\n@here") == []             # a ``` line does not close a ~~~ fence
    assert live_mentions("```\n@all\n```\n@here") == ["here"]


def test_the_oracle_ignores_code():
    assert live_mentions("`@all`") == []
    assert live_mentions("`` a ` @all ` b ``") == []
    assert live_mentions("```\n@all\n```") == []
    assert live_mentions("````\n```\n@all\n````") == []
    assert live_mentions("@\u2060all") == []
    assert post_mention_text({"message": "", "props": {"attachments": [{"text": "@all"}]}}) == "@all"


# Inline code ------------------------------------------------------------------------------------

def test_the_f4_step_command_stays_inside_its_span():
    command = "/echo ok` @all ping `"
    span = inline_code(command)
    assert span == "`` /echo ok` @all ping ` ``"
    assert live_mentions(f"@alice ran 1.1 **Open**: {span}") == ["alice"]


def _content_of_span(span: str) -> str:
    """What CommonMark shows for a string that must be exactly one code span (fails otherwise)."""
    fence = re.match(r"`+", span).group()
    assert span.endswith(fence) and len(span) > 2 * len(fence)
    inner = span[len(fence):-len(fence)]
    assert not inner.startswith("`") and not inner.endswith("`")      # the delimiter runs are exactly `fence`
    assert fence not in re.findall(r"`+", inner)                       # no run inside closes the span early
    assert "\n" not in inner and "\r" not in inner
    if inner.startswith(" ") and inner.endswith(" ") and inner.strip(" "):
        inner = inner[1:-1]
    return inner


@settings(max_examples=400)
@given(HOSTILE)
def test_no_content_gets_out_of_an_inline_span(text):
    span = inline_code(text)
    shown = _content_of_span(span)
    assert shown == (re.sub(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]", " ", text) or " ")
    # Inside a sentence the whole span is one piece of code: only the words around it remain.
    assert mention_text(f"before {span} after") == "before   after"


@given(HOSTILE, st.integers(min_value=1, max_value=30))
def test_a_cut_span_is_still_one_span(text, limit):
    span = inline_code(text, limit=limit)
    assert len(_content_of_span(span)) <= max(limit, 1)
    assert mention_text(f"x {span} y") == "x   y"


# Code blocks --------------------------------------------------------------------------------------

@settings(max_examples=300)
@given(HOSTILE)
def test_no_line_closes_a_code_block_early(text):
    block = code_block(text)
    fence = block.split("\n", 1)[0]
    lines = block.split("\n")
    assert lines[-1] == fence and set(fence) == {"`"} and len(fence) >= 3
    assert not any(line.strip(" ").startswith(fence) for line in lines[1:-1])
    assert mention_text(f"Run it yourself:\n{block}\nthen @carol") == "Run it yourself:\nthen @carol"


# Quotes and names -----------------------------------------------------------------------------------

def test_a_quote_keeps_the_text_and_its_formatting():
    quoted = quote("@channel please look at **this**\n\n- @bob: `db` is down &amp; slow")
    assert quoted.replace("\u2060", "") == "> @channel please look at **this**\n>\n> - @bob: `db` is down &amp; slow"
    assert live_mentions(quoted) == []


@settings(max_examples=400)
@given(HOSTILE)
def test_no_mention_in_a_quote_is_live(text):
    quoted = quote(text)
    assert live_mentions(quoted) == []
    # Every line stays in the quote and reads as written (the word joiners are invisible).
    original = re.split(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]", text)
    lines = quoted.split("\n")
    assert len(lines) == len(original)
    for line, written in zip(lines, original):
        assert line == ">" if not written else line.startswith("> ")
        assert line[2:].replace("\u2060", "") == written.replace("\u2060", "")


def test_a_long_post_is_cut_inside_the_quote():
    quoted = quote("word " * 2000)
    assert len(quoted) < 4100 and quoted.endswith("…")


@settings(max_examples=300)
@given(HOSTILE)
def test_no_mention_in_a_neutralized_name_is_live(text):
    assert live_mentions(f"Incident **{neutralize(text)}** started") == []


def test_character_references_do_not_make_mentions():
    for text in ("&#64;all", "@&#97;ll", "&commat;channel", "&#x40;here"):
        assert live_mentions(neutralize(text)) == [], text
        assert live_mentions(quote(text)) == [], text


def test_neutralized_text_links_no_channel():
    """The client links ``~name`` in rendered text (after the Markdown escapes are gone): a word
    joiner after every '~' keeps a channel name from touching it."""
    from gateway.messages import neutralize

    shown = neutralize("see ~town-square and \\~off-topic or ~~x~~")
    plain = shown.replace("\\", "")
    assert "~town" not in plain and "~off" not in plain and "~x" not in plain
    assert plain.replace("\u2060", "") == "see ~town-square and ~off-topic or ~~x~~"
