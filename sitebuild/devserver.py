"""`make serve`: the built site and the signup service on one port, rebuilt on change.

    python -m sitebuild.devserver --port 8000 [--output output] [--no-watch]

Serves output/ (index.html for folders, 404.html for what is missing) and the
service under NEWSLETTER_URL in one Starlette app on 127.0.0.1. Watches content/,
theme/, plugins/, blogcore/ and the settings files, and rebuilds as `make build`
does (staged beside output/ and moved in on success, so a broken edit leaves the
last good site online), but in this process: no Python, Pelican or plugins to
start again, and the build runs on the event loop's thread, so that no other
thread holds a lock when the accelerator forks its readers (requests wait the
fraction of a second it takes). After a change to plugins/ or blogcore/, whose
modules this process has imported, the rebuild runs in a new process.
The console shows this server's lines and warnings, not every page Pelican writes.
Without SMTP_URL, each confirmation link is printed here (development only).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import uvicorn

from newsletter.config import Config

from .build import ROOT, BuildFailed, build_site

logger = logging.getLogger(__name__)

WATCHED = ("content", "theme", "plugins", "blogcore", "pelicanconf.py", "publishconf.py")
# Code this process has imported: after a change there, the build runs in a new process.
CODE = ("plugins", "blogcore")


async def rebuild(output: Path, settings: str, fresh_process: bool = False) -> bool:
    """Rebuild as `make build` does (staged, moved into output/ on success); False if Pelican fails."""
    started = time.monotonic()
    try:
        if fresh_process:
            result = subprocess.run([sys.executable, "-m", "sitebuild", "--settings", settings, "--output", str(output)],
                                    cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if result.returncode:
                raise BuildFailed(result.stderr)
        else:
            build_site(settings, output)
    except BuildFailed as failure:
        logger.error("Échec de la reconstruction (build failed), le site précédent reste en ligne :\n%s", failure)
        return False
    logger.info("Site reconstruit en %.2f s (rebuilt)", time.monotonic() - started)
    return True


async def watch(output: Path, settings: str, stop: asyncio.Event) -> None:
    from watchfiles import awatch

    paths = [ROOT / p for p in WATCHED if (ROOT / p).exists()]
    async for changes in awatch(*paths, stop_event=stop):
        logger.info("%d fichier(s) modifié(s), reconstruction…", len(changes))
        code = [ROOT / name for name in CODE]
        await rebuild(output, settings, any(Path(path).is_relative_to(folder) for _, path in changes for folder in code))


async def main_async(port: int, output: Path, watching: bool) -> None:
    from newsletter.app import create_app

    config = Config.from_env()
    if not (output / "index.html").exists():
        await rebuild(output, os.environ.get("NEWSLETTER_SETTINGS", "pelicanconf.py"))
    app = create_app(config, static_dir=output)
    # No access log: it would write client IPs and signed addresses (in link paths) to the console.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="info"))
    logger.info("égoBlog : http://127.0.0.1:%d/ (site + lettre, Ctrl-C pour arrêter)", port)
    if not config.smtp_url:
        logger.info("Pas de SMTP_URL : les mails vont dans %s et les liens s’affichent ici.", config.outbox)
    stop = asyncio.Event()
    tasks = []
    if watching:
        tasks.append(asyncio.create_task(watch(output, os.environ.get("NEWSLETTER_SETTINGS", "pelicanconf.py"), stop)))
    try:
        await server.serve()
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sitebuild.devserver", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--output", type=Path, default=ROOT / "output", help="the built site (default: output/)")
    parser.add_argument("--no-watch", dest="watch", action="store_false", help="do not rebuild on change")
    args = parser.parse_args(argv)
    # pelicanconf.py reads PORT for PUBLIC_URL: the links in mails must point at this server.
    os.environ["PORT"] = str(args.port)
    # Warnings from everything; the progress lines of this server and of the service (confirmation links),
    # not the line per page that Pelican and its plugins log at INFO on every rebuild.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for name in ("__main__", "sitebuild", "newsletter"):
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        asyncio.run(main_async(args.port, args.output.resolve(), args.watch))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
