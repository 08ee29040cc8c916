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
    ("check S.N", "Mark a step done (N alone means a step of the active stage)", "check 1.2"),
    ("uncheck S.N", "Mark a step open again", "uncheck 1.2"),
    ("assign S.N @user|none", "Set or clear a step's assignee", "assign 2.1 @carol"),
    ("run S.N", "Run the step's slash command in the incident channel", "run 1.3"),
    ("step add [S] <title> / remove S.N / rename S.N <title> / move S.N <position>",
     "Edit this incident's own checklist", "step add 2 Page the database on-call"),
    ("info [incident]", "Details: commander, playbook, duration, people, stages, timeline", "info"),
    ("list [ongoing|ended|all] [@commander] [--playbook NAME] [--search TEXT] [--page N]",
     "Incidents you can see in this team, newest first", "list ongoing @alice"),
    ("export [incident]", "CSV of the incident channel, sent to you by direct message", "export"),
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
        lines.append(f"`{escape_code(unknown)}` is not a Command Center command. Here is what you can type:")
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


_MENTION_LIKE = re.compile(r"@(?=[A-Za-z0-9_.-])")


def neutralize(text: str) -> str:
    """Make user-supplied text safe to show inline: no @mentions fire, no markdown breaks out.

    A zero-width joiner after '@' keeps ``@all``/``@channel`` readable without notifying anyone.
    """
    text = text.replace("\r", " ").replace("\n", " ")
    text = _MENTION_LIKE.sub("@\u2060", text)
    return re.sub(r"([\\`*_{}\[\]()#+!|<>~])", r"\\\1", text)


def escape_code(text: str) -> str:
    """Text to show inside an inline code span."""
    return text.replace("`", "'").replace("\n", " ")[:200]


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
