"""Texts the bot shows people: help, and the one place that formats mentions and durations."""

from __future__ import annotations

import difflib
import functools
import html
import re
from dataclasses import dataclass

from domain.errors import COMMAND, ValidationError

#: The trigger when none is configured (``settings.command_trigger``'s default).
DEFAULT_TRIGGER = "incident"


def command(trigger: str, words: str = "") -> str:
    """A command as the user types it with the configured trigger: ``command("ir", "list")`` is
    ``/ir list`` (the default trigger gives ``/incident list``). Every user-facing mention of a
    command is written with this (or :func:`command_prefix`, which it shares), never as a literal."""
    return f"/{trigger} {words}" if words else f"/{trigger}"


def with_trigger(text: str, trigger: str) -> str:
    """``text`` with the domain's :data:`~domain.errors.COMMAND` placeholders written out for ``trigger``."""
    return text.replace(COMMAND, command(trigger) + " ") if COMMAND in text else text


@dataclass(frozen=True)
class Usage:
    """How one command is typed: its words after the trigger, what it does, an example, and how many
    words may follow it (``max_words`` None: free text such as a title)."""

    syntax: str
    purpose: str
    example: str
    min_words: int = 0
    max_words: int | None = None
    in_help: bool = True  # a row of the command list (sub-verbs are summed up by their family's row)
    called: str = ""      # how messages name it when that is not its key (words typed after a title)


def _edit_verb(words: str, purpose: str, example: str, min_words: int, max_words: int | None) -> Usage:
    """An outline edit typed after a playbook's title (``playbook edit "<title>" step remove S.N``)."""
    return Usage(f'playbook edit "<title>" {words}', purpose, f'playbook edit "Incident Response" {example}',
                 min_words=min_words, max_words=max_words, in_help=False, called=" ".join(words.split()[:2]))


#: Every command and sub-verb, keyed by the words that name it: the one place that knows how each is typed.
#: The help tables, the usage line of a wrong command and "did you mean" all come from here.
USAGES: dict[str, Usage] = {
    "start": Usage("start [name]", "Open the start dialog: pick a playbook, name the incident", "start Database down"),
    "start --post": Usage("start --post <link or id> [name]",
                          "Start from a post; its text is quoted in the incident channel",
                          "start --post https://chat.example.com/acme/pl/8xk3... Checkout errors", min_words=1),
    "end": Usage("end", "End the incident of this channel (after a confirmation)", "end", max_words=0),
    "restart": Usage("restart", "Reopen the ended incident of this channel", "restart", max_words=0),
    "commander": Usage("commander [@user]", "Show or change the commander", "commander @bob", max_words=1),
    "stage": Usage("stage [next|prev|S]", "Show or change the active stage", "stage next", max_words=1),
    "stage show": Usage("stage show S", "See another stage's steps, with buttons, without making it active "
                        "(only you see it)", "stage show 2", min_words=1, max_words=1),
    "check": Usage("check S.N", "Mark a step done (N alone means a step of the active stage)", "check 1.2",
                   min_words=1, max_words=1),
    "uncheck": Usage("uncheck S.N", "Mark a step open again", "uncheck 1.2", min_words=1, max_words=1),
    "assign": Usage("assign S.N @user|none", "Set or clear a step's assignee (a person in the incident channel)",
                    "assign 2.1 @carol", min_words=2, max_words=2),
    "run": Usage("run S.N", "Run the step's slash command in the incident channel", "run 1.3",
                 min_words=1, max_words=1),
    "step show": Usage("step show S.N", "A step in full: its description, command and assignee", "step show 1.2",
                       min_words=1, max_words=1, in_help=False),
    "step": Usage("step show S.N / add [S] <title> / remove S.N / rename S.N <title> / move S.N <position>",
                  "See one step in full, or edit this incident's own checklist",
                  "step add 2 Page the database on-call", min_words=1),
    "step add": Usage("step add [S] <title>", "Add a step (to stage S, else to the active stage)",
                      "step add 2 Page the DBA", min_words=1, in_help=False),
    "step remove": Usage("step remove S.N", "Remove a step", "step remove 1.3", min_words=1, max_words=1,
                         in_help=False),
    "step rename": Usage("step rename S.N <title>", "Rename a step", "step rename 1.3 Page the DBA", min_words=2,
                         in_help=False),
    "step move": Usage("step move S.N <position>", "Move a step within its stage", "step move 1.4 1", min_words=2,
                       max_words=2, in_help=False),
    "info": Usage("info [incident]", "Details: commander, playbook, duration, people, stages, timeline "
                  "(the incident by name, ~channel or channel name; this channel's by default)", "info"),
    "timeline": Usage("timeline [incident] [page] [--all] / add <post link> [note] / hide N",
                      "The incident's full timeline, paged (UTC times, +h:mm since the start); add a post "
                      "from elsewhere; the commander hides an event (react with :pushpin: to add a post "
                      "of the incident channel)", "timeline 2"),
    "timeline add": Usage("timeline add <post link> [note]", "Add a post you can read to this incident's "
                          "timeline, with a note", "timeline add https://chat.example.com/acme/pl/8xk3... "
                          "the first report", min_words=1, in_help=False),
    "timeline hide": Usage("timeline hide N", "Hide event N (the number shown before it) from the timeline "
                           "(commander only)", "timeline hide 5", min_words=1, max_words=1, in_help=False),
    "list": Usage("list [ongoing|ended|all|overdue] [@commander] [--playbook NAME] [--search TEXT] [--page N]",
                  "Incidents you can see in this team, newest first", "list ongoing @alice"),
    "export": Usage("export [incident] [--raw]", "CSV of the incident channel, sent to you by direct message; "
                    "spreadsheet-safe unless --raw", "export"),
    "report": Usage("report [incident]", "The incident's report as a Markdown file, sent to you by direct message: "
                    "summary, fields, people, timeline, checklist, updates, retrospective, metrics", "report"),
    "stats": Usage("stats [playbook] [--days N]", "Count and median/p90 time to resolve of the incidents you can "
                   "see, per playbook and severity (last 30 days by default)", 'stats "Incident Response" --days 90'),
    "update": Usage("update [incident]", "Post a status update (a dialog): the channel, broadcast channels and "
                    "followers get it", "update"),
    "follow": Usage("follow [incident]", "Get its updates, end and restarts by direct message, without joining "
                    "its channel (the incident by name or ~channel; this channel's by default)", "follow ~db-down"),
    "unfollow": Usage("unfollow [incident]", "Stop following an incident", "unfollow ~db-down"),
    "field": Usage("field [<name> <value>|none]", "Show the incident's fields, or set one (a level, an option, "
                   "a username, YYYY-MM-DD or text; none clears it)", "field customer ACME"),
    "severity": Usage("severity [level]", "Show or set the severity (e.g. SEV1 … SEV4)", "severity SEV2"),
    "retro": Usage("retro [incident] / retro none", "Write and publish the retrospective of an ended incident "
                   "(a dialog), or record that there is none (commander)", "retro"),
    "todo": Usage("todo", "Your open steps and overdue updates across the incidents you can see", "todo",
                  max_words=0),
    "announce": Usage("announce ~channel…", "Tell other channels that this incident started",
                      "announce ~town-square ~ops", min_words=1),
    "request-update": Usage("request-update", "Ask the commander for a status update (in the channel)",
                            "request-update", max_words=0),
    "playbook": Usage("playbook list|show|create|edit|settings|delete|members|export|import|templates", "Manage playbooks",
                      "playbook create"),
    "backstage": Usage("backstage", "Get a one-time link (by direct message) that signs you in to the backstage, "
                       "the bot's web pages", "backstage", max_words=0),
    "help": Usage("help [command]", "This list, or how to type one command", "help assign", max_words=1),
    "playbook list": Usage("playbook list", "The playbooks you can use in this team", "playbook list", max_words=0,
                           in_help=False),
    "playbook show": Usage("playbook show <title>", "Stages, steps, members; buttons to edit, export, delete",
                           'playbook show "Incident Response"', min_words=1, in_help=False),
    "playbook templates": Usage("playbook templates", "The built-in templates", "playbook templates", max_words=0,
                                in_help=False),
    "playbook create": Usage("playbook create [template] [title]", "Create a playbook from a template (a dialog)",
                             'playbook create service-outage "Payments outage"', in_help=False),
    "playbook edit": Usage("playbook edit <title>", "Edit title, description, channel type, stages and steps "
                           "(a dialog)", 'playbook edit "Incident Response"', min_words=1, in_help=False),
    "playbook edit step": Usage(
        'playbook edit "<title>" step add S <title>',
        "Also: `step remove S.N`, `step rename S.N <title>`, `step move S.N <N or S.N>`, "
        "`step describe S.N <text>` (or `none`), `step command S.N </command>` (or `none`), "
        "`step assign S.N @user` (or `none`), `stage add <title>`, `stage rename S <title>`, "
        "`stage move S <N>`, `stage remove S`",
        'playbook edit "Incident Response" step add 2 Check the logs', in_help=False),
    "playbook edit step add": _edit_verb("step add S <title>", "Add a step to stage S",
                                        "step add 2 Check the logs", 2, None),
    "playbook edit step remove": _edit_verb("step remove S.N", "Remove a step", "step remove 1.3", 1, 1),
    "playbook edit step rename": _edit_verb("step rename S.N <title>", "Rename a step",
                                           "step rename 1.3 Page the DBA", 2, None),
    "playbook edit step move": _edit_verb("step move S.N <N or S.N>", "Move a step (within its stage, or to another)",
                                         "step move 1.3 2.1", 2, 2),
    "playbook edit step describe": _edit_verb("step describe S.N <text>", "Set a step's description (none clears it)",
                                             "step describe 1.1 See the runbook", 2, None),
    "playbook edit step command": _edit_verb("step command S.N </command>",
                                            "Set a step's slash command (none clears it)",
                                            "step command 1.1 /echo hi", 2, None),
    "playbook edit step assign": _edit_verb("step assign S.N @user", "Set a step's default assignee (none clears it)",
                                           "step assign 1.1 @carol", 2, 2),
    "playbook edit stage add": _edit_verb("stage add <title>", "Add a stage at the end",
                                         "stage add Follow-up", 1, None),
    "playbook edit stage rename": _edit_verb("stage rename S <title>", "Rename a stage",
                                            "stage rename 2 Mitigate", 2, None),
    "playbook edit stage move": _edit_verb("stage move S <N>", "Move a stage", "stage move 3 1", 2, 2),
    "playbook edit stage remove": _edit_verb("stage remove S", "Remove a stage and its steps", "stage remove 3", 1, 1),
    "playbook settings": Usage("playbook settings <title>", "Status updates (broadcast channels, interval, "
                               "template, reminders) and start settings (invited users, commander, followers)",
                               'playbook settings "Incident Response"', min_words=1, in_help=False),
    "playbook members": Usage('playbook members "<title>" [add|remove @user…]',
                              "Show or change who can use the playbook",
                              'playbook members "Incident Response" add @carol', min_words=1, in_help=False),
    "playbook delete": Usage("playbook delete <title>", "Delete it (after a confirmation); incidents keep their "
                             "checklists", 'playbook delete "Old drill"', min_words=1, in_help=False),
    "playbook export": Usage("playbook export <title>", "Sends you the playbook as a YAML file",
                             'playbook export "Incident Response"', min_words=1, in_help=False),
    "playbook import": Usage("playbook import", "Paste YAML into a dialog, or send me the .yaml file in a direct "
                             "message", "playbook import", max_words=0, in_help=False),
}

#: Other words for a command (what people type by habit).
ALIASES = {"playbooks": "playbook", "playbook new": "playbook create", "step delete": "step remove"}


def command_prefix(trigger: str, *, via_dm: bool = False) -> str:
    """What comes before a command's words: the slash and trigger in a channel, nothing in a direct message."""
    return "" if via_dm else command(trigger) + " "


def usage_line(key: str, prefix: str) -> str:
    """``Usage: `/<trigger> assign S.N @user|none` — …. Example: `…```` for one command."""
    usage = USAGES[key]
    return (f"Usage: {inline_code(prefix + usage.syntax)} — {usage.purpose}. "
            f"Example: {inline_code(prefix + usage.example)}")


def check_words(key: str, words: list[str], prefix: str) -> None:
    """Refuse missing or extra words after a command, with that command's usage line."""
    usage = USAGES[key]
    name = inline_code(usage.called or prefix + key)
    if len(words) < usage.min_words:
        raise ValidationError(f"Something is missing after {name}.\n{usage_line(key, prefix)}")
    if usage.max_words is not None and len(words) > usage.max_words:
        extra = words[usage.max_words:]
        verb = "is" if len(extra) == 1 else "are"
        shown = inline_code(" ".join(extra), limit=80)
        raise ValidationError(f"Too many words for {name}: {shown} "
                              f"{verb} more than it takes.\n{usage_line(key, prefix)}")


def suggestion(word: str, family: str = "") -> str:
    """The command ``word`` was probably meant to be (``family``: "" for top-level commands, or e.g.
    "playbook" or "step" for their verbs); "" when nothing is close."""
    depth = len(family.split()) + 1 if family else 1
    names = [key.split()[-1] for key in [*USAGES, *ALIASES]
             if len(key.split()) == depth and key.startswith(family) and not key.split()[-1].startswith("--")]
    close = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.75)
    return close[0] if close else ""


def unknown_command_text(word: str, rest: str, prefix: str, *, family: str = "") -> str:
    """What a near-miss (``chek 1.1``) gets: "did you mean `check 1.1`?" and that command's usage;
    "" when no command is close."""
    meant = suggestion(word, family)
    if not meant:
        return ""
    key = ALIASES.get(f"{family} {meant}".strip(), f"{family} {meant}".strip())
    typed = " ".join(part for part in (family, meant, rest) if part)
    return (f"{inline_code(prefix + (family + ' ' if family else '') + word, limit=80)} is not a Command Center "
            f"command. Did you mean {inline_code(prefix + typed, limit=200)}?\n{usage_line(key, prefix)}\n"
            f"Type {inline_code(prefix + 'help')} for the full list.")


def help_text(trigger: str, *, unknown: str = "", via_dm: bool = False) -> str:
    """The command list with examples; names the unknown subcommand when there was one."""
    prefix = command_prefix(trigger, via_dm=via_dm)
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
    for usage in USAGES.values():
        if usage.in_help:
            lines.append(f"| {_cell_code(prefix + usage.syntax)} | {usage.purpose} | "
                         f"{_cell_code(prefix + usage.example)} |")
    lines.append("")
    lines.append("Steps are written `S.N` (stage S, step N, counting from 1) or just `N` for the active stage. "
                 "Commands about an incident work in its channel.")
    return "\n".join(lines)


def playbook_help_text(trigger: str, *, via_dm: bool = False) -> str:
    """The playbook commands, from the same table."""
    prefix = command_prefix(trigger, via_dm=via_dm)
    lines = ["#### Playbook commands", "| Command | What it does |", "|:--|:--|"]
    for key, usage in USAGES.items():
        if key.startswith("playbook ") and len(key.split()) <= 3:  # edit's verbs are summed up in one row
            purpose = usage.purpose.replace("|", _CELL_BAR)
            lines.append(f"| {_cell_code(prefix + usage.syntax)} | {purpose} |")
    lines.append("")
    lines.append("Titles are matched ignoring case; put quotes around a title when more words follow it. In a direct "
                 "message with me, add `--team NAME` if we share more than one team. The YAML format: "
                 "docs/playbooks.md.")
    return "\n".join(lines)


def _cell_code(text: str) -> str:
    # A bare | would end the table cell, even inside code.
    return inline_code(text).replace("|", _CELL_BAR)


_CELL_BAR = "\\|"


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

    A zero-width joiner after '@' keeps ``@all``/``@channel`` readable without notifying anyone; one
    after '~' keeps ``~town-square`` from becoming a channel link (the client links channel names in
    the text it renders, after the Markdown escapes are gone).
    """
    text = text.replace("\r", " ").replace("\n", " ")
    text = _defuse_mentions(text).replace("~", "~" + _WORD_JOINER)
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


# Limited markdown --------------------------------------------------------------------------------
# Step titles and descriptions are markdown written by playbook authors; the guide promises "a
# limited form of markdown, including text styling and hyperlinks". The text is parsed into the few
# constructs allowed and written out again, so nothing the author typed reaches Mattermost as
# markdown except what is emitted here: every other markdown character is escaped, every mention
# is defused, and links are made only to http, https and mailto addresses.

LINK_SCHEMES = ("http", "https", "mailto")
_SOURCE_MAX = 20_000          # a bound on work per call; validated texts are far shorter
_NESTING_MAX = 5
_SPAN_MAX = 400             # characters a styled span may hold: keeps the scan for a closing mark short
_CODE_SPAN_MAX = 1000
# What could start markdown mid-line. Parentheses need no escape: with every bracket escaped none can
# follow a link text; '+', '-', '=' and digits matter only at the start of a line (_safe_line_start).
_ESCAPED = re.compile(r"([\\`*_\[\]#!|<>~])")
_TILDE = re.compile(r"~(?=\S)")
# A word followed by ':' and more text is what a client's autolinker takes for a URL scheme.
_SCHEME_COLON = re.compile(r"(?<![A-Za-z0-9])([A-Za-z][A-Za-z0-9+.\-]*):(?!\s)")
_SCHEME_AT_END = re.compile(r"(?<![A-Za-z0-9])([A-Za-z][A-Za-z0-9+.\-]*):$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DEST = r"(?:<[^<>\n]*>|(?:\\.|[^\s()\\]|\((?:\\.|[^\s()\\])*\))++)"
_TITLE = r"""(?:\s+(?:"[^"]*"|'[^']*'|\([^()]*\)))?"""
_INLINE = re.compile(rf"""
    (?P<code>(?<!`)(?P<ticks>`++)(?P<code_body>.{{1,{_CODE_SPAN_MAX}}}?)(?<!`)(?P=ticks)(?!`))
  | (?P<image>!\[(?P<image_text>(?:\\.|[^\\\[\]])*+)\]\(\s*(?P<image_dest>{_DEST}){_TITLE}\s*\))
  | (?P<link>\[(?P<link_text>(?:\\.|[^\\\[\]])*+)\]\(\s*(?P<link_dest>{_DEST}){_TITLE}\s*\))
  | (?P<autolink><(?P<auto_dest>[A-Za-z][A-Za-z0-9+.\-]{{1,31}}:[^\s<>]*|[^\s<>@\\]+@[^\s<>@\\]+)>)
  | (?P<strong>\*\*(?=[^\s*])(?P<strong_body>.{{1,{_SPAN_MAX}}}?)(?<=[^\s*])\*\*
              |(?<![A-Za-z0-9])__(?=[^\s_])(?P<strong_body2>.{{1,{_SPAN_MAX}}}?)(?<=[^\s_])__(?![A-Za-z0-9]))
  | (?P<strike>~~(?=[^\s~])(?P<strike_body>.{{1,{_SPAN_MAX}}}?)(?<=[^\s~])~~)
  | (?P<em>\*(?=[^\s*])(?P<em_body>.{{1,{_SPAN_MAX}}}?)(?<=[^\s*])\*
          |(?<![A-Za-z0-9])_(?=[^\s_])(?P<em_body2>.{{1,{_SPAN_MAX}}}?)(?<=[^\s_])_(?![A-Za-z0-9]))
  | (?P<escape>\\[!-/:-@\[-`{{-~])
""", re.VERBOSE)
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_URL_SAFE = re.compile(r"[A-Za-z0-9\-._:/?#!$&'*+,;=%]")
_HEADING = re.compile(r"#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_BULLET = re.compile(r"[-+*][ \t]+(.*)$")
_QUOTE_MARKERS = re.compile(r"(?:>[ \t]?)+")
_FENCE_LINE = re.compile(r"(`{3,}|~{3,})")
_TABLE_RULE = re.compile(r"\|?(?:[ \t]*:?-+:?[ \t]*\|)+(?:[ \t]*:?-+:?[ \t]*)?|\|?[ \t]*:?-+:?[ \t]*\|[ \t]*")
_ORDERED_START = re.compile(r"([0-9]{1,9})([.)])")

# Nodes: ("text", str) · ("code", str) · ("raw", str) (our own safe text) · ("strong" | "em" | "strike", [nodes])
# · ("link", [nodes], url) · ("break",) · ("paragraph",)
_Node = tuple


_ADDRESS_LIKE = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:[^\s/@:]+@)?([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?::\d+)?(?:[/?#]\S*)?",
                           re.IGNORECASE)


def _address_host(text: str) -> str | None:
    """The host a text names when the whole of it reads as a web address or domain (``bank.com``,
    ``https://bank.com/login``), lower-cased without ``www.``; None for ordinary words."""
    match = _ADDRESS_LIKE.fullmatch(text.strip())
    if match is None or not re.search(r"[a-z]", match.group(1).rsplit(".", 1)[-1], re.IGNORECASE):
        return None
    host = match.group(1).lower()
    return host[4:] if host.startswith("www.") else host


def _link_target(raw: str) -> str | None:
    """The address of a link destination as written, or None when it is not an http(s)/mailto link."""
    if raw.startswith("<") and raw.endswith(">"):
        raw = raw[1:-1]
    url = html.unescape(_BACKSLASH_ESCAPE.sub(r"\1", raw)).strip()
    scheme, colon, _ = url.partition(":")
    if not colon or scheme.lower() not in LINK_SCHEMES or (scheme.lower() != "mailto" and "//" not in url[:len(scheme) + 3]):
        return None
    # Percent-encode everything that markdown, a mention or a character reference could read: '@'
    # (also defeats user@host look-alikes), '~' (%7E is the same address; read as text "~name" is a
    # channel link), brackets, quotes, spaces, non-ASCII.
    encoded = "".join(c if _URL_SAFE.fullmatch(c) else "".join(f"%{b:02X}" for b in c.encode("utf-8"))
                      for c in url)
    return _CHARACTER_REFERENCE.sub("%26", encoded)


def _parse_inline(text: str, depth: int = 0, in_link: bool = False) -> list[_Node]:
    if depth > _NESTING_MAX:
        return [("text", text)]
    nodes: list[_Node] = []
    at = 0
    for match in _INLINE.finditer(text):
        if match.start() > at:
            nodes.append(("text", text[at:match.start()]))
        at = match.end()
        kind = match.lastgroup
        group = match.groupdict()
        if group["code"] is not None:
            body = group["code_body"]
            if len(body) > 1 and body[0] == " " and body[-1] == " " and body.strip(" "):
                body = body[1:-1]
            # Inside a link's text a bracket in code could look like the end of the text to a lax parser.
            nodes.append(("text", body) if in_link and ("[" in body or "]" in body) else ("code", body))
        elif group["image"] is not None or group["link"] is not None:
            image = group["image"] is not None
            label = group["image_text" if image else "link_text"]
            url = _link_target(group["image_dest" if image else "link_dest"])
            children = _parse_inline(label, depth + 1, True) if label else []
            if in_link or url is None:
                # Not a link: its words stay, and so does where it pointed, as text (after a space only
                # when there are words: a span must not start with one, "* (x)" would start a list).
                dest = f"({group['image_dest' if image else 'link_dest']})"
                nodes += [*children, ("text", f" {dest}")] if children else [("text", dest)]
            else:
                nodes.append(("link", children or [("text", url)], url))
                shown_host = _address_host(label)
                if shown_host is not None and shown_host != _address_host(url):
                    # The words look like one address and the link goes to another ("[bank.com](evil)"):
                    # where it really goes is shown beside it.
                    nodes.append(("text", f" ({_address_host(url) or url})"))
        elif group["autolink"] is not None:
            dest = group["auto_dest"]
            url = _link_target(dest if ":" in dest.split("@")[0] else f"mailto:{dest}")
            if url is None or in_link:
                nodes.append(("text", match.group()))
            else:
                nodes.append(("link", [("text", dest)], url))
        elif kind in ("strong", "strike", "em"):
            body = group[f"{kind}_body"] or group.get(f"{kind}_body2") or ""
            nodes.append((kind, _parse_inline(body, depth + 1, in_link)))
        else:  # an escaped character stands for itself
            nodes.append(("text", match.group()[1]))
    if at < len(text):
        nodes.append(("text", text[at:]))
    merged: list[_Node] = []
    for node in nodes:  # one text node per run of text, so that no word is escaped in pieces
        if node[0] == "text" and merged and merged[-1][0] == "text":
            merged[-1] = ("text", merged[-1][1] + node[1])
        else:
            merged.append(node)
    return merged


def _parse_blocks(text: str) -> list[_Node]:
    """One node list for the whole text: lines flattened (headings bold, list items bulleted, quotes
    and tables unwrapped, fenced code as code), ``break`` between lines and ``paragraph`` for blank lines."""
    nodes: list[_Node] = []
    fence = ""
    pending_break: _Node | None = None
    for raw_line in _LINE_BREAKS.split(text):
        line = _CONTROL.sub(" ", raw_line).strip()
        if fence:
            if line.startswith(fence[0] * len(fence)) and not line.strip(fence[0]):
                fence = ""
                continue
            line_nodes: list[_Node] = [("code", line)] if line else []
        elif (opening := _FENCE_LINE.match(line)) and not (opening.group(1)[0] == "`" and "`" in line[opening.end():]):
            fence = opening.group(1)
            continue
        elif not line:
            if nodes:
                pending_break = ("paragraph",)
            continue
        elif _TABLE_RULE.fullmatch(line):
            continue
        else:
            line = _QUOTE_MARKERS.sub("", line, count=1) if line.startswith(">") else line
            if (heading := _HEADING.match(line)) is not None:
                title = _parse_inline(heading.group(1) or "")
                line_nodes = [("strong", title)] if title else []  # an empty heading is no line
            elif (bullet := _BULLET.match(line)) is not None:
                line_nodes = [("raw", "• ")] + _parse_inline(bullet.group(1))
            else:
                line_nodes = _parse_inline(line)
        if not line_nodes:
            continue
        if nodes:
            nodes.append(pending_break or ("break",))
        pending_break = None
        nodes += line_nodes
    return nodes


def _escape_scheme(match: re.Match[str]) -> str:
    return match.group() if match.group(1).lower() in LINK_SCHEMES else match.group(1) + "\\:"


def _escape_text(text: str) -> str:
    text = _ESCAPED.sub(r"\\\1", text)
    text = _SCHEME_COLON.sub(_escape_scheme, text)
    return _TILDE.sub("~" + _WORD_JOINER, _defuse_mentions(text))


class _Budget:
    def __init__(self, limit: int | None) -> None:
        self.left = limit
        self.cut = False

    def take(self, text: str) -> str:
        if self.left is None:
            return text
        if len(text) > self.left:
            # Cut at the limit, never after a space: "**bold **" would no longer be bold.
            text, self.cut = text[: self.left].rstrip(), True
        self.left -= len(text)
        return text


# A closing strikethrough mark touching what follows reads, to anything that does not pair the marks
# (a conservative scanner, a plain-text preview), as '~' and a channel name: "~~\\*~~\\_" is "~_".
_TOUCHES_TILDE = re.compile(r"\\?[A-Za-z0-9_.\-]")


def _emit(nodes: list[_Node], budget: _Budget, one_line: bool) -> str:
    out: list[str] = []
    for node in nodes:
        if budget.cut:
            break
        if out and out[-1].endswith("~"):
            # Whatever follows a strikethrough mark is kept apart from its '~' by a word joiner.
            piece = _emit([node], budget, one_line)
            out.append(_WORD_JOINER + piece if _TOUCHES_TILDE.match(piece) else piece)
            continue
        kind = node[0]
        if kind == "text":
            out.append(_escape_text(budget.take(node[1])))
        elif kind == "raw":
            out.append(budget.take(node[1]))
        elif kind == "code":
            body = budget.take(node[1])
            if body:
                out.append(inline_code(_defuse_mentions(body)))
        elif kind in ("break", "paragraph"):
            if one_line:
                out.append(budget.take(" "))
            else:
                out.append("\n\n" if kind == "paragraph" else "\n")
        else:
            inner = _emit(node[1], budget, one_line)
            if kind != "link":  # a span ending in a space (left by a cut) would not close: its marks would be text
                inner = inner.rstrip()
            if not inner:
                continue
            if kind == "link":
                out.append(f"[{inner}]({node[2]})")
            else:
                mark = {"strong": "**", "em": "*", "strike": "~~"}[kind]
                out.append(f"{mark}{inner}{mark}")
    return "".join(out)


def _safe_line_start(line: str) -> str:
    """A line must not start a block: a list item, a setext underline or a thematic break (nor an
    indented one: the spaces a line would start with are dropped)."""
    line = line.lstrip(" ")
    if line[:1] in ("-", "+", "="):
        return "\\" + line
    if ordered := _ORDERED_START.match(line):
        return f"{ordered.group(1)}\\{ordered.group(2)}{line[ordered.end():]}"
    return line


@functools.lru_cache(maxsize=4096)
def limited_markdown(text: str, *, one_line: bool = False, limit: int | None = None) -> str:
    """``text`` (a step title or description) as the guide's limited markdown, safe to show anywhere.

    Bold, italics, inline code, strikethrough and links to http, https and mailto addresses render;
    no ``@all``, ``@channel``, ``@here``, ``@user`` or ``~channel`` is live; headings become bold
    text, list items bullets, quotes, tables, images, HTML and every other markdown character plain
    text. Links with other schemes (``javascript:``, ``data:``, relative ones) are text. With
    ``one_line`` the result has no line break (lines are joined with spaces), so it cannot leave
    the line or attachment field it is put in; otherwise lines and paragraphs are kept, and no line
    starts a block. At most ``limit`` visible characters are shown; a cut is marked with '…'.
    """
    nodes = _parse_blocks(text[:_SOURCE_MAX])
    budget = _Budget(limit)
    rendered = _emit(nodes, budget, one_line)
    if budget.cut and limit is not None:  # again, leaving room for the mark
        budget = _Budget(max(0, limit - 1))
        rendered = _emit(nodes, budget, one_line)
    if budget.cut or len(text) > _SOURCE_MAX:
        # The cut may leave a scheme's colon last, where a space had kept it from being escaped.
        rendered = _SCHEME_AT_END.sub(_escape_scheme, rendered.rstrip()) + "…"
    return "\n".join(_safe_line_start(line) for line in rendered.split("\n"))
