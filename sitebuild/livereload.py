"""Live reload for `make serve`: an open page reloads itself once the site has been rebuilt.

The pages of a dev build (DEV_BUILD, theme/templates/base.html) load /_dev/reload.js,
a file of this server: the site's CSP is default-src 'self', so no inline script and
no other origin. The script listens to /_dev/events, a Server-Sent Events stream
(plain HTTP, no websocket), and reloads the page on a `reload` event, sent after
each rebuild that succeeded. A page says when it started loading (`since`, the
browser's clock, which is this machine's): a rebuild that finished after that but
before its stream opened reloads it at once, so no save is missed. Production
builds have no script, and these routes exist only in the dev server.
"""
from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, Router

PREFIX = "/_dev/"
SCRIPT = Path(__file__).with_name("reload.js")
RELOAD = "event: reload\ndata: \n\n"
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


class Reloads:
    """The rebuilds, as the open pages hear of them: one per dev server."""

    def __init__(self):
        self.count = 0        # rebuilds that succeeded
        self.last = -math.inf  # when the last one finished, in milliseconds since the epoch
        self.closed = False
        self._changed = asyncio.Condition()

    async def rebuilt(self):
        """A rebuild succeeded: output/ holds the new site; every open page reloads."""
        async with self._changed:
            self.count += 1
            self.last = time.time() * 1000
            self._changed.notify_all()

    async def close(self):
        """The server stops: every stream ends (uvicorn waits for open responses before it exits)."""
        async with self._changed:
            self.closed = True
            self._changed.notify_all()

    async def events(self, since: float):
        """One page's stream: `reload` when a rebuild finishes (or finished after `since`)."""
        seen = self.count
        yield "retry: 1000\n\n"  # after the server restarts, the page reconnects within a second
        if self.last > since:
            yield RELOAD
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: self.closed or self.count != seen)
                if self.closed:
                    return
                seen = self.count
            yield RELOAD


def with_live_reload(app, reloads: Reloads):
    """`app` with the two routes under /_dev/ in front of it."""

    async def script(request):
        return Response(SCRIPT.read_bytes(), media_type="text/javascript", headers=HEADERS)

    async def events(request):
        try:
            since = float(request.query_params.get("since", "inf"))
        except ValueError:
            since = math.inf
        return StreamingResponse(reloads.events(since), media_type="text/event-stream", headers=HEADERS)

    dev = Router([Route(PREFIX + "reload.js", script), Route(PREFIX + "events", events)])

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await dev(scope, receive, send)
        else:
            await app(scope, receive, send)

    return asgi
