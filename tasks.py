"""The author's commands (invoke). The Makefile's targets call these."""
import compileall
import os
import subprocess
import sys
from pathlib import Path

from invoke import task

ROOT = Path(__file__).resolve().parent
OUTPUT = ROOT / "output"
PY = sys.executable


class BuildFailed(Exception):
    """Pelican refused the content; output/ was left as it was."""


def compile_sources():
    """Byte-compile the plugins, blogcore and the settings files if they changed (compileall skips the others).

    Python caches what it compiles in __pycache__, unless PYTHONDONTWRITEBYTECODE
    is set, as it is on this machine: every build would then compile the plugins
    again, a twentieth of a warm rebuild.
    """
    compileall.compile_dir(ROOT / "plugins", quiet=2)
    compileall.compile_dir(ROOT / "blogcore", quiet=2)
    for name in ("pelicanconf.py", "publishconf.py"):
        compileall.compile_file(ROOT / name, quiet=2)


def build_site(settings, output=OUTPUT, content=ROOT / "content"):
    """Build output/; a failed build leaves it as it was.

    Pelican writes into a staging folder beside output/, and plugins/fast_build
    moves the result in only once every page is written (and keeps the pages
    that did not change), so output/ is never half-built.
    """
    compile_sources()
    result = subprocess.run(
        [PY, "-m", "pelican", str(content), "-s", str(ROOT / settings), "-o", str(output), "--fatal", "errors"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        raise BuildFailed(result.stdout)
    return result.stdout


def build_or_exit(settings):
    """Build for the author's commands: Pelican's report on success, its complaint and exit 1 on failure."""
    try:
        print(build_site(settings), end="")
    except BuildFailed as failure:
        sys.exit(f"{failure}\nBuild failed: output/ was left unchanged.")


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
    """Build, then serve the site and the newsletter service on one port, rebuilding on change."""
    build(c)
    os.environ["PORT"] = str(port)
    c.run(f'"{PY}" -m newsletter.devserver --port {port}', pty=False)


@task
def test(c):
    """Run the whole test suite."""
    c.run(f'"{PY}" -m pytest', pty=False)


@task(name="import")
def import_(c, file):
    """Add addresses from a CSV with an email column, or one address a line."""
    c.run(f'"{PY}" -m newsletter import "{file}"', pty=False)


@task
def export(c):
    """Print the subscribers' addresses as CSV."""
    c.run(f'"{PY}" -m newsletter export', pty=False)


@task
def remove(c, email):
    """Remove one address from the subscribers."""
    c.run(f'"{PY}" -m newsletter remove "{email}"', pty=False)


@task
def send(c, post):
    """Mail a post (or several, comma-separated, as one digest) to every subscriber, once."""
    c.run(f'"{PY}" -m newsletter.sender "{post}"', pty=False)


@task
def preview(c, post):
    """Write the HTML and text mail of a post to open in a browser."""
    c.run(f'"{PY}" -m newsletter.preview "{post}"', pty=False)


@task
def bench(c, growth=False):
    """Time our build against stock Pelican on 1,000 posts (--growth: also 100 and 5,000 posts)."""
    c.run(f'"{PY}" bench/build_bench.py' + (" --growth" if growth else ""), pty=False)


@task
def audit(c):
    """Lighthouse on the home page and a post, served as by make serve; fails if a score is under 95."""
    c.run(f'"{PY}" bench/audit.py', pty=False)
