"""The fake client refuses what Mattermost refuses the bot, with the same status and error id."""

from __future__ import annotations

import pytest

from gateway.errors import MattermostError
from tests.fast.conftest import fake_world


async def test_membership_outside_the_channel_is_403_and_a_non_member_404():
    mm, people, acme, _, town = fake_world()
    secret = mm.add_channel(acme, "secret", [people.bob], private=True, bot_in=False)
    with pytest.raises(MattermostError) as outside:
        await mm.get_channel_member(secret.id, people.bob.id)
    assert (outside.value.status, outside.value.error_id) == (403, "api.context.permissions.app_error")
    with pytest.raises(MattermostError) as missing:
        await mm.get_channel_member(town.id, people.dave.id)
    assert (missing.value.status, missing.value.error_id) == (404, "app.channel.get_member.missing.app_error")


async def test_private_channel_names_do_not_leak_and_taken_names_are_400():
    mm, people, acme, _, _ = fake_world()
    mm.add_channel(acme, "secret", [people.bob], private=True, bot_in=False)
    with pytest.raises(MattermostError) as hidden:
        await mm.channel_by_name(acme.id, "secret")
    assert hidden.value.status == 404
    with pytest.raises(MattermostError) as taken:
        await mm.create_channel(acme.id, "secret", "Secret", private=False)
    assert taken.value.is_name_taken


async def test_a_post_past_the_edit_limit_cannot_be_patched_or_pinned():
    mm, _, _, _, town = fake_world()
    post = await mm.create_post(town.id, "hello")
    mm.edit_time_limit_s = 10
    mm.tick(11_000)
    for change in (mm.patch_post(post.id, {"message": "x"}), mm.pin_post(post.id)):
        with pytest.raises(MattermostError) as refused:
            await change
        assert refused.value.is_edit_time_limit and refused.value.status == 400
    assert [c.method for c in mm.calls] == ["create_post", "patch_post", "pin_post"]


async def test_team_members_only_in_the_bots_teams_and_ephemeral_only_when_allowed():
    mm, people, acme, other, town = fake_world()
    with pytest.raises(MattermostError) as missing:
        await mm.get_team_member(acme.id, people.dave.id)
    assert missing.value.error_id == "app.team.get_member.missing.app_error"
    mm.team_members[other.id].discard(mm.user_id)
    with pytest.raises(MattermostError) as outside:
        await mm.get_team_member(other.id, people.dave.id)
    assert outside.value.status == 403
    with pytest.raises(MattermostError) as ephemeral:
        await mm.create_ephemeral_post(people.alice.id, town.id, "psst")
    assert ephemeral.value.status == 403
