"""Builders for what the bot shows: message attachments with buttons and menus, and dialogs.

Small typed objects whose ``to_json()`` is exactly what Mattermost accepts; plugins and services
build these, never the dicts. Limits are the server's (``model/integration_action.go``:
``PostAction.IsValid``, ``Dialog.IsValid``, ``DialogElement.IsValid``, which count bytes) and the web
client's; a builder refuses what the server would refuse with :class:`UIError`, naming the field, so
a mistake shows in a unit test instead of as a dialog that does not open.

Text the bot may cut (an option's label, a default value) is cut by the caller on purpose; a
builder never cuts silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from gateway.payloads import ActionPayload
from gateway.signing import Signer

# model/integration_action.go
DIALOG_TITLE_MAX = 24
ELEMENT_DISPLAY_NAME_MAX = 24
ELEMENT_NAME_MAX = 300
ELEMENT_HELP_TEXT_MAX = 150
TEXT_MAX = 150  # a text element's default and placeholder
TEXTAREA_MAX = 3000  # a textarea's default and placeholder
SELECT_MAX = 3000  # a select's default and placeholder
BOOL_PLACEHOLDER_MAX = 150
#: The webapp's widest text input (a text element's max_length is capped to it by the client).
TEXT_INPUT_MAX = 150
#: Options of a menu or select: the webapp lists them all; more than this is unusable (and a post's props are bounded).
OPTIONS_MAX = 500
STYLES = ("default", "primary", "success", "good", "warning", "danger")
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
_ACTION_ID = re.compile(r"^[A-Za-z0-9]+$")  # Mattermost drops other characters from action ids

Style = Literal["default", "primary", "success", "good", "warning", "danger"]


class UIError(ValueError):
    """Something Mattermost would refuse; ``field`` names what."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def _bytes(text: str) -> int:
    return len(text.encode())


def _check_max(field_name: str, text: str, limit: int) -> None:
    if _bytes(text) > limit:
        raise UIError(field_name, f"longer than {limit} bytes ({_bytes(text)})")


def _check_required(field_name: str, text: str, limit: int) -> None:
    if not text:
        raise UIError(field_name, "cannot be empty")
    _check_max(field_name, text, limit)


# Posts -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    """One choice of a menu, select or radio: what is shown and the value sent back."""

    text: str
    value: str

    def __post_init__(self) -> None:
        if not self.text:
            raise UIError("option.text", "cannot be empty")
        if not self.value:
            raise UIError("option.value", "cannot be empty")

    @classmethod
    def shortened(cls, text: str, value: str, limit: int = 150) -> Option:
        """An option whose label is folded to one line and cut to ``limit`` characters (with '…')."""
        text = " ".join(text.split())
        return cls(text if len(text) <= limit else text[: limit - 1] + "…", value)

    def to_json(self) -> dict[str, str]:
        return {"text": self.text, "value": self.value}


def _check_options(field_name: str, options: Sequence[Option]) -> None:
    if len(options) > OPTIONS_MAX:
        raise UIError(field_name, f"more than {OPTIONS_MAX} options ({len(options)})")
    values = [option.value for option in options]
    if len(set(values)) != len(values):
        raise UIError(field_name, "two options have the same value")


@dataclass(frozen=True)
class Button:
    """A button whose click sends ``payload`` (signed by the bot, bound to ``channel_id``) to ``url``."""

    id: str
    name: str
    payload: ActionPayload
    style: str = "default"

    def __post_init__(self) -> None:
        if not _ACTION_ID.match(self.id):
            raise UIError("button.id", f"must be letters and digits only, got {self.id!r}")
        if not self.name:  # the server's one rule for a label
            raise UIError("button.name", "cannot be empty")
        if self.style not in STYLES and not _HEX_COLOR.match(self.style):
            raise UIError("button.style", f"must be one of {', '.join(STYLES)} or a hex color, got {self.style!r}")

    def to_json(self, signer: Signer, url: str, channel_id: str) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "type": "button", "style": self.style,
                "integration": {"url": url, "context": signer.action_context(self.payload, channel_id)}}


@dataclass(frozen=True)
class Menu:
    """A menu on a post: static ``options``, or ``data_source`` "users"/"channels"; the choice comes
    back as the callback's ``selected_option``."""

    id: str
    name: str
    payload: ActionPayload
    options: tuple[Option, ...] = ()
    data_source: Literal["", "users", "channels"] = ""
    default: str = ""

    def __post_init__(self) -> None:
        if not _ACTION_ID.match(self.id):
            raise UIError("menu.id", f"must be letters and digits only, got {self.id!r}")
        if not self.name:
            raise UIError("menu.name", "cannot be empty")
        if self.data_source and self.options:
            raise UIError("menu.options", "a menu has options or a data source, not both")
        if not self.data_source and not self.options:
            raise UIError("menu.options", "a menu needs options or a data source")
        _check_options("menu.options", self.options)
        if self.default and self.options and self.default not in {o.value for o in self.options}:
            raise UIError("menu.default", f"{self.default!r} is not one of the options")

    def to_json(self, signer: Signer, url: str, channel_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "name": self.name, "type": "select",
                                "integration": {"url": url, "context": signer.action_context(self.payload,
                                                                                             channel_id)}}
        if self.data_source:
            body["data_source"] = self.data_source
        else:
            body["options"] = [option.to_json() for option in self.options]
        if self.default:
            body["default_option"] = self.default
        return body


@dataclass(frozen=True)
class Field:
    """A title/value pair of an attachment (``short``: two to a row)."""

    title: str
    value: str
    short: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "value": self.value, "short": self.short}


@dataclass(frozen=True)
class Attachment:
    """A message attachment (the interactive-message format every client shows)."""

    fallback: str
    text: str = ""
    title: str = ""
    color: str = ""
    fields: tuple[Field, ...] = ()
    actions: tuple[Button | Menu, ...] = ()
    #: Makes the title a link. Mattermost refuses one without a title or that is not an http(s) URL
    #: (model/slack_attachment.go ``SlackAttachment.IsValid``).
    title_link: str = ""

    def __post_init__(self) -> None:
        if self.title_link and (not self.title or not self.title_link.startswith(("http://", "https://"))):
            raise UIError("attachment.title_link", "needs a title and an http(s) URL")
        if self.color and not _HEX_COLOR.match(self.color) and self.color not in ("good", "warning", "danger"):
            raise UIError("attachment.color", f"must be a hex color, got {self.color!r}")
        ids = [action.id for action in self.actions]
        if len(set(ids)) != len(ids):
            raise UIError("attachment.actions", "two actions have the same id")

    def to_json(self, signer: Signer, url: str, channel_id: str) -> dict[str, Any]:
        """``channel_id``: the channel of the post (every button's context is bound to it)."""
        body: dict[str, Any] = {"fallback": self.fallback}
        if self.color:
            body["color"] = self.color
        if self.title:
            body["title"] = self.title
        if self.title_link:
            body["title_link"] = self.title_link
        if self.text:
            body["text"] = self.text
        if self.fields:
            body["fields"] = [f.to_json() for f in self.fields]
        if self.actions:
            body["actions"] = [action.to_json(signer, url, channel_id) for action in self.actions]
        return body


@dataclass(frozen=True)
class Signing:
    """Where a post's buttons call back and who signs them: what turns attachments into JSON."""

    signer: Signer
    url: str

    def attachments(self, attachments: Sequence[Attachment], channel_id: str) -> list[dict[str, Any]]:
        return [attachment.to_json(self.signer, self.url, channel_id) for attachment in attachments]


# Dialogs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Element:
    name: str
    display_name: str
    help_text: str = ""
    optional: bool = False

    def _check(self) -> None:
        _check_required("element.name", self.name, ELEMENT_NAME_MAX)
        _check_required(f"{self.name}.display_name", self.display_name, ELEMENT_DISPLAY_NAME_MAX)
        _check_max(f"{self.name}.help_text", self.help_text, ELEMENT_HELP_TEXT_MAX)

    def _base(self, kind: str) -> dict[str, Any]:
        body: dict[str, Any] = {"display_name": self.display_name, "name": self.name, "type": kind,
                                "optional": self.optional}
        if self.help_text:
            body["help_text"] = self.help_text
        return body


@dataclass(frozen=True)
class Text(_Element):
    """A one-line text input (``subtype`` email, number, tel, url, password, or plain)."""

    default: str = ""
    placeholder: str = ""
    min_length: int = 0
    max_length: int = TEXT_INPUT_MAX
    subtype: Literal["", "text", "email", "number", "tel", "url", "password"] = ""
    kind = "text"
    limit = TEXT_MAX

    def __post_init__(self) -> None:
        self._check()
        _check_max(f"{self.name}.default", self.default, self.limit)
        _check_max(f"{self.name}.placeholder", self.placeholder, self.limit)
        if self.min_length < 0 or self.min_length > self.max_length:
            raise UIError(f"{self.name}.min_length", f"must be from 0 to max_length, got {self.min_length}")
        if len(self.default) > self.max_length:
            raise UIError(f"{self.name}.default", f"longer than its max_length {self.max_length}")

    def to_json(self) -> dict[str, Any]:
        body = self._base(self.kind)
        body["max_length"] = self.max_length
        if self.min_length:
            body["min_length"] = self.min_length
        if self.subtype:
            body["subtype"] = self.subtype
        if self.default:
            body["default"] = self.default
        if self.placeholder:
            body["placeholder"] = self.placeholder
        return body


@dataclass(frozen=True)
class TextArea(Text):
    """A multi-line text input."""

    max_length: int = TEXTAREA_MAX
    kind = "textarea"
    limit = TEXTAREA_MAX


@dataclass(frozen=True)
class Select(_Element):
    """A dropdown: static ``options``, or ``data_source`` "users"/"channels" (Mattermost lists them)."""

    options: tuple[Option, ...] = ()
    data_source: Literal["", "users", "channels"] = ""
    default: str = ""
    placeholder: str = ""

    def __post_init__(self) -> None:
        self._check()
        _check_max(f"{self.name}.default", self.default, SELECT_MAX)
        _check_max(f"{self.name}.placeholder", self.placeholder, SELECT_MAX)
        if self.data_source and self.options:
            raise UIError(f"{self.name}.options", "a select has options or a data source, not both")
        _check_options(f"{self.name}.options", self.options)
        if not self.data_source and self.default and self.default not in {o.value for o in self.options}:
            raise UIError(f"{self.name}.default", f"{self.default!r} is not one of the options")

    def to_json(self) -> dict[str, Any]:
        body = self._base("select")
        if self.data_source:
            body["data_source"] = self.data_source
        else:
            body["options"] = [option.to_json() for option in self.options]
        if self.default:
            body["default"] = self.default
        if self.placeholder:
            body["placeholder"] = self.placeholder
        return body


@dataclass(frozen=True)
class Radio(_Element):
    """Radio buttons: one of ``options``."""

    options: tuple[Option, ...] = ()
    default: str = ""

    def __post_init__(self) -> None:
        self._check()
        if not self.options:
            raise UIError(f"{self.name}.options", "radio buttons need options")
        _check_options(f"{self.name}.options", self.options)
        if self.default and self.default not in {o.value for o in self.options}:
            raise UIError(f"{self.name}.default", f"{self.default!r} is not one of the options")

    def to_json(self) -> dict[str, Any]:
        body = self._base("radio")
        body["options"] = [option.to_json() for option in self.options]
        if self.default:
            body["default"] = self.default
        return body


@dataclass(frozen=True)
class Bool(_Element):
    """A checkbox; ``placeholder`` is the text beside it."""

    default: bool = False
    placeholder: str = ""

    def __post_init__(self) -> None:
        self._check()
        _check_max(f"{self.name}.placeholder", self.placeholder, BOOL_PLACEHOLDER_MAX)

    def to_json(self) -> dict[str, Any]:
        body = self._base("bool")
        body["default"] = "true" if self.default else "false"
        if self.placeholder:
            body["placeholder"] = self.placeholder
        return body


Element = Text | TextArea | Select | Radio | Bool


@dataclass(frozen=True)
class DialogForm:
    """An interactive dialog: ``callback_id``, signed ``state`` (gateway/signing.py), its elements."""

    callback_id: str
    title: str
    state: str
    elements: tuple[Element, ...] = ()
    submit_label: str = "Submit"
    introduction: str = ""
    notify_on_cancel: bool = False

    def __post_init__(self) -> None:
        _check_required("dialog.title", self.title, DIALOG_TITLE_MAX)
        names = [element.name for element in self.elements]
        if len(set(names)) != len(names):
            raise UIError("dialog.elements", "two elements have the same name")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "callback_id": self.callback_id,
            "title": self.title,
            "elements": [element.to_json() for element in self.elements],
            "submit_label": self.submit_label,
            "notify_on_cancel": self.notify_on_cancel,
            "state": self.state,
        }
        if self.introduction:
            body["introduction_text"] = self.introduction
        return body


def fit_title(text: str, limit: int = DIALOG_TITLE_MAX) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes at a character boundary (a dialog title, a display name)."""
    encoded = text.encode()[:limit]
    return encoded.decode(errors="ignore")
