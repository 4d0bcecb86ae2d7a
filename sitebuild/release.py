"""`make release`: publish, deploy, mail what is due, then read the bounces, in that order; safe from cron.

    python -m sitebuild.release [--settings publishconf.py]

Each step is the author's own command in its own process (`python -m sitebuild`, `python -m
sitebuild.deploy`, `python -m newsletter.sender`, and `python -m newsletter.bounces` when
BOUNCE_MAILBOX is set), so this module imports neither Pelican nor the newsletter. The first step
that fails stops the release and names itself: a site that did not build is not deployed, and a
post is mailed only once the site that holds it is live.

Two releases never overlap: the second finds the lock (a kernel lock on var/release.lock, released
however the first ends) and does nothing. A release with nothing new does nothing and says so: the
deploy is skipped when output/ holds the same bytes as at the last deploy to the same target (a
digest in var/release-deployed; nothing about a person), and the sender says it has nothing to send.
Scheduled posts come out by themselves: the build publishes a post once its date has passed.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from .build import ROOT

NOTHING_TO_SEND = "Nothing to send"  # what the sender says when no post is due


class ReleaseFailed(Exception):
    """A step failed; the message names it."""


def site_digest(output: Path) -> str:
    """Every file's path and bytes under `output`, in one SHA-256."""
    digest = hashlib.sha256()
    for path in sorted(p for p in output.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(output)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def output_path(settings: str, env: dict) -> Path:
    """The settings' OUTPUT_PATH, read the way the build reads it (in a child: no Pelican here)."""
    code = ("import sys; from pelican.settings import read_settings; "
            "print(read_settings(sys.argv[1])['OUTPUT_PATH'])")
    result = subprocess.run([sys.executable, "-c", code, settings], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode:
        raise ReleaseFailed(f"step 1/{steps(env)} (build) stopped: {settings} cannot be read:\n{result.stderr.strip()}")
    path = Path(result.stdout.strip().splitlines()[-1])
    return path if path.is_absolute() else ROOT / path


def steps(env: dict) -> int:
    """How many steps this release has: the bounce mailbox is read only where there is one."""
    return 4 if env.get("BOUNCE_MAILBOX") else 3


def step(number: int, name: str, args: list[str], env: dict, capture: bool = False) -> str:
    """Run one step with this terminal as its output (and keep its stdout if asked); stop if it fails."""
    total = steps(env)
    print(f"== {number}/{total} {name}", flush=True)
    result = subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE if capture else None, text=True)
    if capture:
        sys.stdout.write(result.stdout)
        sys.stdout.flush()
    if result.returncode:
        later = {1: "nothing was deployed or mailed", 2: "nothing was mailed", 3: "", 4: ""}[number]
        raise ReleaseFailed(f"make release stopped at step {number}/{total} ({name}), exit status {result.returncode}"
                            + (f": {later}." if later else ".") + " Fix what is said above, then run it again.")
    return result.stdout or ""


def release(settings: str, env: dict, state_folder: Path) -> None:
    target = env.get("DEPLOY_TARGET", "")
    step(1, "build with " + settings, ["-m", "sitebuild", "--settings", settings], env)
    output = output_path(settings, env)
    marker = state_folder / "release-deployed"
    deployed_key = f"{target}\n{site_digest(output)}\n"
    unchanged = marker.exists() and marker.read_text() == deployed_key
    if unchanged:
        print(f"== 2/{steps(env)} deploy: skipped, {output} holds the same bytes as at the last deploy to {target}", flush=True)
    else:
        step(2, "deploy", ["-m", "sitebuild.deploy", "--output", str(output)], env)
        temporary = marker.with_suffix(".tmp")
        temporary.write_text(deployed_key)
        os.replace(temporary, marker)
    said = step(3, "send what is due", ["-m", "newsletter.sender"], {**env, "NEWSLETTER_SETTINGS": settings},
                capture=True)
    if steps(env) == 4:
        # Last: a mailbox that cannot be read never holds back the site or a post.
        step(4, "read the bounces", ["-m", "newsletter.bounces"], {**env, "NEWSLETTER_SETTINGS": settings})
    if unchanged and NOTHING_TO_SEND in said:
        print("Nothing new since the last release: nothing was uploaded or mailed.")


def main(argv=None, environ=os.environ) -> int:
    parser = argparse.ArgumentParser(prog="python -m sitebuild.release", description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="publishconf.py", help="settings file (default: publishconf.py)")
    args = parser.parse_args(argv)
    env = dict(environ)
    if not env.get("DEPLOY_TARGET"):
        print("error: set DEPLOY_TARGET (user@host:/path or a folder) before make release", file=sys.stderr)
        return 1
    state_folder = Path(env.get("RELEASE_STATE", ROOT / "var"))
    state_folder.mkdir(parents=True, exist_ok=True)
    with open(state_folder / "release.lock", "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print("Another make release is running: this one does nothing.")
            return 0
        try:
            release(args.settings, env, state_folder)
        except ReleaseFailed as failure:
            print(f"error: {failure}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
