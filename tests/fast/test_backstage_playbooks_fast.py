"""The backstage editor's pieces on the fake server: the whole-playbook save
(PlaybookService.replace: the import's checks, the title rule, the version check, the saver kept a
member), and the draft (form ↔ YAML, the add/move/remove buttons, problems → inputs)."""

from __future__ import annotations

import pytest

from backstage.playbooks import Draft, FieldForm, StageForm, StepForm, form_errors, input_of
from domain.errors import Conflict, NotFound
from domain.playbooks import StageDraft, StepDraft, new_playbook
from gateway import playbook_yaml as pyaml
from gateway.playbook_yaml import PlaybookFormatError
from services.playbooks import STALE_EDIT


async def stored(fast, title: str = "Outage", members=None):
    members = members or (fast.people.alice.id,)
    playbook = new_playbook(team_id=fast.acme.id, title=title, created_by=members[0], now=fast.ctx.clock(),
                            member_ids=members, stages=[StageDraft(title="Triage", steps=(StepDraft(title="Look"),))])
    return await fast.store.create_playbook(playbook)


async def test_replace_saves_the_whole_spec_and_keeps_the_saver_a_member(fast):
    playbook = await stored(fast)
    service = fast.app.playbooks
    spec = await pyaml.read_playbook(f"title: Outage v2\nmembers: [{fast.people.bob.username}]\npublic: false\n"
                                     "update_interval: 1h\nstages:\n  - title: One\n    steps: [A, B]\n")
    result = await service.replace(fast.acme.id, fast.people.alice.id, playbook.id, spec,
                                   expected_version=playbook.version)
    saved = result.playbook
    assert saved.title == "Outage v2" and not saved.create_public_channel and saved.updates.interval_ms == 3_600_000
    assert saved.member_ids == (fast.people.bob.id, fast.people.alice.id)
    assert [s.title for s in saved.stages[0].steps] == ["A", "B"] and saved.version == playbook.version + 1
    # The old version: refused, nothing written.
    with pytest.raises(Conflict) as refused:
        await service.replace(fast.acme.id, fast.people.alice.id, playbook.id, spec, expected_version=playbook.version)
    assert str(refused.value) == STALE_EDIT
    assert (await fast.store.get_playbook(playbook.id)).version == saved.version


async def test_replace_checks_people_titles_and_who_may_save(fast):
    playbook = await stored(fast)
    await stored(fast, title="Taken")
    service = fast.app.playbooks
    unknown = await pyaml.read_playbook("title: X\nmembers: [nobody]\nstages:\n  - title: One\n")
    with pytest.raises(PlaybookFormatError) as problems:
        await service.replace(fast.acme.id, fast.people.alice.id, playbook.id, unknown, expected_version=1)
    assert problems.value.problems[0].where == "members, entry 1"
    outsider = await pyaml.read_playbook(f"title: X\nmembers: [{fast.people.dave.username}]\nstages:\n  - title: One\n")
    with pytest.raises(PlaybookFormatError):  # dave is in the other team only
        await service.replace(fast.acme.id, fast.people.alice.id, playbook.id, outsider, expected_version=1)
    taken = await pyaml.read_playbook("title: TAKEN\nstages:\n  - title: One\n")
    with pytest.raises(Conflict) as clash:
        await service.replace(fast.acme.id, fast.people.alice.id, playbook.id, taken, expected_version=1)
    assert clash.value.field == "title"
    fine = await pyaml.read_playbook("title: Fine\nstages:\n  - title: One\n")
    with pytest.raises(NotFound):  # bob is no member of it
        await service.replace(fast.acme.id, fast.people.bob.id, playbook.id, fine, expected_version=1)
    with pytest.raises(NotFound):  # nor is it in the other team
        await service.replace(fast.other.id, fast.people.alice.id, playbook.id, fine, expected_version=1)
    assert (await fast.store.get_playbook(playbook.id)).version == 1


async def test_a_draft_reads_back_as_the_spec_it_was_made_of(fast):
    text = ("title: Payments\ndescription: When payments fail\npublic: false\nmembers: [alice, bob]\n"
            "update_interval: 30m\nupdate_template: 'Status:'\nreminders: dm\ninvite: [carol]\ncommander: bob\n"
            "followers: [carol]\nwebhooks:\n  - url: https://hooks.example.com/x\n    events: [created, ended]\n"
            "fields:\n  - name: Severity\n    id: severity\n    type: severity\n    options: [SEV1, SEV2]\n"
            "  - name: Region\n    type: select\n    options: [eu, us]\n"
            "retrospective:\n  template: '## Notes'\n  reminder: 2d\n"
            "stages:\n  - title: One\n    steps:\n      - title: A\n        description: d\n        command: /echo hi\n"
            "        assignee: bob\n  - title: Two\n")
    spec = pyaml.parse(text)
    draft = Draft.of(spec, version=3)
    assert pyaml.parse(draft.yaml_text()) == spec
    assert Draft.read({"version": "3", **_form(draft)}) == draft


def _form(draft: Draft) -> dict[str, str]:
    form = {"title": draft.title, "description": draft.description, "public": "public" if draft.public else "private",
            "members": draft.members, "stages": str(len(draft.stages)), "fields": str(len(draft.fields)),
            "broadcast": draft.broadcast, "interval": draft.interval, "update_template": draft.update_template,
            "reminders": draft.reminders, "invite": draft.invite, "commander": draft.commander,
            "followers": draft.followers, "webhooks": draft.webhooks, "retro_template": draft.retro_template,
            "retro_reminder": draft.retro_reminder}
    for s, stage in enumerate(draft.stages, start=1):
        form[f"stage-{s}-title"] = stage.title
        form[f"stage-{s}-steps"] = str(len(stage.steps))
        for n, step in enumerate(stage.steps, start=1):
            for part in ("title", "description", "command", "assignee"):
                form[f"step-{s}-{n}-{part}"] = getattr(step, part)
    for k, item in enumerate(draft.fields, start=1):
        for part in ("id", "name", "kind", "options", "description"):
            form[f"field-{k}-{part}"] = getattr(item, part)
    return form


def test_the_buttons_change_the_draft_and_ignore_what_does_not_exist():
    draft = Draft(version=1, stages=[StageForm("A", [StepForm("a1"), StepForm("a2")]), StageForm("B")],
                  fields=[FieldForm(name="F")])
    assert [s.title for s in draft.changed("up-stage-2").stages] == ["B", "A"]
    assert [s.title for s in draft.changed("down-stage-2").stages] == ["A", "B"]  # already last
    assert [s.title for s in draft.changed("down-step-1-1").stages[0].steps] == ["a2", "a1"]
    assert [s.title for s in draft.changed("remove-step-1-2").stages[0].steps] == ["a1"]
    assert len(draft.changed("add-step-2").stages[1].steps) == 1
    assert len(draft.changed("add-stage").stages) == 3 and draft.changed("remove-field-1").fields == []
    for nonsense in ("remove-stage-9", "remove-step-1-9", "up-step-7-1", "explode", "remove-stage-0", "add-step-999"):
        assert draft.changed(nonsense) == draft, nonsense
    assert len(draft.stages) == 2 and len(draft.stages[0].steps) == 2  # the draft itself is never changed


def test_counts_in_a_forged_form_are_bounded_by_the_limits():
    draft = Draft.read({"stages": "999999", "stage-1-steps": "99999", "fields": "1000000", "version": "x"})
    from domain import limits
    assert len(draft.stages) == limits.STAGES_MAX + 1 and len(draft.stages[0].steps) == limits.STEPS_PER_STAGE_MAX + 1
    assert len(draft.fields) == limits.FIELDS_MAX + 1 and draft.version == 0


def test_each_problem_names_its_input():
    assert input_of("stage 2, step 3, command") == "step-2-3-command"
    assert input_of("stage 2, step 3") == "step-2-3-title"
    assert input_of("stage 4, title") == "stage-4-title"
    assert input_of("members, entry 2") == "members"
    assert input_of("broadcast_channels, entry 1") == "broadcast"
    assert input_of("retrospective, reminder") == "retro_reminder"
    assert input_of("field 2, options") == "field-2"
    assert input_of("update_interval") == "interval"
    assert input_of("") == ""
    try:
        pyaml.parse("title: ''\nstages:\n  - title: x\n    steps:\n      - title: ''\n")
    except PlaybookFormatError as error:
        assert set(form_errors(error)) == {"title", "step-1-1-title"}
