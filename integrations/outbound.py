"""Where the request and mailer nodes may connect: the outbound policy
(RAYHOOK_REQUEST_ALLOW, RAYHOOK_REQUEST_DENY_PRIVATE) and httpcore's network
backend that enforces it.

Every address a host name resolves to is checked before anything is sent, and
the connection is made to the checked address (the TLS name and `Host` header
stay the URL's), so a DNS answer that changes between the check and the
connection (DNS rebinding) cannot reach a refused address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpcore

from engine.settings import Settings

#: Cloud metadata endpoints: refused unless listed in RAYHOOK_REQUEST_ALLOW,
#: even with RAYHOOK_REQUEST_DENY_PRIVATE=false.
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog"})
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressBlocked(Exception):
    """The target resolved to an address the outbound policy refuses."""


class HostNotFound(Exception):
    """The target's name did not resolve."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which addresses the request node may connect to (RAYHOOK_REQUEST_ALLOW,
    RAYHOOK_REQUEST_DENY_PRIVATE).

    Public addresses are allowed. Private, loopback and other non-public ranges
    are refused unless `deny_private` is off; link-local ranges and the cloud
    metadata endpoints are refused even then. An allow-list entry (a host name,
    `*.domain`, an address or a CIDR) lifts every refusal for what it matches.

    Example::

        policy = OutboundPolicy.from_settings(Settings(request_allow=("10.0.0.0/8",)))
        policy.refusal("db.internal", ip_address("10.1.2.3"))  # None: allowed
    """

    hosts: frozenset[str] = frozenset()
    domains: tuple[str, ...] = ()  # from `*.example.com`: ".example.com"
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    deny_private: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboundPolicy:
        hosts: set[str] = set()
        domains: list[str] = []
        networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in settings.request_allow:
            entry = entry.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                domains.append(entry[1:])
            else:
                hosts.add(entry)
        return cls(frozenset(hosts), tuple(domains), tuple(networks), settings.request_deny_private)

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.hosts or any(host.endswith(d) for d in self.domains)

    def refusal(self, host: str, address: IPAddress | None) -> str | None:
        """Why `host`, resolved to `address`, may not be reached; None if it may.

        Without an address, only the name is judged (before looking it up)."""
        if self.host_allowed(host):
            return None
        if host.lower().rstrip(".") in METADATA_HOSTS:
            return f"{host} is a cloud metadata endpoint"
        if address is None:
            return None
        target = _embedded_ipv4(address)
        if any(target in net or address in net for net in self.networks):
            return None
        if target in METADATA_ADDRESSES:
            return f"{address} is a cloud metadata address"
        if target.is_link_local:
            return f"{address} is a link-local address"
        if self.deny_private and not _is_public(target):
            return f"{address} is not a public address"
        return None


def _embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64), if any."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def _is_public(address: IPAddress) -> bool:
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_private
    )


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, resolving names itself: it checks every
    address of the host and connects to a checked one, never to a second lookup."""

    def __init__(self, policy: OutboundPolicy) -> None:
        self.policy = policy
        self.inner = httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int, timeout: float | None) -> list[str]:
        """The host's addresses, all allowed; `AddressBlocked` if any is not."""
        self._check(host, None)  # a refused name is not even looked up
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            try:
                addresses = await asyncio.wait_for(self.lookup(host, port), timeout)
            except TimeoutError as exc:
                raise httpcore.ConnectTimeout(f"looking up {host} timed out") from exc
        for address in addresses:
            self._check(host, address)
        return [str(a) for a in addresses]

    def _check(self, host: str, address: IPAddress | None) -> None:
        reason = self.policy.refusal(host, address)
        if reason is not None:
            raise AddressBlocked(
                f"request to {host} refused: {reason}; allow it with RAYHOOK_REQUEST_ALLOW"
            )

    async def lookup(self, host: str, port: int) -> list[IPAddress]:
        """Every address the name resolves to (one lookup, whose answer is used)."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise HostNotFound(f"getaddrinfo ENOTFOUND {host}") from exc
        found = (ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
        return list(dict.fromkeys(found))

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.resolve(host, port, timeout)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.AsyncNetworkStream:
        raise AddressBlocked("unix sockets are not reachable from the request node")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
