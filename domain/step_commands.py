"""What a step's slash command is, read the way Mattermost reads it, and which ones are refused.

Mattermost (app/command.go ``ExecuteCommand``) splits a command at its first whitespace
character into the trigger and the rest, and lower-cases the trigger; this module does the same,
so that the bot and the server always agree on which command a step names.

A step's command may not run steps (``/<trigger> run ...``): a step whose command runs itself,
or two that run each other, would run forever. That is refused when a playbook is saved and again
when a step is run (playbooks and incidents stored before the rule may still hold one).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .errors import ValidationError

#: The Command Center subcommand that runs a step; never allowed inside a step's command.
RUN_SUBCOMMAND = "run"


@dataclass(frozen=True)
class ParsedCommand:
    """A slash command as Mattermost splits it: ``/trigger rest``; ``trigger`` lower-cased, no slash."""

    trigger: str
    text: str

    @property
    def subcommand(self) -> str:
        words = self.text.split()
        return words[0].lower() if words else ""


def parse(command: str) -> ParsedCommand:
    """Split ``/trigger rest`` at the first whitespace character, as the server does."""
    body = command[1:] if command.startswith("/") else command
    for index, character in enumerate(body):
        if character.isspace():
            return ParsedCommand(body[:index].lower(), body[index + 1:])
    return ParsedCommand(body.lower(), "")


def is_own(command: str, trigger: str) -> bool:
    """Whether ``command`` is one of Command Center's own (``/<trigger> ...``)."""
    return command.startswith("/") and parse(command).trigger == trigger.lower()


def runs_a_step(command: str, trigger: str) -> bool:
    """Whether ``command`` is ``/<trigger> run ...`` (in any letter case)."""
    return is_own(command, trigger) and parse(command).subcommand == RUN_SUBCOMMAND


def step_run_refusal(trigger: str) -> str:
    """Why a step's command may not run a step, and what to do instead (a sentence's tail)."""
    return (f"a step's command cannot run a step (/{trigger} {RUN_SUBCOMMAND} …): a step that runs steps "
            "could run itself over and over. Give the step the command the other step has, or run that step "
            f"yourself with /{trigger} {RUN_SUBCOMMAND} S.N.")


class _Step(Protocol):
    @property
    def command(self) -> str: ...


class _Stage(Protocol):
    @property
    def steps(self) -> Iterable[_Step]: ...


def check_stages(stages: Iterable[_Stage], trigger: str) -> None:
    """Refuse stages in which any step's command runs a step; the error names stage and step."""
    for s, stage in enumerate(stages, start=1):
        for n, step in enumerate(stage.steps, start=1):
            if runs_a_step(step.command, trigger):
                raise ValidationError(f"Stage {s}, step {n}: {step_run_refusal(trigger)}", field="stages")
