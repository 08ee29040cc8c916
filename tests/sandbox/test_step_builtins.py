"""/echo, /header and /purpose answer as their providers do: a refusal is a 200 with an ephemeral text."""

from __future__ import annotations

from sandbox import Sandbox


async def test_built_in_refusals_are_ephemeral_answers_not_http_errors(sb: Sandbox) -> None:
    bob = sb.user("bob")
    ts = sb.channel("acme", "town-square")
    posts_before = len(sb.posts(ts["id"]))
    for command, text in (("/echo", "A message must be provided with the /echo command."),
                          ("/header", "Message must be provided with the /header command."),
                          ("/purpose", "Message must be provided with the /purpose command.")):
        result = await bob.command("town-square", command)
        assert result.status == 200 and result.error is None, command
        assert result.response["response_type"] == "ephemeral" and result.response["text"] == text
        assert result.ephemeral == [text]  # HandleCommandResponse: shown to the caller only
    assert len(sb.posts(ts["id"])) == posts_before


async def test_purpose_sets_the_channel_purpose_with_its_system_post(sb: Sandbox) -> None:
    bob = sb.user("bob")
    ts = sb.channel("acme", "town-square")
    result = await bob.command("town-square", "/purpose Where we talk")
    assert result.status == 200 and result.response["text"] == "" and result.ephemeral == []
    assert sb.channel_by_id(ts["id"])["purpose"] == "Where we talk"
    change = [p for p in sb.posts(ts["id"]) if p["type"] == "system_purpose_change"][-1]
    assert change["props"]["new_purpose"] == "Where we talk" and change["user_id"] == bob.id
