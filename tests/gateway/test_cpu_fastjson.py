"""The bot's REST and WebSocket JSON through orjson (issue 15, CPU per start): the same values read and
sent as with the standard library, the same failures, and what orjson refuses done the old way."""

from __future__ import annotations

import json
import math

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway import fastjson
from gateway.transport import AiohttpClient

SAMPLES = [
    {}, [], "", 0, -1, 2**63 - 1, -(2**63), 1.5, 1e300, True, None,
    {"message": "✅ «ü» 🚨 \u2028 \\ \" \n\t", "props": {"attachments": [{"actions": [{"id": "x"}]}]}},
    {"nested": [[[{"a": [None, False, 0.1]}]]], "é": "ß"},
    ["\x00", "\x1f", "</script>"],
]


@pytest.mark.parametrize("value", SAMPLES)
def test_what_is_sent_reads_back_as_the_same_value_as_the_standard_librarys(value):
    sent = fastjson.dumps(value)
    assert isinstance(sent, bytes)
    assert json.loads(sent) == value == fastjson.loads(sent) == fastjson.loads(json.dumps(value))
    assert fastjson.loads(sent.decode()) == value


@pytest.mark.parametrize("value", [
    {1: "an int key"}, {"big": 2**64}, {"big": -(2**70)}, {"lone": "\ud800"}, {True: 1},
])
def test_what_orjson_refuses_is_sent_as_the_standard_library_sent_it(value):
    assert fastjson.dumps(value) == json.dumps(value).encode()


def test_an_integer_beyond_64_bits_is_read_as_the_float_the_server_holds():
    # Mattermost (Go) keeps free-form JSON such as a post's props as float64 and its own numbers as
    # int64: no larger integer ever comes from it, and one that did would be that float.
    assert fastjson.loads(b'{"big": 123456789012345678901234567890}') == {"big": float(123456789012345678901234567890)}
    assert fastjson.loads(b'{"edge": 9223372036854775807}') == {"edge": 2**63 - 1}


@pytest.mark.parametrize("raw", [b"NaN", b'{"a": Infinity}', b"[-Infinity]"])
def test_what_orjson_refuses_to_read_is_read_as_the_standard_library_read_it(raw):
    read, expected = fastjson.loads(raw), json.loads(raw)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(read)
    else:
        assert read == expected


@pytest.mark.parametrize("raw", [b"", b"{", b"nope", b'{"a": 1,}', b"\xff\xfe", "{'single': 1}"])
def test_what_is_not_json_fails_as_it_did(raw):
    with pytest.raises(ValueError):
        json.loads(raw)
    with pytest.raises(ValueError):
        fastjson.loads(raw)


def test_a_document_nested_too_deep_fails_as_it_did():
    raw = "[" * 100_000 + "]" * 100_000
    with pytest.raises(RecursionError):
        json.loads(raw)
    with pytest.raises(RecursionError):
        fastjson.loads(raw)


async def test_the_client_sends_json_bodies_as_json_with_the_token_and_reads_the_answer():
    seen: list[tuple[str, str, str, object]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.method, request.headers.get("Content-Type", ""),
                     request.headers.get("Authorization", ""), await request.json()))
        return web.json_response({"echo": await request.json(), "text": "✅"})

    app = web.Application()
    app.router.add_route("*", "/api/v4/{tail:.*}", handler)
    server = TestServer(app)
    await server.start_server()
    client = AiohttpClient({"scheme": "http", "url": "127.0.0.1", "port": server.port, "basepath": "/api/v4",
                            "auth": None, "debug": False, "proxy": None, "timeout": 5, "request_timeout": 5,
                            "verify": True})
    try:
        client.token = "tok"
        body = {"channel_id": "c" * 26, "message": "🚨 «ü»", "props": {"attachments": [{"text": "\u2028"}]}}
        assert await client.post("/posts", options=body) == {"echo": body, "text": "✅"}
        assert await client.put("/posts/p/patch", options=["a", 1]) == {"echo": ["a", 1], "text": "✅"}
        client.token = "another"
        assert await client.post("/users/ids", options={1: "int key"}) == {"echo": {"1": "int key"}, "text": "✅"}
        assert seen == [("POST", "application/json", "Bearer tok", body),
                        ("PUT", "application/json", "Bearer tok", ["a", 1]),
                        ("POST", "application/json", "Bearer another", {"1": "int key"})]
    finally:
        await client.aclose()
        await server.close()
