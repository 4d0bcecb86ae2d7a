"""The author's commands (invoke). The Makefile's targets call these."""
import compileall
import os
import subprocess
import sys
from pathlib import Path

from invoke import task

ROOT = Path(__file__).resolve().parent
PY = sys.executable


def run(*args: str):
    """Run a Python command of the project with this terminal as its output, and exit with its status.

    Its output goes straight to the terminal: invoke's c.run decodes a child's output in fixed-size byte
    chunks, which garbles a French character cut in two (« ��� »)."""
    status = subprocess.call([PY, *args], cwd=ROOT)
    if status:
        sys.exit(status)


def compile_sources():
    """Byte-compile the plugins, the core and the settings files if they changed (compileall skips the others).

    Python caches what it compiles in __pycache__, unless PYTHONDONTWRITEBYTECODE
    is set, as it is on this machine: every build would then compile the plugins
    again, a twentieth of a warm rebuild.
    """
    for folder in ("plugins", "blogcore", "sitebuild"):
        if (ROOT / folder).is_dir():
            compileall.compile_dir(ROOT / folder, quiet=2)
    for name in ("pelicanconf.py", "publishconf.py"):
        compileall.compile_file(ROOT / name, quiet=2)


def build_or_exit(settings):
    """Build for the author's commands, staged (sitebuild): output/ is left as it was if the build fails."""
    compile_sources()
    run("-m", "sitebuild", "--settings", settings)


@task
def build(c):
    """Build output/ with pelicanconf.py."""
    build_or_exit("pelicanconf.py")


@task
def publish(c):
    """Build output/ with publishconf.py (needs SITEURL and NEWSLETTER_SECRET)."""
    build_or_exit("publishconf.py")


@task
def serve(c, port=8000):
    """Serve the site (built with drafts shown, into var/dev-site/) and the newsletter service on one port,
    rebuilding on change. The dev server builds first itself: no make build here."""
    compile_sources()
    os.environ["PORT"] = str(port)
    run("-m", "sitebuild.devserver", "--port", str(port))


@task
def test(c):
    """Run the whole test suite."""
    run("-m", "pytest", "-n", "auto")  # one worker per core (pytest-xdist)


@task(name="import", help={"list": "a rubrique's slug; empty: the whole blog"})
def import_(c, file, list_=""):
    """Add addresses from a CSV with an email column, or one address a line, to one list."""
    run("-m", "newsletter", "import", file, "--list", list_)


@task
def import_wordpress(c, file, uploads="", force=False):
    """Turn a WordPress export (WXR) into posts and pages in content/, with redirects for the old addresses."""
    run("-m", "wpimport", file, *(["--uploads", uploads] if uploads else []), *(["--force"] if force else []))


@task(help={"list": "one list: a rubrique's slug, or « tout » for the whole blog; unset: every address with its lists"})
def export(c, list_=None):
    """Print the subscribers' addresses as CSV."""
    run("-m", "newsletter", "export", *(["--list", list_] if list_ is not None else []))


@task
def remove(c, email):
    """Erase one address from every list."""
    run("-m", "newsletter", "remove", email)


@task(name="migrate-store", help={"source": "FROM: SQLite path or postgresql:// URL",
                                  "target": "TO: an empty store, SQLite path or postgresql:// URL"})
def migrate_store(c, source="", target=""):
    """Copy the subscribers (ids kept) and the send state from one store to an empty one, all or nothing."""
    run("-m", "newsletter.migrate", source, target)


@task(help={"post": "slug, or slugs comma-separated as one digest; empty: every post due",
            "to": "test send to this one address; records nothing"})
def send(c, post="", to=""):
    """Mail each new post (or --post) to every subscriber, once; --to: a test send. DRY_RUN=1: only show."""
    run("-m", "newsletter.sender", *([post] if post.strip() else []), *(["--to", to] if to.strip() else []))


@task
def bounces(c):
    """Read BOUNCE_MAILBOX: erase hard-bouncing, complaining and mail-unsubscribing addresses; print counts only."""
    run("-m", "newsletter.bounces")


@task
def preview(c, post):
    """Write the HTML and text mail of a post to open in a browser."""
    run("-m", "newsletter.preview", post)


@task
def deploy(c, rollback=False):
    """Upload output/ to DEPLOY_TARGET as a new release, changed files only (--rollback: back to the previous one)."""
    run("-m", "sitebuild.deploy", *(["--rollback"] if rollback else []))


@task
def release(c):
    """Build with publishconf.py, deploy, send what is due, then read the bounces if BOUNCE_MAILBOX is set."""
    compile_sources()
    run("-m", "sitebuild.release")


@task(name="check-mail")
def check_mail(c):
    """Check the From domain's SPF, DKIM, DMARC and MX records and the SMTP relay; say what to publish."""
    run("-m", "newsletter.checkmail")


@task
def bench(c, growth=False):
    """Time our build against stock Pelican on 1,000 posts (--growth: also 100 and 5,000 posts)."""
    run("bench/build_bench.py", *(["--growth"] if growth else []))


@task
def audit(c):
    """Lighthouse on the home page and a post, served as by make serve; fails if a score is under 95."""
    run("bench/audit.py")
