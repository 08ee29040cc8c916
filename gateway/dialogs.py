"""Interactive dialog definitions (protocol.md §3): limits of the web client respected here."""

from __future__ import annotations

from typing import Any

from domain import limits

TITLE_MAX = 24
OPTION_TEXT_MAX = 150


def _option(text: str, value: str) -> dict[str, str]:
    text = " ".join(text.split())
    return {"text": text if len(text) <= OPTION_TEXT_MAX else text[: OPTION_TEXT_MAX - 1] + "…", "value": value}


def dialog(callback_id: str, title: str, state: str, elements: list[dict[str, Any]], *,
           submit_label: str = "Submit", introduction: str = "", notify_on_cancel: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "callback_id": callback_id,
        "title": title[:TITLE_MAX],
        "elements": elements,
        "submit_label": submit_label,
        "notify_on_cancel": notify_on_cancel,
        "state": state,
    }
    if introduction:
        body["introduction_text"] = introduction
    return body


def select(name: str, display_name: str, options: list[tuple[str, str]], *, default: str | None = None,
           help_text: str = "", optional: bool = False) -> dict[str, Any]:
    element: dict[str, Any] = {"display_name": display_name, "name": name, "type": "select",
                               "options": [_option(text, value) for text, value in options], "optional": optional}
    if default is not None:
        element["default"] = default
    if help_text:
        element["help_text"] = help_text[:150]
    return element


def text(name: str, display_name: str, *, default: str = "", placeholder: str = "", help_text: str = "",
         optional: bool = False, min_length: int = 0, max_length: int = 150, textarea: bool = False) -> dict[str, Any]:
    element: dict[str, Any] = {"display_name": display_name, "name": name,
                               "type": "textarea" if textarea else "text", "optional": optional,
                               "max_length": max_length}
    if min_length:
        element["min_length"] = min_length
    if default:
        element["default"] = default[:max_length]
    if placeholder:
        element["placeholder"] = placeholder[:150]
    if help_text:
        element["help_text"] = help_text[:150]
    return element


def start_incident_elements(playbooks: list[tuple[str, str]], name: str) -> list[dict[str, Any]]:
    """Playbook (sorted by title), name (2–64), optional description."""
    return [
        select("playbook", "Playbook", playbooks, default=playbooks[0][1] if len(playbooks) == 1 else None,
               help_text="The checklist this incident follows."),
        text("name", "Incident name", default=name, placeholder="e.g. Checkout errors in EU",
             min_length=limits.INCIDENT_NAME_MIN, max_length=limits.INCIDENT_NAME_MAX,
             help_text=f"{limits.INCIDENT_NAME_MIN}–{limits.INCIDENT_NAME_MAX} characters; also the channel name."),
        text("description", "Description", optional=True, textarea=True, max_length=limits.INCIDENT_DESCRIPTION_MAX,
             placeholder="What is happening? Who is affected?"),
    ]
