"""`make deploy`: upload output/ to DEPLOY_TARGET as a new release, then switch the live site to it at once.

    python -m sitebuild.deploy [--output output] [--target T] [--keep 3] [--rollback]

DEPLOY_TARGET is a folder on this machine or an rsync-over-SSH destination
(`user@host:/srv/egoblog`, `ssh://user@host:2222/srv/egoblog`). That folder holds

    releases/<UTC time>/        one complete copy of the site each
    current -> releases/<…>     the web server's document root (a symbolic link)
    previous -> releases/<…>    the release live before, for --rollback

Why releases: rsync writes files one by one, so uploading into the live folder
would serve a half-old, half-new site while it runs, and keep it if it stops.
Here rsync fills a fresh `releases/<time>.partial/` seeded from the live release
with --link-dest: a file with the live one's checksum becomes a hard link to it
(no bytes sent, no disk used), so only the files that changed cross the network,
and pages that are gone are simply not in the new release. Only once rsync has
succeeded is `current` replaced by a link to the new release, with one rename(2):
the server serves the old site or the new one, never a mix, and a failed upload
changes nothing it serves. The oldest releases beyond KEEP are removed.

Why --checksum rather than rsync's size-and-time check: the build renders again
every page an edit may touch, and a page rendered again with the same bytes gets a
new modification time, so by time a one-post edit would rewrite most of the site.
--checksum reads the files on both sides and moves only the ones whose bytes
differ. Times are not copied (no --times): an unchanged file is a hard link that
keeps the time the server first had it, so its Last-Modified and ETag stay and
browsers keep their copy; a changed file gets the time of its upload.

SSH runs in batch mode (a key or an agent, never a password prompt: safe from
cron) with the user's ~/.ssh/config, DEPLOY_SSH_PORT, DEPLOY_SSH_KEY and
DEPLOY_SSH_KNOWN_HOSTS; host keys are checked as ssh checks them, an unknown or
changed one stops the deploy. The three steps of a deploy (prepare, upload, switch)
share one connection. The server needs rsync and `mv -T` (GNU or busybox: any Linux).
Two deploys at once are not locked out (`make release` runs one at a time): the
last to switch wins, and neither serves a mix.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from .build import ROOT

KEEP = 3  # releases kept on the server: the live one, the previous one (for --rollback) and one more
STAMP = "%Y%m%dT%H%M%S.%fZ"  # a release's name: its UTC time, sortable
RELEASE = re.compile(r"\d{8}T\d{6}\.\d{6}Z")
CANONICAL = re.compile(r"""<link\s+rel=["']?canonical["']?\s+href=["']([^"']*)["']""", re.I)
SSH_OPTIONS = (
    "-o", "BatchMode=yes",           # never wait for a password or a yes/no question (cron)
    "-o", "ConnectTimeout=15",
    "-o", "ServerAliveInterval=15",  # a connection that hangs mid-upload fails within a minute
    "-o", "ServerAliveCountMax=4",
)
RSYNC_OPTIONS = (
    "--recursive", "--links", "--perms", "--chmod=D755,F644",  # readable by the web server whatever the umask
    "--checksum",  # compare bytes, not times (module docstring)
    "--stats", "--itemize-changes",
)

# The scripts run by `sh -s` on the server (or here, for a folder): POSIX sh, plus `mv -T`.
# $1 is the target folder throughout.
PREPARE = r"""set -eu
command -v rsync >/dev/null 2>&1 || { echo "rsync is not installed there (Debian: apt install rsync)" >&2; exit 3; }
mkdir -p -- "$1/releases"
cd -- "$1"
if [ -L current ]; then
  echo "current $(readlink current)"
elif [ -e current ]; then
  echo "$PWD/current is not a symbolic link: move it away (the web server must serve the link $PWD/current)" >&2
  exit 3
fi
[ -L previous ] && echo "previous $(readlink previous)"
for name in releases/*; do [ -d "$name" ] && echo "release ${name#releases/}"; done
mkdir -- "releases/$2.partial"
"""
# $2: the new release; $3…: releases to remove. Each link is replaced by one rename (mv -T).
SWITCH = r"""set -eu
cd -- "$1"
mv -- "releases/$2.partial" "releases/$2"
live=$(readlink current || true)
rm -f .current.new .previous.new
ln -s "releases/$2" .current.new
mv -T .current.new current
if [ -n "$live" ]; then ln -s "$live" .previous.new && mv -T .previous.new previous; fi
shift 2
for name in "$@"; do rm -rf -- "releases/$name"; done
find releases -maxdepth 1 -name '*.partial' -mmin +60 -exec rm -rf {} +
"""
# Partial uploads older than an hour are from deploys that failed; a younger one may be a deploy running now.
ROLLBACK = r"""set -eu
cd -- "$1"
if ! [ -L previous ] || ! [ -d previous ]; then
  echo "no previous release to go back to in $PWD (there is one after the second deploy)" >&2; exit 3
fi
live=$(readlink current)
back=$(readlink previous)
rm -f .current.new .previous.new
ln -s "$back" .current.new
mv -T .current.new current
ln -s "$live" .previous.new
mv -T .previous.new previous
echo "$back"
"""


class DeployError(Exception):
    """The deploy stopped; the live site is as it was. The message says why and what to do."""


@dataclass(frozen=True)
class Target:
    """Where releases go: a folder on this machine (host None), or one reached by SSH."""

    path: str
    host: str | None = None  # [user@]host
    port: int | None = None
    key: str | None = None
    known_hosts: str | None = None
    control: str | None = None  # the socket of a shared connection (shared_connection)

    def __str__(self):
        return f"{self.host}:{self.path}" if self.host else self.path

    def ssh(self) -> list[str]:
        """The ssh command, without the host, for scripts and for rsync's -e."""
        command = ["ssh", *SSH_OPTIONS]
        if self.port:
            command += ["-p", str(self.port)]
        if self.key:
            command += ["-i", self.key, "-o", "IdentitiesOnly=yes"]
        if self.known_hosts:
            command += ["-o", f"UserKnownHostsFile={self.known_hosts}"]
        if self.control:
            command += ["-o", "ControlMaster=auto", "-o", f"ControlPath={self.control}", "-o", "ControlPersist=60"]
        return command

    def rsync_path(self, relative: str) -> str:
        """`relative` (under the target folder) as rsync names it: a local path or [user@]host:path."""
        path = f"{self.path.rstrip('/')}/{relative}"
        if not self.host:
            return path
        user, at, name = self.host.rpartition("@")
        return f"{user}{at}[{name}]:{path}" if ":" in name else f"{self.host}:{path}"  # an IPv6 address


@dataclass
class Report:
    """What one deploy did."""

    target: Target
    release: str
    previous: str | None  # the release that was live before, kept for --rollback
    files: int  # regular files in the site
    sent: list[str] = field(default_factory=list)  # paths whose bytes were sent
    bytes_sent: int = 0  # what rsync wrote to the network (or, for a folder, to its receiving side)
    removed: list[str] = field(default_factory=list)  # old releases pruned

    def summary(self) -> str:
        unchanged = self.files - len(self.sent)
        base = self.target.path.rstrip("/")
        lines = [f"Deployed to {self.target}: release {self.release}, {len(self.sent)} of {self.files} files sent "
                 f"({self.bytes_sent:,} bytes), {unchanged} unchanged (hard links to the previous release).",
                 f"Live now: {base}/current (the web server's document root)."]
        if self.previous:
            lines.append(f"Previous release kept: {self.previous} (make deploy ROLLBACK=1 goes back to it).")
        if self.removed:
            lines.append(f"Old releases removed: {', '.join(self.removed)}.")
        return "\n".join(lines)


def parse_target(text: str | None, environ=os.environ) -> Target:
    """DEPLOY_TARGET (and the DEPLOY_SSH_* variables) as a Target, or a DeployError that names the bad value."""
    text = (text or "").strip()
    if not text:
        raise DeployError("DEPLOY_TARGET is not set: set it to user@host:/path (rsync over SSH) or a folder, "
                          "e.g. DEPLOY_TARGET=deploy@blog.example.fr:/srv/egoblog make deploy")
    port = None
    if text.startswith("ssh://"):
        parts = urlsplit(text)
        try:
            port = parts.port
        except ValueError:
            raise DeployError(f"DEPLOY_TARGET={text}: the port is not a number between 1 and 65535") from None
        if not parts.hostname or parts.path in ("", "/"):
            raise DeployError(f"DEPLOY_TARGET={text}: expected ssh://user@host[:port]/path/to/folder")
        host = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        path = parts.path
    elif re.match(r"[a-z][a-z0-9+.-]*://", text, re.I):
        raise DeployError(f"DEPLOY_TARGET={text}: only ssh:// URLs, user@host:/path and folders are supported")
    elif re.match(r"[^/:]+:", text):  # rsync's rule: a colon before the first slash names a host
        host, _, path = text.partition(":")
        if path.startswith(":"):
            raise DeployError(f"DEPLOY_TARGET={text}: rsync daemon targets (host::module) are not supported; "
                              "use user@host:/path, over SSH")
        if not path:
            raise DeployError(f"DEPLOY_TARGET={text}: the folder is missing after the colon (user@host:/srv/egoblog)")
    else:
        return Target(os.path.abspath(os.path.expanduser(text)))
    if host.startswith("-") or host.endswith("@") or not host:
        raise DeployError(f"DEPLOY_TARGET={text}: {host!r} is not a host name")
    port = ssh_port(environ.get("DEPLOY_SSH_PORT", ""), port, text)
    return Target(path, host, port, existing_file(environ, "DEPLOY_SSH_KEY"),
                  existing_file(environ, "DEPLOY_SSH_KNOWN_HOSTS"))


def ssh_port(value: str, in_target: int | None, target: str) -> int | None:
    if not value.strip():
        return in_target
    if not value.strip().isdigit() or not 0 < int(value) < 65536:
        raise DeployError(f"DEPLOY_SSH_PORT={value}: not a port number (1 to 65535)")
    if in_target and in_target != int(value):
        raise DeployError(f"DEPLOY_SSH_PORT={value} but DEPLOY_TARGET={target} says port {in_target}: keep one")
    return int(value)


def existing_file(environ, name: str) -> str | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    path = os.path.abspath(os.path.expanduser(value))
    if not os.path.isfile(path):
        raise DeployError(f"{name}={value}: no such file")
    return path


def built_for(output: Path) -> str:
    """The public address output/ was built for (its home page's canonical link), without the trailing slash."""
    index = output / "index.html"
    if not output.is_dir():
        raise DeployError(f"{output} does not exist: build the site first with make publish")
    if not index.is_file():
        raise DeployError(f"{index} is missing: {output} is not a built site; run make publish")
    found = CANONICAL.search(index.read_text(encoding="utf-8", errors="replace"))
    if not found:
        raise DeployError(f"{index} has no canonical link: cannot tell which settings built it; run make publish")
    return html.unescape(found[1]).rstrip("/")


def check_site(output: Path, environ=os.environ) -> str:
    """Refuse a site built by make build (pelicanconf.py); returns the address it was built for.

    A refusal, not a warning: a development build's canonical links, feeds, sitemap
    and mail records point at http://127.0.0.1, and once online search engines and
    feed readers take them. publishconf.py accepts only an https:// SITEURL, so an
    address that is not https:// means pelicanconf.py built it.
    """
    address = built_for(output)
    if not address.startswith("https://"):
        raise DeployError(f"{output} was built with pelicanconf.py (make build), for {address}: its canonical links, "
                          "feeds and sitemap would point there. Run make publish (publishconf.py), then make deploy.")
    wanted = environ.get("SITEURL", "").strip().rstrip("/")
    if wanted and wanted != address:
        raise DeployError(f"{output} was built for {address} but SITEURL is {wanted}: run make publish again.")
    return address


def run_script(target: Target, script: str, *args: str) -> str:
    """Run a PREPARE/SWITCH/ROLLBACK script in the target's folder's machine; its standard output."""
    if target.host:
        command = [*target.ssh(), target.host, "sh -s -- " + shlex.join(args)]
    else:
        command = ["sh", "-s", "--", *args]
    result = subprocess.run(command, input=script, capture_output=True, text=True)
    if result.returncode == 255 and target.host:
        raise DeployError(unreachable(target, result.stderr))
    if result.returncode:
        raise DeployError(f"{target}: {last_lines(result.stderr) or f'exit status {result.returncode}'}")
    return result.stdout


def unreachable(target: Target, stderr: str) -> str:
    """Why ssh could not run a command on the host, in words that say what to do."""
    reason = last_lines(stderr, 1).removeprefix("ssh: ").rstrip(".") or "ssh failed"
    known_hosts = target.known_hosts or "~/.ssh/known_hosts"
    host = target.host.rpartition("@")[2]
    port = target.port or 22
    if "IDENTIFICATION HAS CHANGED" in stderr:
        hint = (f"the host key of {host} is not the one in {known_hosts}: find out why with the server's administrator "
                "before changing it (it may be an attack).")
    elif "Host key verification failed" in stderr:
        hint = (f"{host}'s host key is not in {known_hosts}: check its fingerprint with the server's administrator, "
                f"then add it (ssh -p {port} {target.host} once, or ssh-keyscan into DEPLOY_SSH_KNOWN_HOSTS). "
                "Host key checking stays on.")
    elif "Permission denied" in stderr:
        hint = ("the server refused the key: set DEPLOY_SSH_KEY to the private key whose public key is in the "
                "server's authorized_keys (or load it in ssh-agent; there is no password prompt).")
    elif "Could not resolve" in stderr:
        hint = "check the host name in DEPLOY_TARGET."
    else:
        hint = f"is the server up, and sshd listening on port {port} (DEPLOY_SSH_PORT)?"
    return f"cannot reach {host} over SSH (port {port}): {reason}. Hint: {hint}"


def last_lines(text: str, count: int = 3) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()[-count:])


@contextmanager
def shared_connection(target: Target) -> Iterator[Target]:
    """The target, its steps sharing one SSH connection (ssh's ControlMaster): one handshake, not three.

    The connection is closed on the way out; if this process is killed, it closes itself after a minute.
    """
    if not target.host:
        yield target
        return
    folder = tempfile.mkdtemp(prefix="deploy-ssh-")  # private (0700): the socket opens a session on the server
    shared = replace(target, control=os.path.join(folder, "socket"))
    try:
        yield shared
    finally:
        subprocess.run([*shared.ssh(), "-O", "exit", target.host], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def prepare(target: Target, name: str) -> tuple[str | None, str | None, list[str]]:
    """Make the target folder and releases/<name>.partial; the live release, the previous one, all releases."""
    live = previous = None
    releases = []
    for line in run_script(target, PREPARE, target.path, name).splitlines():
        kind, _, value = line.partition(" ")
        release = value.rstrip("/").rpartition("/")[2]
        if kind in ("current", "previous") and RELEASE.fullmatch(release):
            live, previous = (release, previous) if kind == "current" else (live, release)
        elif kind == "release" and RELEASE.fullmatch(value):
            releases.append(value)
    return live, previous, releases


def upload(output: Path, target: Target, name: str, live: str | None) -> tuple[list[str], int, int]:
    """rsync output/ into releases/<name>.partial; the paths sent, the bytes sent, the site's file count."""
    command = ["rsync", *RSYNC_OPTIONS]
    if live:
        command.append(f"--link-dest=../{live}")  # relative to the destination folder
    if target.host:
        command += ["-e", shlex.join(target.ssh())]
    command += [f"{output}/", target.rsync_path(f"releases/{name}.partial/")]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        where = f"releases/{live}" if live else "nothing yet"
        raise DeployError(f"upload to {target} failed (rsync exit status {result.returncode}): "
                          f"{last_lines(result.stderr)}. The live site was not changed: current still points to {where}.")
    sent = [line[12:] for line in result.stdout.splitlines() if line[:2] in ("<f", ">f")]
    return sent, stat(result.stdout, "Total bytes sent"), stat(result.stdout, "Number of files", "reg")


def stat(output: str, label: str, part: str | None = None) -> int:
    """A number from rsync's --stats: `Total bytes sent: 13,428`, `Number of files: 112 (reg: 63, dir: 49)`."""
    found = re.search(rf"^{label}: ([\d,.]+)(.*)$", output, re.M)
    if not found:
        return 0
    if part:
        inner = re.search(rf"{part}: ([\d,.]+)", found[2])
        return int(re.sub(r"\D", "", inner[1])) if inner else 0
    return int(re.sub(r"\D", "", found[1]))


def to_prune(releases: list[str], keep: int, name: str, live: str | None) -> list[str]:
    """Releases beyond the `keep` newest, never the new one nor the one live now (it becomes previous)."""
    kept = {name, live}
    others = sorted((r for r in releases if r not in kept), reverse=True)
    return others[max(keep - len(kept - {None}), 0):]


def deploy(output: Path, target: Target, keep: int = KEEP, environ=os.environ, now: datetime | None = None) -> Report:
    """Upload `output` as a new release of `target` and make it live; DeployError leaves the live site as it was."""
    output = Path(output).resolve()
    check_site(output, environ)
    for command, package in (("rsync", "rsync"), ("ssh", "openssh-client")):
        if shutil.which(command) is None and (command == "rsync" or target.host):
            raise DeployError(f"{command} is not installed on this machine (Debian: apt install {package})")
    if keep < 2:
        raise DeployError(f"--keep {keep}: keep at least 2 releases (the live one and the previous, for rollback)")
    name = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime(STAMP)
    with shared_connection(target) as connection:
        live, _, releases = prepare(connection, name)
        sent, bytes_sent, files = upload(output, connection, name, live)
        removed = to_prune(releases, keep, name, live)
        run_script(connection, SWITCH, target.path, name, *removed)
    return Report(target, name, live, files, sent, bytes_sent, removed)


def rollback(target: Target) -> str:
    """Make the previous release live again (a second rollback goes forward); returns its name."""
    return run_script(target, ROLLBACK, target.path).strip().rpartition("/")[2]


def main(argv=None, environ=os.environ) -> int:
    parser = argparse.ArgumentParser(prog="python -m sitebuild.deploy", description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "output", help="the built site (default: output/)")
    parser.add_argument("--target", help="where to deploy (default: $DEPLOY_TARGET)")
    parser.add_argument("--keep", type=int, default=KEEP, help=f"releases kept on the server (default: {KEEP})")
    parser.add_argument("--rollback", action="store_true", help="make the previous release live again")
    args = parser.parse_args(argv)
    try:
        target = parse_target(args.target if args.target is not None else environ.get("DEPLOY_TARGET"), environ)
        if args.rollback:
            print(f"Rolled back {target}: current -> releases/{rollback(target)}")
        else:
            print(deploy(args.output, target, args.keep, environ).summary())
    except DeployError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
