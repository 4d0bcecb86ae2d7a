"""`make serve`: the author's view of the site and the signup service on one port, rebuilt on change.

    python -m sitebuild.devserver --port 8000 [--output var/dev-site] [--content content] [--no-watch]

Builds with the settings file (NEWSLETTER_SETTINGS, else pelicanconf.py) plus
DEV_BUILD = True: drafts and posts dated in the future are written too, marked
and noindex, for their author (plugins/publication), and every page loads the live
reload script (livereload). That site goes to its own folder, var/dev-site/, never
to output/, which make build and make publish write and make deploy uploads. The
mail records are written where make build writes them, so make send sends what
the author last saw (with --output, beside that folder, as `python -m sitebuild`).

Serves that folder (index.html for folders, 404.html for what is missing) and the
service under NEWSLETTER_URL in one Starlette app on 127.0.0.1, with /_dev/ in front
(livereload). Watches content/, theme/, plugins/, blogcore/ and the settings files,
and rebuilds as `make build` does (staged beside the folder and moved in on success,
so a broken edit leaves the last good site online), but in this process: no Python,
Pelican or plugins to start again, and the build runs on the event loop's thread, so
that no other thread holds a lock when the accelerator forks its readers (requests
wait the fraction of a second it takes). After a change to plugins/ or blogcore/,
whose modules this process has imported, the rebuild runs in a new process. Each
rebuild that succeeds reloads the open pages. With --no-watch, the folder is served
as it is (built first if empty), and nothing reloads.
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
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from blogcore.records import records_folder
from newsletter.config import Config

from .build import ROOT, BuildFailed, build_site
from .livereload import Reloads, with_live_reload

logger = logging.getLogger(__name__)

WATCHED = ("theme", "plugins", "blogcore", "pelicanconf.py", "publishconf.py")  # and the content folder
# Code this process has imported: after a change there, the build runs in a new process.
CODE = ("plugins", "blogcore")
DEV_OUTPUT = ROOT / "var" / "dev-site"


@dataclass
class DevSite:
    """What this server builds, where, with which settings, and who hears of each rebuild."""

    output: Path
    settings: str
    content: Path | None = None  # None: the settings' PATH
    overrides: dict = field(default_factory=dict)
    reloads: Reloads = field(default_factory=Reloads)

    @classmethod
    def for_settings(cls, output: Path, settings: str, content: Path | None = None) -> DevSite:
        """DEV_BUILD on top of the settings file; in var/dev-site/, the mail records where make build writes
        them (beside the settings' output folder, not beside this server's)."""
        overrides = {"DEV_BUILD": True}
        if output == DEV_OUTPUT:
            from pelican.settings import read_settings

            overrides["MAIL_POSTS_PATH"] = str(records_folder(read_settings(str(ROOT / settings))))
        return cls(output, settings, content, overrides)

    def watched(self) -> list[Path]:
        """The content folder, the theme, the code and the settings files."""
        content = self.content or ROOT / "content"
        return [content, *(ROOT / name for name in WATCHED if (ROOT / name).exists())]


async def rebuild(site: DevSite, fresh_process: bool = False) -> bool:
    """Rebuild as `make build` does (staged, moved in on success); False if Pelican fails."""
    started = time.monotonic()
    try:
        if fresh_process:
            extra = [f"{key}={'true' if value is True else value}" for key, value in site.overrides.items()]
            content = ["--content", str(site.content)] if site.content else []
            result = subprocess.run([sys.executable, "-m", "sitebuild", "--settings", site.settings,
                                     "--output", str(site.output), *content, "-e", *extra],
                                    cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True)
            if result.returncode:
                raise BuildFailed(result.stderr)
        else:
            build_site(site.settings, site.output, site.content, overrides=site.overrides)
    except BuildFailed as failure:
        logger.error("Échec de la reconstruction (build failed), le site précédent reste en ligne :\n%s", failure)
        return False
    logger.info("Site reconstruit en %.2f s (rebuilt)", time.monotonic() - started)
    await site.reloads.rebuilt()
    return True


async def watch(site: DevSite, stop: asyncio.Event) -> None:
    from watchfiles import awatch

    async for changes in awatch(*site.watched(), stop_event=stop):
        logger.info("%d fichier(s) modifié(s), reconstruction…", len(changes))
        code = [ROOT / name for name in CODE]
        await rebuild(site, any(Path(path).is_relative_to(folder) for _, path in changes for folder in code))


class Server(uvicorn.Server):
    """uvicorn's server, which ends the pages' event streams when it stops: it waits for open responses."""

    def __init__(self, config: uvicorn.Config, reloads: Reloads):
        super().__init__(config)
        self.reloads = reloads

    async def shutdown(self, sockets=None):
        await self.reloads.close()
        await super().shutdown(sockets)


async def main_async(port: int, output: Path, content: Path | None, watching: bool) -> None:
    from newsletter.app import create_app

    config = Config.from_env()
    site = DevSite.for_settings(output, os.environ.get("NEWSLETTER_SETTINGS", "pelicanconf.py"), content)
    if watching or not (output / "index.html").exists():
        await rebuild(site)  # the content may have changed, or a scheduled post come due, since the last run
    app = with_live_reload(create_app(config, static_dir=output), site.reloads)
    # No access log: it would write client IPs and signed addresses (in link paths) to the console.
    server = Server(uvicorn.Config(app, host="127.0.0.1", port=port, access_log=False, log_level="info"),
                    site.reloads)
    logger.info("égoBlog : http://127.0.0.1:%d/ (site + lettre, Ctrl-C pour arrêter)", port)
    if not config.smtp_url:
        logger.info("Pas de SMTP_URL : les mails vont dans %s et les liens s’affichent ici.", config.outbox)
    stop = asyncio.Event()
    tasks = []
    if watching:
        tasks.append(asyncio.create_task(watch(site, stop)))
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
    parser.add_argument("--output", type=Path, default=DEV_OUTPUT, help="the built site (default: var/dev-site/)")
    parser.add_argument("--content", type=Path, help="the content folder (default: the settings' PATH)")
    parser.add_argument("--no-watch", dest="watch", action="store_false",
                        help="serve the folder as it is (built first if empty): no rebuild, no reload")
    args = parser.parse_args(argv)
    # pelicanconf.py reads PORT for PUBLIC_URL: the links in mails must point at this server.
    os.environ["PORT"] = str(args.port)
    # Warnings from everything; the progress lines of this server and of the service (confirmation links),
    # not the line per page that Pelican and its plugins log at INFO on every rebuild.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for name in ("__main__", "sitebuild", "newsletter"):
        logging.getLogger(name).setLevel(logging.INFO)
    try:
        content = args.content.resolve() if args.content else None
        asyncio.run(main_async(args.port, args.output.resolve(), content, args.watch))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
