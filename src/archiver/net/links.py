"""Which links archiver may fetch, and a transport that fetches nothing else.

Media and avatar links come from data other people wrote: an export names any URL it
likes, a stranger's profile carries any avatar link. Fetched blindly, such a link reaches
the person's own network (their router at 192.168.1.1, a service on 127.0.0.1) from
inside it. So every download of a link taken from data goes through a ``LinkPolicy``:

* only ``http`` and ``https`` links are fetched; anything else (no scheme, ``file:``,
  ``data:``, ``ftp:``, ``javascript:``) never is;
* every address a host name resolves to must be public. The check is made when the
  connection is made, on the very address then connected to, so a name that resolves to
  a public address once and to 127.0.0.1 a moment later (DNS rebinding) gains nothing;
* each hop of a redirect is checked again, like a first request;
* loopback and private addresses are allowed only for an account whose own base URL is
  on loopback (a simulator or test fake on 127.0.0.1): the decision comes from the
  account's config (``LinkPolicy.for_account``), never from a process-wide switch.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import httpcore
import httpx

from archiver.net.client import NetError, scrubber

# host, port -> the addresses to connect to, in order (socket.getaddrinfo by default;
# tests pass their own: there is no DNS in a test).
Resolver = Callable[[str, int], list[str]]

FETCHED_SCHEMES = ("http", "https")

# IPv6 prefixes that carry an IPv4 address inside (NAT64 well-known prefix): the IPv4
# address is what the packet reaches.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedLink(NetError):
    """A link that policy does not let archiver fetch. Never retried: the same link is
    refused the same way every time."""

    def __init__(self, message: str) -> None:
        super().__init__(message, kind="blocked")


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses the system resolves ``host`` to, in the order it prefers."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise httpcore.ConnectError(f"cannot resolve {host}: {error}") from None
    addresses: list[str] = []
    for *_, sockaddr in answers:
        address = str(sockaddr[0])   # an IPv4 or IPv6 address (only a socket family we never ask for has others)
        if address not in addresses:
            addresses.append(address)
    return addresses


def is_public_address(address: str) -> bool:
    """True for an address on the public internet: not loopback, private, link-local,
    shared (CGNAT), reserved, multicast or unspecified — also when an IPv4 address of
    those kinds hides inside an IPv6 one (::ffff:127.0.0.1, 6to4, Teredo, NAT64)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])   # drop an IPv6 zone ("fe80::1%eth0")
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        inside = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None,
                  ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None]
        if any(v4 is not None and not is_public_address(str(v4)) for v4 in inside):
            return False
    return ip.is_global and not ip.is_multicast


def is_loopback_url(url: str | None) -> bool:
    """True when ``url``'s host is a loopback address or ``localhost``."""
    host = (urlsplit(url or "").hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class LinkPolicy:
    """Where links taken from data may lead, for one account."""

    # Loopback and private addresses too: only for an account whose base URL is on
    # loopback (see for_account).
    allow_private: bool = False
    resolve: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def for_account(cls, base_url: str | None, *, resolve: Resolver | None = None) -> "LinkPolicy":
        """The policy of an account whose API lives at ``base_url``: a simulator on
        127.0.0.1 serves its media on 127.0.0.1 too; a real platform never does."""
        return cls(allow_private=is_loopback_url(base_url), resolve=resolve or system_resolver)

    # -- checks ---------------------------------------------------------------------

    def check_url(self, url: str) -> None:
        """Raise BlockedLink unless ``url`` is an http(s) link whose host, when it is
        written as an address, may be reached. Host names are checked at connect time."""
        shown = _shown(url)
        try:
            parts = urlsplit(str(url).strip())
            host = parts.hostname
        except ValueError:
            raise BlockedLink(f"not fetched: {shown} is not a valid link") from None
        if parts.scheme.lower() not in FETCHED_SCHEMES:
            kind = f"a {parts.scheme}: link" if parts.scheme else "not a link (no http:// or https://)"
            raise BlockedLink(f"not fetched: {shown} is {kind}; only http(s) links are downloaded")
        if not host:
            raise BlockedLink(f"not fetched: {shown} names no host")
        try:
            ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return   # a name: its addresses are checked when the connection is made
        self.check_address(host, host)

    def check_address(self, host: str, address: str) -> None:
        if self.allow_private or is_public_address(address):
            return
        named = host if host == address else f"{host} (resolves to {address})"
        raise BlockedLink(f"not fetched: {named} is a private or local address; links from exports and "
                          "payloads may only lead to public hosts")

    def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for ``host``; raises BlockedLink when any of them
        is not allowed (a name with one private address among public ones is refused:
        the system may pick any of them)."""
        found = self.resolve(host, port)
        if not found:
            raise httpcore.ConnectError(f"cannot resolve {host}: no address")
        for address in found:
            self.check_address(host, address)
        return found

    # -- the transport ----------------------------------------------------------------

    def transport(self, inner: httpx.BaseTransport | None = None) -> httpx.BaseTransport:
        """A transport that sends only what this policy allows: each request (each hop of
        a redirect is one) is checked, and over the network each connection goes to an
        address that was checked the moment before. ``inner``: a transport tests inject
        instead of the network (a fake platform); the request checks still apply."""
        return _CheckedTransport(self, inner if inner is not None else _network_transport(self))


def _shown(url: object) -> str:
    """A link fit for a message: short, without its query (signed parts, tokens)."""
    text = str(url)
    shown = scrubber.url(text) if "://" in text else scrubber.text(text)
    return repr(shown[:80] + ("…" if len(shown) > 80 else ""))


class _CheckedTransport(httpx.BaseTransport):
    def __init__(self, policy: LinkPolicy, inner: httpx.BaseTransport) -> None:
        self.policy = policy
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # httpx follows redirects itself, sending every hop through here.
        self.policy.check_url(str(request.url))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class _CheckedBackend(httpcore.NetworkBackend):
    """Resolves a host itself, checks every address, and connects to a checked one: what
    was checked is what is connected to. TLS still verifies the host's name (httpcore
    passes the name, not the address, as the server name)."""

    def __init__(self, policy: LinkPolicy) -> None:
        self.policy = policy
        self.plain = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        last_error: Exception | None = None
        for address in self.policy.addresses(host, port):
            try:
                return self.plain.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                              socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                last_error = error
        assert last_error is not None
        raise last_error

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise BlockedLink("not fetched: a local socket")

    def sleep(self, seconds: float) -> None:
        self.plain.sleep(seconds)


def _network_transport(policy: LinkPolicy) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport()
    # httpx gives no option for the network backend: its connection pool is replaced by
    # the same pool over the checking backend.
    transport._pool = httpcore.ConnectionPool(ssl_context=httpx.create_ssl_context(),
                                              network_backend=_CheckedBackend(policy))
    return transport
