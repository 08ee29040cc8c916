"""gateway/webhooks_out.py: which URLs are refused (hostile forms, internal addresses, every
resolved address), that a request connects only to the addresses that were checked (DNS
rebinding), signing verified by the recipe in docs/webhooks.md, and the bounded POST (no redirect
followed, a capped answer, a timeout) against a real loopback receiver."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from pathlib import Path

import pytest
from aiohttp import web

from gateway.webhooks_out import (
    HEADER_IDEMPOTENCY,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    RESPONSE_READ_MAX,
    AddressForbidden,
    AddressPolicy,
    DeliveryError,
    WebhookSender,
    WebhookURLError,
    is_internal,
    parse_target_url,
    signed_headers,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = "whsec_test-secret-0123456789"


def documented_verify():
    """The ``verify`` function of the recipe in docs/webhooks.md, run as it is written there."""
    text = DOCS.read_text()
    section = text[text.index("### Verifying a delivery"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict = {}
    exec(compile(code.group(1), str(DOCS), "exec"), namespace)
    return namespace["verify"]


@pytest.mark.parametrize("url, words", [
    ("file:///etc/passwd", "must start with https://"),
    ("gopher://127.0.0.1:6379/_FLUSHALL", "must start with https://"),
    ("ftp://hooks.example.com/x", "must start with https://"),
    ("javascript:alert(1)", "must start with https://"),
    ("hooks.example.com/x", "must start with https://"),
    ("http://hooks.example.com@127.0.0.1/", "user name or password"),
    ("https://user:secret@hooks.example.com/", "user name or password"),
    ("http://evil.example\\@127.0.0.1/", "backslashes"),
    ("http://hooks.example.com/a b", "spaces"),
    ("http://hooks.example.com/\r\nX-Injected: 1", "control characters"),
    ("http://2130706433/", "form that hides it"),
    ("http://0x7f000001/", "form that hides it"),
    ("http://0x7f.1/", "form that hides it"),
    ("http://0177.0.0.1/", "form that hides it"),
    ("http://127.1/", "form that hides it"),
    ("http://[fe80::1%25eth0]/", "IPv6 zone"),
    ("http:///path", "no host"),
    ("https://hooks.example.com/#frag", "fragment"),
    ("https://hooks.example.com:99999/", "invalid port"),
    ("https://" + "a" * 600 + ".example.com/", "at most 500 characters"),
    ("", "needs a URL"),
])
def test_hostile_url_forms_are_refused_with_the_reason(url, words):
    with pytest.raises(WebhookURLError, match=re.escape(words)):
        parse_target_url(url)


@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.9.9.9", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "100.100.100.200", "0.0.0.0", "224.0.0.1", "239.255.255.250", "255.255.255.255",
    "192.0.0.192", "198.18.0.1", "[::1]", "[::]", "[fc00::1]", "[fd00:ec2::254]", "[fe80::1]", "[ff02::1]",
    "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::ffff:10.0.0.1]", "[64:ff9b::a9fe:a9fe]", "[2002:7f00:1::1]",
    "localhost", "api.localhost",
])
def test_internal_hosts_are_refused_by_default(host):
    target = parse_target_url(f"http://{host}:8080/hook")
    with pytest.raises(AddressForbidden, match="CC_WEBHOOK_ALLOWED_INTERNAL"):
        AddressPolicy("").check_literal(target)


def test_public_addresses_and_names_pass_the_form_and_literal_checks():
    for url in ("https://93.184.215.14/hook", "https://[2606:4700::1111]/x", "https://hooks.example.com/a?b=1",
                "http://xn--bcher-kva.example/"):
        AddressPolicy("").check_literal(parse_target_url(url))
    assert parse_target_url("https://HOOKS.Example.com/x").host == "hooks.example.com"
    assert parse_target_url("http://hooks.example.com/").port == 80


def test_the_allow_setting_is_like_allowed_untrusted_internal_connections():
    policy = AddressPolicy("127.0.0.1, 10.2.0.0/16 hooks.internal")
    assert policy.refusal("127.0.0.1", ipaddress.ip_address("127.0.0.1")) is None
    assert policy.refusal("127.0.0.2", ipaddress.ip_address("127.0.0.2")) is not None  # one address, not 127/8
    assert policy.refusal("x", ipaddress.ip_address("10.2.9.9")) is None
    assert policy.refusal("x", ipaddress.ip_address("10.3.0.1")) is not None
    assert policy.refusal("x", ipaddress.ip_address("::ffff:127.0.0.1")) is None  # the mapped address is allowed
    assert policy.refusal("hooks.internal", ipaddress.ip_address("10.9.9.9")) is None  # the host is listed
    assert policy.refusal("other.internal", ipaddress.ip_address("10.9.9.9")) is not None


def test_own_addresses_count_as_internal():
    public = ipaddress.ip_address("93.184.215.14")
    assert not is_internal(public)
    assert AddressPolicy("", own=[public]).refusal("me.example", public) is not None


def _fake_resolver(monkeypatch, answers: dict[str, list[list[str]]], calls: list[str]):
    """getaddrinfo answering each name with the next list of addresses given for it."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return await real(host, port, *args, **kwargs)
        calls.append(host)
        addresses = answers[host].pop(0)
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


async def test_every_resolved_address_is_checked(monkeypatch):
    calls: list[str] = []
    _fake_resolver(monkeypatch, {"mixed.example": [["93.184.215.14", "10.0.0.5"]] * 2,
                                 "public.example": [["93.184.215.14", "2606:4700::1111"]]}, calls)
    policy = AddressPolicy("")
    with pytest.raises(AddressForbidden, match=re.escape("10.0.0.5")):
        await policy.resolve(parse_target_url("https://mixed.example/x"))
    assert [str(a) for a in await policy.resolve(parse_target_url("https://public.example/x"))] == [
        "93.184.215.14", "2606:4700::1111"]
    with pytest.raises(WebhookURLError, match="internal address"):
        await policy.check("https://mixed.example/x")  # configuration time: the same check, a clear message


async def test_a_name_that_does_not_resolve_is_refused_at_configuration_time(monkeypatch):
    loop = asyncio.get_running_loop()

    async def nothing(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(loop, "getaddrinfo", nothing)
    with pytest.raises(WebhookURLError, match="does not resolve"):
        await AddressPolicy("").check("https://nowhere.example/x")


class Receiver:
    """A loopback aiohttp receiver recording what it is sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.hits: dict[str, int] = {}
        self.never = asyncio.Event()
        app = web.Application()
        app.router.add_post("/ok", self.ok)
        app.router.add_post("/redirect", self.redirect)
        app.router.add_post("/redirected", self.ok)
        app.router.add_post("/big", self.big)
        app.router.add_post("/slow", self.slow)
        app.router.add_post("/broken", self.broken)
        app.router.add_post("/gone", self.gone)
        self.runner = web.AppRunner(app)
        self.port = 0

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        self.never.set()
        await self.runner.cleanup()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _record(self, request: web.Request) -> None:
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        self.requests.append((dict(request.headers), await request.read()))

    async def ok(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(status=204)

    async def redirect(self, request: web.Request) -> web.Response:
        await self._record(request)
        raise web.HTTPFound(self.url("/redirected"))

    async def big(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(body=b"x" * 1_000_000)

    async def slow(self, request: web.Request) -> web.Response:
        await self._record(request)
        await self.never.wait()
        return web.Response()

    async def broken(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(status=503)

    async def gone(self, request: web.Request) -> web.Response:
        await self._record(request)
        return web.Response(status=410)


@pytest.fixture
async def receiver():
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


def _headers(body: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    import time
    return signed_headers(secret, body, event="incident.created", idempotency_key="k" * 26, attempt=1,
                          timestamp=int(time.time()) if timestamp is None else timestamp)


async def test_a_delivery_verifies_with_the_documented_recipe(receiver):
    sender = WebhookSender(AddressPolicy("127.0.0.1"))
    body = '{"event":"incident.created","incident":{"name":"Café ☕"}}'.encode()
    sent = await sender.post(receiver.url("/ok"), body, _headers(body))
    assert sent.status == 204
    [(headers, received)] = receiver.requests
    verify = documented_verify()
    assert received == body and headers[HEADER_IDEMPOTENCY] == "k" * 26
    assert verify(SECRET, headers, received)
    assert not verify("whsec_another-secret-000000", headers, received)
    assert not verify(SECRET, headers, received + b" ")
    assert not verify(SECRET, {**headers, HEADER_SIGNATURE: headers[HEADER_SIGNATURE].upper()}, received)
    old = _headers(body, timestamp=int(headers[HEADER_TIMESTAMP]) - 3600)
    assert not verify(SECRET, old, body)  # an old delivery replayed is refused


async def test_loopback_is_refused_by_default_and_nothing_is_sent(receiver):
    sender = WebhookSender(AddressPolicy(""))
    with pytest.raises(AddressForbidden) as refused:
        await sender.post(receiver.url("/ok"), b"{}", _headers(b"{}"))
    assert refused.value.retryable is False
    assert receiver.requests == []


async def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(receiver, monkeypatch):
    calls: list[str] = []
    # The first answer is checked (allowed); a rebinding second answer would point elsewhere.
    _fake_resolver(monkeypatch, {"hooks.test": [["127.0.0.1"], ["169.254.169.254"]]}, calls)
    sender = WebhookSender(AddressPolicy("127.0.0.1"))
    await sender.post(receiver.url("/ok", host="hooks.test"), b"{}", _headers(b"{}"))
    assert calls == ["hooks.test"] and receiver.hits == {"/ok": 1}
    [(headers, _)] = receiver.requests
    assert headers["Host"] == f"hooks.test:{receiver.port}"


async def test_a_redirect_is_not_followed(receiver):
    sender = WebhookSender(AddressPolicy("127.0.0.1"))
    with pytest.raises(DeliveryError, match="redirect, not followed") as failed:
        await sender.post(receiver.url("/redirect"), b"{}", _headers(b"{}"))
    assert failed.value.retryable is False and receiver.hits == {"/redirect": 1}


async def test_server_errors_are_retryable_and_other_refusals_are_not(receiver):
    sender = WebhookSender(AddressPolicy("127.0.0.1"))
    with pytest.raises(DeliveryError) as broken:
        await sender.post(receiver.url("/broken"), b"{}", _headers(b"{}"))
    assert broken.value.retryable is True and broken.value.status == 503
    with pytest.raises(DeliveryError) as gone:
        await sender.post(receiver.url("/gone"), b"{}", _headers(b"{}"))
    assert gone.value.retryable is False and gone.value.status == 410


async def test_only_a_small_part_of_the_answer_is_read(receiver):
    sent = await WebhookSender(AddressPolicy("127.0.0.1")).post(receiver.url("/big"), b"{}", _headers(b"{}"))
    assert sent.status == 200 and len(sent.answer) <= RESPONSE_READ_MAX


async def test_a_receiver_that_never_answers_times_out(receiver):
    sender = WebhookSender(AddressPolicy("127.0.0.1"), request_timeout_s=0.3)
    with pytest.raises(DeliveryError) as failed:
        await sender.post(receiver.url("/slow"), b"{}", _headers(b"{}"))
    assert failed.value.retryable is True


async def test_a_receiver_that_is_down_is_retryable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DeliveryError) as failed:
        await WebhookSender(AddressPolicy("127.0.0.1")).post(f"http://127.0.0.1:{port}/x", b"{}", _headers(b"{}"))
    assert failed.value.retryable is True
