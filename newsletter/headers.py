"""The security headers of every answer of the service (and of the dev server's site), and no cookies, ever."""
from __future__ import annotations

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

ENCODED_SECURITY_HEADERS = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]  # once
SECURITY_OR_COOKIE = frozenset(k for k, _ in ENCODED_SECURITY_HEADERS) | {b"set-cookie"}
# The search page runs Pagefind's WebAssembly (theme/static/js/search.js): that page alone may compile it.
# deploy/'s nginx gives /recherche/ the same policy.
SEARCH_PATH = "/recherche/"
SEARCH_CSP = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
ENCODED_SEARCH_HEADERS = [(k, SEARCH_CSP.encode() if k == b"content-security-policy" else v)
                          for k, v in ENCODED_SECURITY_HEADERS]


def secured(headers: list[tuple[bytes, bytes]], path: str) -> list[tuple[bytes, bytes]]:
    """An answer's raw headers with SECURITY_HEADERS (those of the search page on it), without Set-Cookie.
    A header the answer set itself is kept (a page with a policy of its own)."""
    ours = ENCODED_SEARCH_HEADERS if path.startswith(SEARCH_PATH) else ENCODED_SECURITY_HEADERS
    if any(k.lower() in SECURITY_OR_COOKIE for k, _ in headers):  # rare: the answer set one itself
        headers = [(k, v) for k, v in headers if k.lower() != b"set-cookie"]
        present = {k.lower() for k, _ in headers}
        ours = [(k, v) for k, v in ours if k not in present]
    return [*headers, *ours]


class SecurityHeaders:
    """ASGI middleware: every answer `secured`."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": secured(message.get("headers", []), scope["path"])}
            await send(message)

        await self.app(scope, receive, send_with_headers)
