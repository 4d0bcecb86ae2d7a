"""Production server: `python -m newsletter.server --port 8001 [--proxy-headers]`.

uvicorn with the connection guard (newsletter.guard), the log throttle (newsletter.quietlog), no
access log (a link carries a signed address), and the open-file limit raised to the hard limit, as
Go and nginx do: the guard keeps connections under it. The event loop is uvloop's (libuv), as
uvicorn's own "standard" install has it: POST confirm, whose answer then waited on the store's thread
and handed a mail to the mail process, ran 4-41 % faster with it (4 alternating pairs of runs, 50
connections, a fresh server each: median 4,110 against 3,500 req/s); the hello world, -11 to +14 %
(3 pairs), the same within the noise.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys

import uvicorn

from . import heap, quietlog
from .guard import BACKLOG, GuardedH11Protocol

# Seconds the event loop may hold the GIL while another thread waits for it (Python's default: 0.005).
# With `--mail-process no` (the mail process commits confirmations otherwise), the store's writer thread
# (groupcommit.py) takes it back after each SQLite call of a batch; at 5 ms a time behind a busy loop, a
# batch of confirmations waited tens of ms (POST confirm p99 48-56 ms at 50 connections, 43-47 ms with 0.5 ms).
GIL_SWITCH_INTERVAL = 0.0005


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newsletter.server", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--proxy-headers", action="store_true",
                        help="trust X-Forwarded-For from --forwarded-allow-ips (the web server in front)")
    parser.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    parser.add_argument("--backlog", type=int, default=BACKLOG,
                        help=f"listen queue, and connections accepted at a time (default {BACKLOG}; "
                             "behind nginx: 1024, so a burst through the proxy is not dropped)")
    parser.add_argument("--mail-process", choices=["auto", "yes", "no"], default="auto",
                        help="build and send the service's mails in a child process (newsletter/mailproc.py); "
                             "auto: when more than one CPU is there to run it")
    parser.add_argument("--app", default="newsletter.asgi:app",
                        help="the ASGI app to serve (the benchmark runs its hello-world anchor with this server)")
    args = parser.parse_args(argv)
    os.environ["NEWSLETTER_MAIL_PROCESS"] = args.mail_process  # read by newsletter.asgi as uvicorn imports it
    os.environ["NEWSLETTER_INSTANCE"] = f"{args.host}:{args.port}"  # this one among NEWSLETTER_INSTANCES
    raise_file_limit()
    config = uvicorn.Config(args.app, host=args.host, port=args.port, http=GuardedH11Protocol, loop="uvloop",
                            access_log=False, proxy_headers=args.proxy_headers,
                            forwarded_allow_ips=args.forwarded_allow_ips, lifespan="on",
                            backlog=args.backlog, server_header=False)  # no software named to clients
    quietlog.install()  # after Config, which sets uvicorn's handlers up
    config.load()  # imports the app: what the process keeps
    heap.settle()
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
