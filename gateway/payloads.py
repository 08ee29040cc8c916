"""What every button and dialog carries, as one typed model each (like aiogram's ``CallbackData``).

A button's ``integration.context`` and a dialog's ``state`` hold one of these models, signed by the
bot (gateway/signing.py signs the model's canonical dump, bound to its action or dialog id). Each
model names the one :class:`~gateway.ids.Action` or :class:`~gateway.ids.Dialog` it belongs to::

    class CheckStep(StepButton, action=Action.CHECK): ...

and a handler declares the model it takes as its second parameter; the registry
(gateway/routing.py) hands it the parsed, verified model::

    @on_action(Action.CHECK)
    async def on_check_clicked(self, callback: ActionCallback, step: CheckStep) -> ActionReply: ...

A payload that does not parse as its model is refused like a bad signature (never a 500).
Field names are readable; the card's size is checked in tests/gateway/test_ui_payloads.py.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from gateway.ids import Action, Dialog

#: A Mattermost or Command Center id (26 characters; a little room for tests' and older ids).
Id = Annotated[str, Field(min_length=1, max_length=64)]
#: An id or "" for none.
OptionalId = Annotated[str, Field(max_length=64)]
#: A state mark (domain/freshness.py).
Mark = Annotated[str, Field(max_length=200)]


_P = TypeVar("_P", bound="Payload")


class PayloadError(ValueError):
    """A verified payload does not have its model's shape."""


class Payload(BaseModel):
    """A signed payload: nothing else accepted (``extra="forbid"``), never changed once made."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=2_000)

    def dump(self) -> dict[str, Any]:
        """The JSON-able form that is signed and put in the context or state (defaults left out:
        a card has many buttons)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    @classmethod
    def parse(cls, raw: object) -> Any:
        """The model from its dump; :class:`PayloadError` when it does not fit."""
        try:
            return cls.model_validate(raw)
        except PydanticValidationError:
            raise PayloadError(f"the payload is not a {cls.__name__}") from None


class ActionPayload(Payload):
    """What one button carries; ``action`` is the id it is signed with."""

    action: ClassVar[Action]

    def __init_subclass__(cls, action: Action | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if action is not None:
            cls.action = action


class DialogPayload(Payload):
    """What one dialog's state carries; ``dialog`` is its callback id."""

    dialog: ClassVar[Dialog]

    def __init_subclass__(cls, dialog: Dialog | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if dialog is not None:
            cls.dialog = dialog


# Buttons ------------------------------------------------------------------------------------

class ShowHelp(ActionPayload, action=Action.SHOW_HELP):
    """A button that only shows help (tests, and a card's help link)."""


class IncidentButton(ActionPayload):
    incident_id: Id


class StepButton(IncidentButton):
    step_id: Id
    #: The button is in a private stage view (an ephemeral post, which a click cannot update).
    from_view: bool = False


class MarkedStepButton(StepButton):
    #: The state of the step the button was drawn for (domain/freshness.py).
    mark: Mark


class CheckStep(MarkedStepButton, action=Action.CHECK):
    pass


class UncheckStep(MarkedStepButton, action=Action.UNCHECK):
    pass


class RunStep(MarkedStepButton, action=Action.RUN):
    pass


class AssignStep(StepButton, action=Action.ASSIGN):
    pass


class StepDetails(StepButton, action=Action.STEP_DETAILS):
    pass


class MarkedIncidentButton(IncidentButton):
    #: The state (stage or status) the button was drawn for (domain/freshness.py).
    mark: Mark


class PreviousStage(MarkedIncidentButton, action=Action.PREV_STAGE):
    pass


class NextStage(MarkedIncidentButton, action=Action.NEXT_STAGE):
    pass


class EndIncident(MarkedIncidentButton, action=Action.END):
    pass


class RestartIncident(MarkedIncidentButton, action=Action.RESTART):
    pass


class ChangeCommander(IncidentButton, action=Action.COMMANDER):
    pass


class ViewStage(IncidentButton, action=Action.VIEW_STAGE):
    stage: int = Field(ge=0)


class SetStage(IncidentButton, action=Action.SET_STAGE):
    stage: int = Field(ge=0)


class StartIncident(ActionPayload, action=Action.START):
    team_id: Id
    #: The post to quote in the new channel ("" for none).
    post_id: OptionalId = ""


class StartFromPost(StartIncident, action=Action.START_FROM_POST):
    pass


class StartFromAlert(ActionPayload, action=Action.START_FROM_ALERT):
    """A suggestion post's Start incident button: opens the start dialog filled from the alert group."""

    team_id: Id
    group_id: Id


class CreatePlaybook(ActionPayload, action=Action.PLAYBOOK_CREATE):
    team_id: Id
    template: str = Field("", max_length=64)


class PlaybookButton(ActionPayload):
    team_id: Id
    playbook_id: Id


class EditPlaybook(PlaybookButton, action=Action.PLAYBOOK_EDIT):
    pass


class DeletePlaybook(PlaybookButton, action=Action.PLAYBOOK_DELETE):
    pass


class ExportPlaybook(PlaybookButton, action=Action.PLAYBOOK_EXPORT):
    pass


class ListPage(ActionPayload, action=Action.LIST_PAGE):
    """A page of ``list``: its filters, the page (from 0), whose list it is, and where it was shown."""

    team_id: Id
    status: str = Field("", max_length=16)
    commander_id: OptionalId = ""
    playbook_id: OptionalId = ""
    search: str = Field("", max_length=500)
    page: int = Field(ge=0)
    owner_id: Id
    #: The list is an ephemeral reply, whose buttons cannot update it.
    on_ephemeral: bool = False
    #: Only overdue incidents (``list overdue``).
    overdue: bool = False
    #: Only incidents with these field values (``list severity=SEV1 field:customer=ACME``), by field id.
    field_values: dict[str, str] = Field(default_factory=dict, max_length=5)


class PostUpdate(IncidentButton, action=Action.POST_UPDATE):
    """Opens the status update dialog (card, reminder)."""


class SnoozeReminder(IncidentButton, action=Action.SNOOZE_REMINDER):
    """Snoozes the due update reminder by 15 minutes (the commander only)."""

    #: The due time the reminder was sent for (epoch ms): a later reminder is not snoozed by an old button.
    due_at: int = Field(ge=0)


class RequestUpdate(IncidentButton, action=Action.REQUEST_UPDATE):
    pass


class FollowIncident(IncidentButton, action=Action.FOLLOW):
    pass


class UnfollowIncident(IncidentButton, action=Action.UNFOLLOW):
    pass


class PlaybookSettings(PlaybookButton, action=Action.PLAYBOOK_SETTINGS):
    """Opens the playbook's settings dialog (updates, broadcast, start settings)."""


# Dialogs ------------------------------------------------------------------------------------

class Blank(DialogPayload, dialog=Dialog.NONE):
    """A dialog that carries nothing (tests)."""


class StartDialog(DialogPayload, dialog=Dialog.START):
    team_id: Id
    post_id: OptionalId = ""


class CommanderDialog(DialogPayload, dialog=Dialog.COMMANDER):
    incident_id: Id


class AssignDialog(DialogPayload, dialog=Dialog.ASSIGN):
    incident_id: Id
    step_id: Id


class EndDialog(DialogPayload, dialog=Dialog.END):
    incident_id: Id
    #: The status the confirmation was asked in (domain/freshness.py).
    mark: Mark


class RestartDialog(DialogPayload, dialog=Dialog.RESTART):
    incident_id: Id
    mark: Mark


class CreatePlaybookDialog(DialogPayload, dialog=Dialog.PLAYBOOK_CREATE):
    team_id: Id


class EditPlaybookDialog(DialogPayload, dialog=Dialog.PLAYBOOK_EDIT):
    team_id: Id
    playbook_id: Id
    #: The playbook's version the dialog was filled from: a save over a newer one is refused.
    version: int = Field(ge=0)


class DeletePlaybookDialog(DialogPayload, dialog=Dialog.PLAYBOOK_DELETE):
    team_id: Id
    playbook_id: Id
    version: int = Field(ge=0)


class ImportPlaybookDialog(DialogPayload, dialog=Dialog.PLAYBOOK_IMPORT):
    team_id: Id


def action_models() -> dict[str, type[ActionPayload]]:
    """Every button model by its action id."""
    return {model.action.value: model for model in _subclasses(ActionPayload) if "action" in vars(model)}


def dialog_models() -> dict[str, type[DialogPayload]]:
    """Every dialog model by its callback id."""
    return {model.dialog.value: model for model in _subclasses(DialogPayload) if "dialog" in vars(model)}


def _subclasses(base: type[_P]) -> list[type[_P]]:
    found: list[type[_P]] = []
    todo = list(base.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return found


class UpdateDialog(DialogPayload, dialog=Dialog.UPDATE):
    """The status update dialog; ``final`` when it is the update that ends the incident."""

    incident_id: Id
    final: bool = False


class PlaybookSettingsDialog(DialogPayload, dialog=Dialog.PLAYBOOK_SETTINGS):
    team_id: Id
    playbook_id: Id
    #: The playbook's version the dialog was filled from: a save over a newer one is refused.
    version: int = Field(0, ge=0)


# Severity, custom fields and the retrospective (issue 18) ------------------------------------

class SetSeverity(IncidentButton, action=Action.SET_SEVERITY):
    """The card's severity menu: the level chosen comes back as the callback's ``selected_option``."""


class EditFields(IncidentButton, action=Action.EDIT_FIELDS):
    """Opens the Fields dialog (the card)."""


class WriteRetro(IncidentButton, action=Action.WRITE_RETRO):
    """Opens the retrospective dialog (the reminder, the ended card)."""


class SkipRetro(IncidentButton, action=Action.SKIP_RETRO):
    """Records "no retrospective" (the reminder)."""


class FieldsDialog(DialogPayload, dialog=Dialog.FIELDS):
    incident_id: Id
    #: Field id → digest of the value the form was prefilled with: a submission applies only the
    #: fields the submitter changed, never undoing what someone else set while the form was open.
    shown: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=32)]] = {}


class RetroDialog(DialogPayload, dialog=Dialog.RETRO):
    incident_id: Id
