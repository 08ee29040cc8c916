"""Outgoing webhooks on the wire: which URLs may be called, signing, and one bounded HTTP POST.

The receiver and the payload are documented in docs/webhooks.md; the durable outbox and the
retries are services/webhooks.py.

**Which addresses.** A target is an ``http``/``https`` URL with a host and no user info. Its host
is resolved when the request is sent and *every* address it resolves to must be allowed, or
nothing is sent; the connection then goes to exactly the addresses that were checked (the
resolver of the connection is the check itself, so a name that resolves again to something else
between the check and the connect — DNS rebinding — is never connected to). An address is allowed
when it is globally routable, not this host's own, or when ``CC_WEBHOOK_ALLOWED_INTERNAL`` allows
it. That setting works like Mattermost's ``ServiceSettings.AllowedUntrustedInternalConnections``
(server/platform/services/httpservice/httpservice.go ``MakeTransport``: entries split on spaces
and commas; a host equal to an entry is allowed, an address inside an entry's CIDR is allowed;
client.go ``IsReservedIP``, ``IsOwnIP`` and ``dialContextFilter`` decide the rest), stricter in
two ways: every resolved address is checked (``dialContextFilter`` skips refused ones and dials
the first allowed), and what counts as internal is every non-global range of the IANA
special-purpose registries — loopback, private, link-local (with the 169.254.169.254 metadata
address), CGNAT 100.64/10, multicast, reserved, IPv6 ULA and link-local, and the IPv4 address
inside an IPv4-mapped, NAT64 or 6to4 IPv6 address — not only the RFC 6890 subset in
``IsReservedIP``. A bare IP entry in the setting counts as that one address.

**What is refused outright.** Other schemes (``file:``, ``gopher:``…), user info
(``http://good@evil``), backslashes, spaces and control characters, zone ids, and numeric hosts
that are not four decimal numbers (``2130706433``, ``0x7f.1``, ``0177.0.0.1``: the resolver would
read them as 127.0.0.1).

**Sending.** No redirect is followed (a 3xx is a failure), no proxy from the environment is used,
the connection and the whole request are timed out, and at most :data:`RESPONSE_READ_MAX` bytes
of the answer are read.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from gateway.signing import Signer

#: Longest target URL accepted (a job refers to its target by id; the URL stays in the settings).
URL_MAX = 500
#: Bytes of a receiver's answer read at most (kept only for the log).
RESPONSE_READ_MAX = 4096
#: Seconds: connecting, and the whole request.
CONNECT_TIMEOUT_S = 3.0
REQUEST_TIMEOUT_S = 10.0

HEADER_TIMESTAMP = "X-CommandCenter-Timestamp"
HEADER_SIGNATURE = "X-CommandCenter-Signature"
HEADER_EVENT = "X-CommandCenter-Event"
HEADER_ATTEMPT = "X-CommandCenter-Attempt"
HEADER_IDEMPOTENCY = "Idempotency-Key"
SIGNATURE_VERSION = "v1"

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: Refused even where the standard library's registry calls a part of them global (192.0.0.0/24 holds
#: cloud metadata addresses such as 192.0.0.192); the rest is IsReservedIP's RFC 6890 list.
_ALSO_INTERNAL = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128", "fc00::/7", "fe80::/10",
    "ff00::/8"))
_BAD_CHARACTERS = re.compile(r"[\s\\\x00-\x1f\x7f]")
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class WebhookURLError(ValueError):
    """A target URL that is never called; the message says why and what to do."""

    retryable = False  # the same URL is refused the same way next time


class AddressForbidden(WebhookURLError):
    """The target resolves to an internal address that is not allowed."""


class DeliveryError(Exception):
    """A delivery that did not succeed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


@dataclass(frozen=True, slots=True)
class TargetURL:
    """A checked target URL: the parts that were checked are the parts that are used."""

    url: str
    scheme: str
    host: str  #: lower case; an IP literal without brackets
    port: int
    literal: _Address | None  #: the host, when it is an IP address


def parse_target_url(url: str) -> TargetURL:
    """Check the form of a target URL (not its addresses: see :class:`AddressPolicy`)."""
    text = url.strip()
    if not text:
        raise WebhookURLError("A webhook needs a URL, e.g. https://hooks.example.com/command-center.")
    shown = text[:80]
    if len(text) > URL_MAX:
        raise WebhookURLError(f"A webhook URL has at most {URL_MAX} characters; this one has {len(text)}.")
    if _BAD_CHARACTERS.search(text):
        raise WebhookURLError(f"The webhook URL {shown!r} contains spaces, backslashes or control characters; "
                              "write it without them.")
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookURLError(f"The webhook URL {shown!r} must start with https:// (or http://); "
                              f"{scheme + ':' if scheme else 'a URL without a scheme'} is not sent to.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise WebhookURLError(f"The webhook URL {shown!r} contains a user name or password (before an @); "
                              "put credentials in the receiver's secret check, not in the URL.")
    if parts.fragment:
        raise WebhookURLError(f"The webhook URL {shown!r} has a #fragment; remove it.")
    try:
        port = parts.port
    except ValueError:
        raise WebhookURLError(f"The webhook URL {shown!r} has an invalid port.") from None
    host = (parts.hostname or "").lower()
    if not host:
        raise WebhookURLError(f"The webhook URL {shown!r} has no host.")
    if "%" in host:
        raise WebhookURLError(f"The webhook URL {shown!r} names an IPv6 zone; use a plain address or a name.")
    literal = _literal(host, shown)
    if literal is None:
        name = host[:-1] if host.endswith(".") else host
        try:
            ascii_name = name.encode("idna").decode("ascii")
        except UnicodeError:
            raise WebhookURLError(f"The webhook URL {shown!r} has a host name that is not valid.") from None
        if not all(_HOST_LABEL.match(label) for label in ascii_name.split(".")):
            raise WebhookURLError(f"The webhook URL {shown!r} has a host name that is not valid.")
        host = ascii_name
    default = 443 if scheme == "https" else 80
    return TargetURL(url=text, scheme=scheme, host=host, port=port or default, literal=literal)


def _literal(host: str, shown: str) -> _Address | None:
    """The host as an IP address, if it is one; numeric forms other than dotted decimal are refused."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    bare = host[:-1] if host.endswith(".") else host
    try:
        socket.inet_aton(bare)
    except OSError:
        if re.fullmatch(r"[0-9.]+", bare):
            raise WebhookURLError(f"The webhook URL {shown!r} has a host that is neither a name nor an IPv4 "
                                  "address; write an address as four numbers, e.g. 203.0.113.7.") from None
        return None
    # inet_aton reads it as an address (2130706433, 0x7f.1, 0177.0.0.1, 127.1): the resolver would too.
    raise WebhookURLError(f"The webhook URL {shown!r} writes an IPv4 address in a form that hides it; "
                          "write it as four decimal numbers, e.g. 203.0.113.7.")


def _embedded_ipv4(address: _Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def is_internal(address: _Address) -> bool:
    """Whether an address is not one of the open internet's (see the module docstring)."""
    inner = _embedded_ipv4(address)
    if inner is not None and is_internal(inner):
        return True
    if not address.is_global or address.is_multicast:
        return True
    return any(address in network for network in _ALSO_INTERNAL if network.version == address.version)


def own_addresses() -> frozenset[_Address]:
    """This host's addresses, as far as its name resolves (``IsOwnIP``'s purpose: a request to the
    host's own public address reaches its loopback listeners)."""
    found: set[_Address] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            try:
                found.add(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
            except ValueError:
                continue
    except OSError:
        pass
    return frozenset(found)


class AddressPolicy:
    """Which hosts and addresses a webhook may reach (``CC_WEBHOOK_ALLOWED_INTERNAL``)."""

    def __init__(self, allowed: str | Iterable[str] = "", *, own: Iterable[_Address] | None = None) -> None:
        entries = re.split(r"[\s,]+", allowed) if isinstance(allowed, str) else list(allowed)
        self.hosts: frozenset[str] = frozenset()
        networks: list[_Network] = []
        hosts: set[str] = set()
        for entry in (e.strip().lower() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry)
        self.networks: tuple[_Network, ...] = tuple(networks)
        self.hosts = frozenset(hosts)
        self._own = frozenset(own) if own is not None else None

    @property
    def own(self) -> frozenset[_Address]:
        if self._own is None:
            self._own = own_addresses()
        return self._own

    def allows_ip(self, address: _Address) -> bool:
        if not is_internal(address) and address not in self.own:
            return True
        candidates = [address]
        inner = _embedded_ipv4(address)
        if inner is not None:
            candidates.append(inner)
        return any(candidate in network for candidate in candidates for network in self.networks
                   if candidate.version == network.version)

    def refusal(self, host: str, address: _Address) -> str | None:
        """Why ``address`` (what ``host`` resolved to) may not be called, or None."""
        if host in self.hosts or self.allows_ip(address):
            return None
        return (f"{host} is an internal address ({address}); webhooks are not sent inside the network unless "
                "CC_WEBHOOK_ALLOWED_INTERNAL allows it")

    def check_literal(self, target: TargetURL) -> None:
        """Refuse a target whose host is an internal IP address or a local name (no lookup)."""
        if target.literal is not None:
            reason = self.refusal(target.host, target.literal)
            if reason:
                raise AddressForbidden(f"The webhook URL {target.url[:80]!r} is refused: {reason}.")
        elif target.host not in self.hosts and (target.host == "localhost" or target.host.endswith(".localhost")):
            raise AddressForbidden(f"The webhook URL {target.url[:80]!r} is refused: {target.host} is this host; "
                                   "webhooks are not sent inside the network unless CC_WEBHOOK_ALLOWED_INTERNAL "
                                   "allows it.")

    async def resolve(self, target: TargetURL, *, timeout_s: float = CONNECT_TIMEOUT_S) -> list[_Address]:
        """Every address of the target, each checked; AddressForbidden if any is refused."""
        if self._own is None:  # looked up once, off the event loop
            self._own = await asyncio.to_thread(own_addresses)
        self.check_literal(target)
        if target.literal is not None:
            return [target.literal]
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), timeout_s)
        except (OSError, TimeoutError) as error:
            raise DeliveryError(f"{target.host} does not resolve: {error}", retryable=True) from None
        addresses: list[_Address] = []
        for info in infos:
            address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
            reason = self.refusal(target.host, address)
            if reason:
                raise AddressForbidden(f"The webhook URL {target.url[:80]!r} is refused: {reason}.")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise DeliveryError(f"{target.host} has no address", retryable=True)
        return addresses

    async def check(self, url: str) -> TargetURL:
        """At configuration time: the form, then the addresses the host resolves to now."""
        target = parse_target_url(url)
        try:
            await self.resolve(target)
        except DeliveryError as error:
            raise WebhookURLError(f"The webhook URL {url[:80]!r} cannot be used: {error}. Check the host name.") \
                from None
        return target


class _CheckedResolver(AbstractResolver):
    """aiohttp's resolver for one request: the addresses :meth:`AddressPolicy.resolve` checked."""

    def __init__(self, host: str, port: int, addresses: list[_Address]) -> None:
        self._host = host
        self._port = port
        self._addresses = addresses

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_UNSPEC) -> list[ResolveResult]:
        if host != self._host:  # only the checked host is ever connected to
            raise OSError(f"{host} was not checked")
        return [ResolveResult(hostname=host, host=str(address), port=port or self._port,
                              family=socket.AF_INET6 if address.version == 6 else socket.AF_INET, proto=0,
                              flags=socket.AI_NUMERICHOST) for address in self._addresses]

    async def close(self) -> None:
        return None


# -- signing ----------------------------------------------------------------------------------

def target_secret(signer: Signer, target_id: str) -> str:
    """The signing secret of one target: derived from the bot's signing secret and the target's id
    (a signature of its own purpose, so never valid as anything else), so it is never stored, and
    knowing one target's secret tells nothing of another's."""
    return "whsec_" + signer.sign("webhook-secret", target_id)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256, keyed with the secret's bytes, of ``timestamp + "." + body``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"{SIGNATURE_VERSION}={mac.hexdigest()}"


def signed_headers(secret: str, body: bytes, *, event: str, idempotency_key: str, attempt: int,
                   timestamp: int) -> dict[str, str]:
    """Every header of one delivery."""
    stamp = str(timestamp)
    return {
        "Content-Type": "application/json",
        "User-Agent": "CommandCenter-Webhooks/1",
        HEADER_EVENT: event,
        HEADER_IDEMPOTENCY: idempotency_key,
        HEADER_TIMESTAMP: stamp,
        HEADER_SIGNATURE: signature(secret, stamp, body),
        HEADER_ATTEMPT: str(attempt),
    }


# -- sending ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Sent:
    """A delivery the receiver accepted (a 2xx)."""

    status: int
    answer: bytes


class WebhookSender:
    """One POST per call, to checked addresses only (see the module docstring)."""

    def __init__(self, policy: AddressPolicy, *, connect_timeout_s: float = CONNECT_TIMEOUT_S,
                 request_timeout_s: float = REQUEST_TIMEOUT_S, wall_clock: Callable[[], float] = time.time) -> None:
        self.policy = policy
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        #: The signature's timestamp is real time (seconds), whatever clock the incidents run on.
        self.wall_clock = wall_clock

    def now_s(self) -> int:
        return int(self.wall_clock())

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Sent:
        """POST ``body``; DeliveryError unless the answer is a 2xx."""
        target = parse_target_url(url)
        addresses = await self.policy.resolve(target, timeout_s=self.connect_timeout_s)
        timeout = aiohttp.ClientTimeout(total=self.request_timeout_s, connect=self.connect_timeout_s)
        connector = aiohttp.TCPConnector(resolver=_CheckedResolver(target.host, target.port, addresses),
                                         use_dns_cache=False, force_close=True, limit=1)
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                             auto_decompress=False) as session:
                async with session.post(target.url, data=body, headers=dict(headers), allow_redirects=False,
                                        max_redirects=0) as answer:
                    content = await answer.content.read(RESPONSE_READ_MAX)
                    status = answer.status
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise DeliveryError(f"{type(error).__name__}: {error}"[:300], retryable=True) from None
        if 200 <= status < 300:
            return Sent(status, content)
        if 300 <= status < 400:
            raise DeliveryError(f"the receiver answered {status} (a redirect, not followed)", retryable=False,
                                status=status)
        retryable = status >= 500 or status in (408, 425, 429)
        raise DeliveryError(f"the receiver answered {status}", retryable=retryable, status=status)


__all__ = [
    "CONNECT_TIMEOUT_S", "HEADER_ATTEMPT", "HEADER_EVENT", "HEADER_IDEMPOTENCY", "HEADER_SIGNATURE",
    "HEADER_TIMESTAMP", "REQUEST_TIMEOUT_S", "RESPONSE_READ_MAX", "SIGNATURE_VERSION", "URL_MAX", "AddressForbidden",
    "AddressPolicy", "DeliveryError", "Sent", "TargetURL", "WebhookSender", "WebhookURLError", "is_internal",
    "own_addresses", "parse_target_url", "signature", "signed_headers", "target_secret",
]
