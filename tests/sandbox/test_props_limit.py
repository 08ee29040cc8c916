"""model.PostPropsMaxRunes: Mattermost refuses a post whose props marshal to more than 800,000 runes
(``Post.IsValid``, server/public/model/post.go), on create and on every update; the sandbox does too."""

from __future__ import annotations

from sandbox import Sandbox
from sandbox.state import MAX_PROPS_RUNES, props_runes

from .conftest import Api

REFUSED = "model.post.is_valid.props.app_error"


def test_runes_are_counted_as_go_marshals_them():
    assert props_runes({"a": "x"}) == len('{"a":"x"}')
    assert props_runes({"a": "<&>"}) == len('{"a":"\\u003c\\u0026\\u003e"}')   # json.Marshal escapes HTML
    assert props_runes({"a": "é"}) == len('{"a":"é"}')                         # runes, not bytes


async def test_props_over_the_limit_are_refused_on_create_and_patch(api: Api, sb: Sandbox) -> None:
    ts = sb.channel("acme", "town-square")
    big = {"attachments": [{"text": "<" * (MAX_PROPS_RUNES // 6)}]}
    assert props_runes(big) > MAX_PROPS_RUNES
    status, _, body = await api("POST", "/api/v4/posts", as_user="bob",
                                json_body={"channel_id": ts["id"], "message": "hi", "props": big})
    assert status == 400 and body["id"] == REFUSED
    status, _, post = await api("POST", "/api/v4/posts", as_user="bob",
                                json_body={"channel_id": ts["id"], "message": "hi", "props": {"k": "v"}})
    assert status == 201
    status, _, body = await api("PUT", f"/api/v4/posts/{post['id']}/patch", as_user="bob", json_body={"props": big})
    assert status == 400 and body["id"] == REFUSED
    assert sb.world.posts[post["id"]]["props"] == {"k": "v"}                  # nothing half-written
    assert sb.world.posts[post["id"]]["edit_at"] == 0
