"""Services and plugins never read a Mattermost dict: what the client and the event stream give them
are gateway.models objects, read by attribute.

The scan (ast) fails on a subscript ``x["field"]`` or ``x.get("field")`` reading one of Mattermost's
field names, wherever it is in services/ or plugins/. Writing is not reading: dict literals the bot
builds (buttons, attachments, dialog elements — the ui slice's) and assignments ``x["field"] = ...``
are not flagged.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("services", "plugins")

#: Mattermost's own field names (server/public/model: User, Channel, Post, Team, members, Reaction, FileInfo).
MATTERMOST_FIELDS = frozenset({
    "id", "user_id", "channel_id", "message", "props", "roles", "is_pinned", "create_at", "update_at",
    "delete_at", "type", "name", "display_name", "username", "team_id", "post_id", "emoji_name", "root_id",
    "creator_id", "is_bot", "file_ids", "file_infos", "order", "posts", "metadata", "extension", "size",
    "PostEditTimeLimit",
})

#: Receivers that hold the bot's own dicts, never Mattermost's (justified one by one):
#: ``card``/``rendered`` — the card gateway.cards draws ({"message", "props"}) for the bot to post;
#: ``submission`` — a dialog's values, keyed by the element names the bot itself chose;
#: ``details`` — a timeline event's details, written by the domain operations (domain/_ops.py ``event``).
OWN_DICTS = frozenset({"card", "rendered", "submission", "details"})


def _receiver(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def mattermost_reads(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        key: object = None
        receiver: ast.expr | None = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if isinstance(node.slice, ast.Constant):
                key, receiver = node.slice.value, node.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and node.args and isinstance(node.args[0], ast.Constant)):
            key, receiver = node.args[0].value, node.func.value
        if (isinstance(key, str) and key in MATTERMOST_FIELDS and receiver is not None
                and _receiver(receiver) not in OWN_DICTS):
            found.append((getattr(node, "lineno", 0), f"{ast.unparse(node)}"))
    return found


def test_services_and_plugins_read_no_mattermost_field_from_a_dict():
    offences = []
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, text in mattermost_reads(ast.parse(path.read_text(encoding="utf-8"))):
                offences.append(f"{path.relative_to(ROOT)}:{line}: {text}")
    assert offences == [], "read these through gateway.models instead:\n" + "\n".join(offences)


def test_the_scan_finds_reads_and_leaves_writing_alone():
    source = '''
post = await client.get_post(i)
a = post["id"]
b = channel.get("team_id", "")
c = self.ctx.user["username"]
button = {"id": "x", "name": "Start", "type": "button"}
errors["name"] = "Type a name."
d = card["props"]
e = form.submission.get("name")
f = view["text"]
'''
    lines = [line for line, _ in mattermost_reads(ast.parse(source))]
    assert lines == [3, 4, 5]
