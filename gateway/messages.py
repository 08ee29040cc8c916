"""Texts the bot shows people: help, and the one place that formats mentions and durations."""

from __future__ import annotations

import re

_HELP_ROWS: tuple[tuple[str, str, str], ...] = (
    ("start [name]", "Open the start dialog: pick a playbook, name the incident", "start Database down"),
    ("start --post <link or id> [name]", "Start from a post; its text is quoted in the incident channel",
     "start --post https://chat.example.com/acme/pl/8xk3... Checkout errors"),
    ("end", "End the incident of this channel (after a confirmation)", "end"),
    ("restart", "Reopen the ended incident of this channel", "restart"),
    ("commander [@user]", "Show or change the commander", "commander @bob"),
    ("stage [next|prev|S]", "Show or change the active stage", "stage next"),
    ("stage show S", "See another stage's steps, with buttons, without making it active (only you see it)",
     "stage show 2"),
    ("check S.N", "Mark a step done (N alone means a step of the active stage)", "check 1.2"),
    ("uncheck S.N", "Mark a step open again", "uncheck 1.2"),
    ("assign S.N @user|none", "Set or clear a step's assignee", "assign 2.1 @carol"),
    ("run S.N", "Run the step's slash command in the incident channel", "run 1.3"),
    ("step add [S] <title> / remove S.N / rename S.N <title> / move S.N <position>",
     "Edit this incident's own checklist", "step add 2 Page the database on-call"),
    ("info [incident]", "Details: commander, playbook, duration, people, stages, timeline", "info"),
    ("list [ongoing|ended|all] [@commander] [--playbook NAME] [--search TEXT] [--page N]",
     "Incidents you can see in this team, newest first", "list ongoing @alice"),
    ("export [incident] [--raw]", "CSV of the incident channel, sent to you by direct message; spreadsheet-safe "
     "unless --raw", "export"),
    ("announce ~channel…", "Tell other channels that this incident started", "announce ~town-square ~ops"),
    ("playbook list|show|create|edit|delete|members|export|import|templates", "Manage playbooks",
     "playbook create"),
    ("help", "This list", "help"),
)


def help_text(trigger: str, *, unknown: str = "", via_dm: bool = False) -> str:
    """The command list with examples; names the unknown subcommand when there was one."""
    prefix = "" if via_dm else f"/{trigger} "
    lines = []
    if unknown:
        lines.append(f"{inline_code(unknown, limit=200)} is not a Command Center command. Here is what you can type:")
        lines.append("")
    lines.append("#### Command Center")
    if via_dm:
        lines.append(f"Send me these words here, or type them after `/{trigger}` in any channel.")
    lines.append("")
    lines.append("| Command | What it does | Example |")
    lines.append("|:--|:--|:--|")
    for usage, purpose, example in _HELP_ROWS:
        # A bare | would end the table cell, even inside code.
        usage = usage.replace("|", "\\|")
        lines.append(f"| `{prefix}{usage}` | {purpose} | `{prefix}{example}` |")
    lines.append("")
    lines.append("Steps are written `S.N` (stage S, step N, counting from 1) or just `N` for the active stage. "
                 "Commands about an incident work in its channel.")
    return "\n".join(lines)


# Mattermost looks for mentions in the text of a post as its Markdown parser sees it, escapes and character
# references resolved: '\@all' and '@al&#108;' are '@all'. So every '@' that is not followed by a space gets
# an invisible word joiner (Mattermost splits words there), and so does every '&' that starts a reference.
_AT = re.compile(r"@(?=\S)")
_CHARACTER_REFERENCE = re.compile(r"&(?=#[0-9]+;|#[xX][0-9a-fA-F]+;|[A-Za-z][A-Za-z0-9]*;)")
_WORD_JOINER = "\u2060"
_QUOTE_LIMIT = 4000


def _defuse_mentions(text: str) -> str:
    text = _CHARACTER_REFERENCE.sub("&" + _WORD_JOINER, text)
    return _AT.sub("@" + _WORD_JOINER, text)


def neutralize(text: str) -> str:
    """Make user-supplied text safe to show inline: no @mentions fire, no markdown breaks out.

    A zero-width joiner after '@' keeps ``@all``/``@channel`` readable without notifying anyone.
    """
    text = text.replace("\r", " ").replace("\n", " ")
    text = _defuse_mentions(text)
    return re.sub(r"([\\`*_{}\[\]()#+!|<>~])", r"\\\1", text)


def quote(text: str, *, limit: int = _QUOTE_LIMIT) -> str:
    """``text`` (a post's message) as a Markdown block quote that keeps its formatting but notifies nobody.

    No ``@channel``, ``@all``, ``@here``, ``@user`` or ``@group`` in it is live, however it is written;
    every line stays inside the quote. Text longer than ``limit`` characters is cut, marked with '…'.
    """
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    lines = _LINE_BREAKS.split(_defuse_mentions(text)) or [""]
    return "\n".join(f"> {line}" if line else ">" for line in lines)


_LINE_BREAKS = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
_BACKTICK_RUNS = re.compile(r"`+")


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in _BACKTICK_RUNS.findall(text)), default=0)


def inline_code(text: str, *, limit: int | None = None) -> str:
    """``text`` as one inline code span, delimiters included, that no content can end early.

    CommonMark (and Mattermost's own parser, which decides who is mentioned) closes a code span only
    at a backtick run exactly as long as the opening one, so the delimiters are one backtick longer
    than the longest run inside; a space pads content that starts or ends with a backtick, or
    with a space at both ends (one is stripped again on each side). Line breaks become spaces: a blank line would end
    the paragraph and with it the span. Mentions inside a code span notify nobody.
    """
    text = _LINE_BREAKS.sub(" ", text)
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    if not text:
        return "` `"
    fence = "`" * (_longest_backtick_run(text) + 1)
    # CommonMark strips one space from each end when both ends have one (unless it is all spaces).
    edge_spaces = text[0] == " " and text[-1] == " " and text.strip(" ")
    pad = " " if "`" in (text[0], text[-1]) or edge_spaces else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str) -> str:
    """``text`` as a fenced code block that no line inside can close: the fence is longer than any backtick run.

    The block starts and ends on a line of its own; put it after a line break.
    """
    fence = "`" * max(3, _longest_backtick_run(text) + 1)
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    return f"{fence}\n{body}\n{fence}"


def mention(username: str) -> str:
    return f"@{username}" if username else "someone"


def format_duration(milliseconds: int) -> str:
    """'3d 4h', '2h 5m', '4m 10s', '12s' — the two largest units."""
    seconds = max(0, milliseconds // 1000)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value]
    return " ".join(shown[:2]) if shown else "0s"


# The live card's duration (services/livecard.py refreshes it): coarse enough that hundreds of ongoing
# incidents stay cheap, fine enough to read at a glance. (from, granularity) in ms, longest first.
_LIVE_STEPS_MS = ((24 * 3_600_000, 3_600_000), (3_600_000, 5 * 60_000), (0, 60_000))


def live_duration_granularity(milliseconds: int) -> int:
    """How finely the live card shows a duration this long: a minute in the first hour, five minutes up
    to a day, an hour after that."""
    return next(step for start, step in _LIVE_STEPS_MS if milliseconds >= start)


def format_live_duration(milliseconds: int) -> str:
    """'<1m', '12m', '2h 5m', '3d 4h': the duration rounded down to its live granularity."""
    milliseconds = max(0, milliseconds)
    step = live_duration_granularity(milliseconds)
    shown = milliseconds // step * step
    return "<1m" if shown < 60_000 else format_duration(shown)


def next_live_duration_change(milliseconds: int) -> int:
    """The duration (ms) at which :func:`format_live_duration` next shows something else."""
    milliseconds = max(0, milliseconds)
    step = live_duration_granularity(milliseconds)
    return (milliseconds // step + 1) * step
