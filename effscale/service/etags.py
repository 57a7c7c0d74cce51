"""ETags on the API's answers, so a refresh that finds nothing new costs no transfer.

`ETagMiddleware` hashes the body of every successful ``GET``/``HEAD`` answer under ``/api`` and
sends it as the ``ETag``, with ``Cache-Control: no-cache`` (a cache may keep it, but asks again
each time). A request whose ``If-None-Match`` names that tag gets ``304 Not Modified`` and no body.
The route still runs (the tag is the answer's own hash, so it is never stale); what is saved is
the transfer and the client's parsing. The dashboard sends the tags it holds on every refresh.
"""

from __future__ import annotations

import hashlib
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _matches(header: str, tag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``tag`` (weak comparison, as RFC 9110 asks)."""
    names = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in names or tag in names


class ETagMiddleware:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: Any, *, prefix: str = "/api") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        asked = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None)
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                if message["status"] != 200:  # errors and redirects pass as they are
                    start = None
                    await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._answer(start, b"".join(chunks), asked, send)

        await self.app(scope, receive, buffered)

    @staticmethod
    async def _answer(start: Message, body: bytes, asked: str | None, send: Any) -> None:
        tag = etag_of(body)
        headers = [(k, v) for k, v in start["headers"] if k not in (b"etag", b"cache-control")]
        headers += [(b"etag", tag.encode()), (b"cache-control", b"no-cache")]
        if asked is not None and _matches(asked, tag):
            headers = [(k, v) for k, v in headers if k not in (b"content-length", b"content-type")]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})
