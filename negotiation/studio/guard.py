"""The studio's defences at the HTTP edge: names looked up (never joined to paths), tokens
compared in constant time, cross-site requests refused, every page sent with headers that
keep it from being framed, sniffed or leaking its secret URL in a ``Referer`` to another
site (same-origin only: a form's ``Origin`` must still reach this server).

Cross-site request forgery is refused three ways on every state-changing request: the
browser's ``Sec-Fetch-Site`` must say the request came from this site (or was typed), any
``Origin`` must be this server's, and the body must carry the page's CSRF token — an HMAC
that only someone who could read the page (the seat's own secret link) can know.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: What a rehearsal id, transcript name, scenario key or token may look like at all.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")

#: Pages: scripts and styles from this server only, nothing framed, no referrer.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
#: A served charter: its own inline style and embedded plot, and nothing else.
CHARTER_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def valid_name(value: str) -> bool:
    return bool(NAME.match(value)) and ".." not in value


def valid_token(value: str) -> bool:
    return bool(TOKEN.match(value))


def csrf_token(key: bytes, scope: str) -> str:
    """The token a page of ``scope`` carries in its forms (an HMAC under ``key``)."""
    return hmac.new(key, f"csrf:{scope}".encode(), hashlib.sha256).hexdigest()


def csrf_ok(key: bytes, scope: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(csrf_token(key, scope), given)


def same_site(request: Request) -> bool:
    """Whether a state-changing request comes from this site, by what the browser says."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in {"same-origin", "none"}:
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in {f"http://{host}", f"https://{host}"}


class SecurityHeaders:
    """ASGI middleware adding the page headers to every response that lacks them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("content-security-policy", PAGE_POLICY)
                headers.setdefault("x-content-type-options", "nosniff")
                headers.setdefault("referrer-policy", "same-origin")
                headers.setdefault("x-frame-options", "DENY")
                headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, with_headers)


#: The names a server listening on this machine only answers to.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
#: The cookie that lets a browser into the facilitator's pages (set from the printed link).
FACILITATOR_COOKIE = "studio_facilitator"


def host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port (``[::1]:80`` → ``::1``)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def key_ok(expected: str, given: object) -> bool:
    return isinstance(given, str) and hmac.compare_digest(expected.encode(), given.encode())


class TrustedHosts:
    """ASGI middleware refusing a request whose ``Host`` is not one of ``hosts``: a page
    on another site whose name an attacker re-points at 127.0.0.1 (DNS rebinding) is
    refused, because the browser still sends that site's name."""

    def __init__(self, app: ASGIApp, hosts: Collection[str]) -> None:
        self.app, self.hosts = app, frozenset(hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = next((value.decode("latin-1") for name, value in scope["headers"]
                         if name == b"host"), "")
            if host_name(host) not in self.hosts:
                reply = PlainTextResponse("this studio answers to its local address only",
                                          status_code=421)
                await reply(scope, receive, send)
                return
        await self.app(scope, receive, send)
