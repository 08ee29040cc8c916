"""gateway/ui.py: each builder's JSON is what Mattermost accepts, and what it would refuse is refused
here with the field named (limits from model/integration_action.go, counted in bytes as the server does)."""

from __future__ import annotations

import pytest

from gateway import dialogs, ui
from gateway.payloads import CheckStep, ListPage, ShowHelp
from gateway.signing import Signer

SIGNER = Signer("s" * 40)
URL = "http://bot/mattermost/action"
CHANNEL = "c" * 26
STEP = CheckStep(incident_id="i" * 26, step_id="s" * 26, mark="open@0")


def test_a_button_is_a_signed_integration_bound_to_its_channel():
    body = ui.Button("check1", "Check", STEP, "success").to_json(SIGNER, URL, CHANNEL)
    context = body.pop("integration")
    assert body == {"id": "check1", "name": "Check", "type": "button", "style": "success"}
    assert context["url"] == URL
    assert SIGNER.open_action_context(context["context"], CHANNEL) == ("check", STEP.dump())


@pytest.mark.parametrize(("make", "field"), [
    (lambda: ui.Button("check-1", "Check", STEP), "button.id"),      # Mattermost drops non-alphanumerics
    (lambda: ui.Button("check1", "", STEP), "button.name"),
    (lambda: ui.Button("check1", "Check", STEP, "loud"), "button.style"),
])
def test_a_button_mattermost_would_refuse_is_refused(make, field):
    with pytest.raises(ui.UIError) as error:
        make()
    assert error.value.field == field and field in str(error.value)


def test_a_hex_style_and_every_named_style_are_accepted():
    for style in (*ui.STYLES, "#abc", "#A0B1C2"):
        assert ui.Button("b", "B", ShowHelp(), style).style == style


def test_menus_have_static_options_or_a_data_source():
    options = (ui.Option("One", "1"), ui.Option("Two", "2"))
    body = ui.Menu("pick", "Pick", ShowHelp(), options=options, default="2").to_json(SIGNER, URL, CHANNEL)
    assert body["type"] == "select" and body["options"] == [{"text": "One", "value": "1"},
                                                            {"text": "Two", "value": "2"}]
    assert body["default_option"] == "2" and "data_source" not in body
    users = ui.Menu("who", "Who", ShowHelp(), data_source="users").to_json(SIGNER, URL, CHANNEL)
    assert users["data_source"] == "users" and "options" not in users
    for make in (lambda: ui.Menu("m", "M", ShowHelp()),                                       # neither
                 lambda: ui.Menu("m", "M", ShowHelp(), options=options, data_source="users"),  # both
                 lambda: ui.Menu("m", "M", ShowHelp(), options=options, default="3"),          # not an option
                 lambda: ui.Menu("m", "M", ShowHelp(), options=(ui.Option("A", "1"), ui.Option("B", "1")))):
        with pytest.raises(ui.UIError):
            make()


def test_too_many_options_and_empty_options_are_refused():
    with pytest.raises(ui.UIError, match="more than"):
        ui.Select("s", "S", options=tuple(ui.Option(f"o{n}", f"{n}") for n in range(ui.OPTIONS_MAX + 1)))
    with pytest.raises(ui.UIError, match=r"option\.text"):
        ui.Option("", "1")
    with pytest.raises(ui.UIError, match=r"option\.value"):
        ui.Option("One", "")
    assert ui.Option.shortened("a  very\nlong " + "x" * 200, "v").text.endswith("…")
    assert len(ui.Option.shortened("x" * 200, "v").text) == 150


def test_an_attachment_leaves_out_what_is_empty_and_signs_every_button():
    attachment = ui.Attachment(fallback="Stage 1", text="Triage", color="#a6a6a6",
                               fields=(ui.Field("Status", "Ongoing"),),
                               actions=(ui.Button("check1", "Check", STEP),
                                        ui.Button("page", "Next", ListPage(team_id="t" * 26, page=1,
                                                                            owner_id="u" * 26))))
    body = attachment.to_json(SIGNER, URL, CHANNEL)
    assert set(body) == {"fallback", "text", "color", "fields", "actions"}
    assert body["fields"] == [{"title": "Status", "value": "Ongoing", "short": True}]
    assert [a["id"] for a in body["actions"]] == ["check1", "page"]
    assert ui.Attachment(fallback="x").to_json(SIGNER, URL, CHANNEL) == {"fallback": "x"}
    with pytest.raises(ui.UIError, match="same id"):
        ui.Attachment(fallback="x", actions=(ui.Button("a", "A", STEP), ui.Button("a", "B", STEP)))
    with pytest.raises(ui.UIError, match=r"attachment\.color"):
        ui.Attachment(fallback="x", color="red")


def test_text_elements_and_their_limits():
    text = ui.Text("name", "Incident name", default="Checkout", placeholder="e.g. x", min_length=2, max_length=64,
                   help_text="2–64 characters")
    assert text.to_json() == {"display_name": "Incident name", "name": "name", "type": "text", "optional": False,
                              "help_text": "2–64 characters", "max_length": 64, "min_length": 2,
                              "default": "Checkout", "placeholder": "e.g. x"}
    area = ui.TextArea("yaml", "Playbook YAML", default="x" * 3000).to_json()
    assert area["type"] == "textarea" and area["max_length"] == 3000
    for make, field in [
        (lambda: ui.Text("n", "x" * 25), "n.display_name"),                    # DialogElementDisplayNameMaxLength
        (lambda: ui.Text("n", "é" * 13), "n.display_name"),                    # 26 bytes: the server counts bytes
        (lambda: ui.Text("", "Name"), "element.name"),
        (lambda: ui.Text("n" * 301, "Name"), "element.name"),                  # DialogElementNameMaxLength
        (lambda: ui.Text("n", "Name", help_text="h" * 151), "n.help_text"),
        (lambda: ui.Text("n", "Name", default="d" * 151), "n.default"),        # DialogElementTextMaxLength
        (lambda: ui.Text("n", "Name", placeholder="p" * 151), "n.placeholder"),
        (lambda: ui.TextArea("n", "Name", default="d" * 3001), "n.default"),   # DialogElementTextareaMaxLength
        (lambda: ui.Text("n", "Name", min_length=10, max_length=5), "n.min_length"),
        (lambda: ui.Text("n", "Name", default="toolong", max_length=3), "n.default"),
    ]:
        with pytest.raises(ui.UIError) as error:
            make()
        assert error.value.field == field


def test_select_radio_and_bool_elements():
    options = (ui.Option("Public", "public"), ui.Option("Private", "private"))
    select = ui.Select("channel", "Incident channels", options=options, default="private", optional=True)
    assert select.to_json() == {"display_name": "Incident channels", "name": "channel", "type": "select",
                                "optional": True, "options": [o.to_json() for o in options], "default": "private"}
    assert ui.Select("who", "Who", data_source="channels").to_json()["data_source"] == "channels"
    radio = ui.Radio("channel", "Channels", options=options, default="public").to_json()
    assert radio["type"] == "radio" and radio["default"] == "public" and len(radio["options"]) == 2
    assert ui.Bool("notify", "Notify", default=True, placeholder="Tell the channel").to_json() == {
        "display_name": "Notify", "name": "notify", "type": "bool", "optional": False, "default": "true",
        "placeholder": "Tell the channel"}
    for make in (lambda: ui.Select("s", "S", options=options, default="secret"),   # default must be an option
                 lambda: ui.Select("s", "S", options=options, data_source="users"),
                 lambda: ui.Radio("r", "R"),                                        # radio needs options
                 lambda: ui.Radio("r", "R", options=options, default="x"),
                 lambda: ui.Bool("b", "B", placeholder="p" * 151)):                 # DialogElementBoolMaxLength
        with pytest.raises(ui.UIError):
            make()


def test_a_dialog_form_and_its_limits():
    form = ui.DialogForm("start", "Start incident", "state", (ui.Text("name", "Name"),), submit_label="Start",
                         introduction="Hello")
    assert form.to_json() == {"callback_id": "start", "title": "Start incident", "state": "state",
                              "elements": [ui.Text("name", "Name").to_json()], "submit_label": "Start",
                              "notify_on_cancel": False, "introduction_text": "Hello"}
    assert "introduction_text" not in ui.DialogForm("x", "X", "s").to_json()
    with pytest.raises(ui.UIError, match=r"dialog\.title"):
        ui.DialogForm("x", "t" * 25, "s")                                           # DialogTitleMaxLength
    with pytest.raises(ui.UIError, match=r"dialog\.title"):
        ui.DialogForm("x", "", "s")
    with pytest.raises(ui.UIError, match="same name"):
        ui.DialogForm("x", "X", "s", (ui.Text("a", "A"), ui.Text("a", "B")))
    assert ui.fit_title("Assign step 10.12 ✅✅✅✅") == "Assign step 10.12 ✅✅"        # cut at a character, in bytes
    assert len(ui.fit_title("✅" * 20).encode()) <= ui.DIALOG_TITLE_MAX


def test_the_bots_own_helpers_cut_on_purpose_what_the_builders_would_refuse():
    text = dialogs.text("name", "Incident name", default="名" * 64, max_length=64)
    assert len(text.default.encode()) <= ui.TEXT_MAX and text.default == "名" * 50    # 150 bytes, whole characters
    select = dialogs.select("commander", "New commander", [("@alice", "a" * 26)], default="gone" * 6)
    assert select.default == ""                                                     # a default not among the options
    assert dialogs.select("c", "C", [("@alice", "a" * 26)], default="a" * 26).default == "a" * 26
