"""The part of a message Mattermost scans for mentions: the text outside code, as rendered.

Mattermost parses a post's Markdown and looks for mentions only in its text nodes
(``getExplicitMentions`` walks ``markdown.Inspect``): code spans and code blocks never mention
anyone, while backslash escapes and character references are resolved first, so ``\\@all`` and
``@al&#108;`` do notify the channel. This follows the same rules, erring towards finding a mention
where the real parser might not (spans are matched within one line, only top-level fenced blocks
are skipped, every reference is joined to the text around it), so a test that finds no mention
here finds none in Mattermost.
"""

from __future__ import annotations

import html
import re
import string

_LINE = re.compile(r"\r\n|\r|\n")
_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
_BACKTICKS = re.compile(r"`+")
_REFERENCE = re.compile(r"&(?:#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[A-Za-z][A-Za-z0-9]{0,31});")
_ESCAPABLE = set(string.punctuation)


def mention_text(message: str) -> str:
    """``message`` with code removed (each span becomes a space) and escapes and references resolved."""
    return "\n".join(_inline_text(line) for line in _lines_outside_fences(message))


def _lines_outside_fences(message: str) -> list[str]:
    kept: list[str] = []
    fence = ""
    for line in _LINE.split(message):
        if fence:
            stripped = line.lstrip(" ")
            if len(line) - len(stripped) <= 3 and stripped.startswith(fence) \
                    and not stripped.rstrip(" \t").strip(fence[0]):
                fence = ""
            continue
        opening = _FENCE_OPEN.match(line)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            fence = opening.group(1)
            continue
        kept.append(line)
    return kept


def _inline_text(line: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line) and line[i + 1] in _ESCAPABLE:
            out.append(line[i + 1])
            i += 2
        elif c == "`":
            run = _BACKTICKS.match(line, i)
            assert run is not None
            opening = run.group()
            close = next((m for m in _BACKTICKS.finditer(line, run.end()) if m.group() == opening), None)
            if close is None:
                out.append(opening)
                i = run.end()
            else:
                out.append(" ")
                i = close.end()
        elif c == "&" and (reference := _REFERENCE.match(line, i)):
            out.append(html.unescape(reference.group()))
            i = reference.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def post_mention_text(post: dict) -> str:
    """The text of every field Mattermost scans: the message and each attachment's pretext and text."""
    fields = [post.get("message") or ""]
    attachments = (post.get("props") or {}).get("attachments")
    for attachment in attachments if isinstance(attachments, list) else []:
        if isinstance(attachment, dict):
            fields += [str(attachment.get(key) or "") for key in ("pretext", "text")]
    return "\n".join(mention_text(field) for field in fields if field)
