"""Which image URLs the admin may load: never one on a loopback, private, link-local or local-name host.

A teammate's browser that loads ``<img src="http://192.168.1.1/reboot">`` from tracked data sends a request
into the teammate's own network (a router, a dev server, cloud metadata at 169.254.169.254). Such images are
shown as links instead. Hosts are read the way browsers read them (WHATWG URL): percent-decoded, IDNA-mapped
(full-width digits), and IPv4 in its short, octal, hex and integer forms (``127.1``, ``0x7f.1``, ``2130706433``).

Not caught: a public DNS name that resolves to a private address (checking would need a lookup at render time,
and the answer can change before the browser asks). docs/security.md says so.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import unquote, urlsplit

# Names that only mean something inside a network (RFC 6761, 6762, 8375 and common private suffixes).
LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".intranet", ".lan", ".home", ".corp",
                  ".home.arpa")


def is_local_url(url: str) -> bool:
    """True when ``url``'s host is loopback, private, link-local, reserved, a local name, or unreadable."""
    try:
        host = urlsplit(url).hostname
        if not host:
            return True
        host = unquote(host).encode("idna").decode("ascii").lower().rstrip(".")
    except (ValueError, UnicodeError):
        return True
    if not host or host == "localhost" or host.endswith(LOCAL_SUFFIXES):
        return True
    try:
        ip = ipaddress.ip_address(host) if ":" in host else _ipv4(host)
    except ValueError:
        return True  # looks like an address but is not one a browser accepts: nothing to load anyway
    if ip is None:
        return "." not in host  # a single-label name ("intranet", "router") resolves inside a network
    return not ip.is_global or ip.is_multicast


def _ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a browser reads ``host`` as (WHATWG "ends in a number"), else ``None`` for a name.
    Raises ``ValueError`` when it ends in a number but is not a valid address."""
    parts = host.split(".")
    if not _numeric(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError(host)
    numbers = [_number(p) for p in parts]
    last = numbers.pop()
    if any(n > 255 for n in numbers) or last >= 256 ** (4 - len(numbers)):
        raise ValueError(host)
    value = last
    for i, n in enumerate(numbers):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _numeric(part: str) -> bool:
    if part[:2] in ("0x", "0X"):
        return all(c in "0123456789abcdefABCDEF" for c in part[2:])
    return part.isascii() and part.isdigit()


def _number(part: str) -> int:
    if not part:
        raise ValueError("empty label")
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part[0] == "0":
        return int(part, 8)
    return int(part, 10)
