"""The ceiling bench/service_bench.py compares the service with: a hello-world Starlette app, served by
the same server (`python -m newsletter.server --app bench.hello_app:app`), answering any path and method."""
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request):
    return PlainTextResponse("Hello, world!")


app = Starlette(routes=[Route("/{path:path}", hello, methods=["GET", "POST"])])
