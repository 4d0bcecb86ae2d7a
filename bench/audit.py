"""`make audit`: Lighthouse on the home page and a post, served as `make serve` serves them.

Builds the site into a temporary folder, starts sitebuild.devserver on a free loopback
port (throwaway store and outbox), runs Lighthouse 13.5.0 (fetched on demand by npx, not a
dependency of the project) with Debian's Chromium, prints the four category scores of each
page and the audits that cost points, and exits 1 if any score is under 95.

    python bench/audit.py [--min 95]

CHROME_PATH (default /usr/bin/chromium) picks the browser. Reports (JSON) are written to
test-artifacts/lighthouse/.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIGHTHOUSE = "lighthouse@13.5.0"
CATEGORIES = ["performance", "accessibility", "best-practices", "seo"]
PAGES = {"accueil": "/", "billet": "/2017/08/le-like-abondant/"}
REPORTS = ROOT / "test-artifacts" / "lighthouse"
# --disable-background-networking and friends: Chromium must not call Google's hosts.
CHROME_FLAGS = " ".join([
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-default-apps",
    "--disable-domain-reliability",
])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"the dev server stopped (exit {server.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    sys.exit(f"the dev server did not answer on {url}")


def lighthouse(url: str, report: Path) -> dict:
    """One Lighthouse run (default mobile profile, simulated throttling); the parsed JSON report."""
    command = ["npx", "--yes", LIGHTHOUSE, url, "--quiet", "--output=json", f"--output-path={report}",
               f"--only-categories={','.join(CATEGORIES)}", f"--chrome-flags={CHROME_FLAGS}"]
    env = {**os.environ, "CHROME_PATH": os.environ.get("CHROME_PATH", "/usr/bin/chromium")}
    result = subprocess.run(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0 or not report.exists():
        sys.exit(f"lighthouse failed on {url}:\n{result.stderr[-3000:]}")
    return json.loads(report.read_text())


def losses(data: dict, category: str, weighted: bool = True) -> list[str]:
    """Audits of a category that did not score 1, with Lighthouse's figure: the weighted ones
    (they cost points), or with weighted=False the unweighted insights (advice only)."""
    out = []
    for ref in data["categories"][category]["auditRefs"]:
        audit = data["audits"][ref["id"]]
        if (ref["weight"] > 0) == weighted and audit.get("score") is not None and audit["score"] < 1:
            shown = audit.get("displayValue") or ""
            out.append(f"{ref['id']} ({audit['score']:.2f}{', ' + shown if shown else ''})")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min", type=int, default=95, help="lowest acceptable score (default 95)")
    args = parser.parse_args(argv)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    REPORTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="audit-") as tmp:
        tmp = Path(tmp)
        # PORT: pelicanconf.py makes canonical and Open Graph URLs from it, so they name this server.
        env = {**os.environ, "PORT": str(port), "NEWSLETTER_DB": str(tmp / "subscribers.sqlite3"),
               "NEWSLETTER_OUTBOX": str(tmp / "outbox"), "NEWSLETTER_SECRET": secrets.token_urlsafe(24)}
        print(f"Building the site for {base} …", flush=True)
        subprocess.run([sys.executable, "-m", "pelican", "content", "-s", "pelicanconf.py", "-o", str(tmp / "output"),
                        "--fatal", "errors", "--quiet"], cwd=ROOT, env=env, check=True, stdin=subprocess.DEVNULL)
        server = subprocess.Popen(
            [sys.executable, "-m", "sitebuild.devserver", "--port", str(port), "--output", str(tmp / "output"),
             "--no-watch"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_up(base + "/", server)
            scores = {}
            for name, path in PAGES.items():
                print(f"Lighthouse {LIGHTHOUSE} on {base}{path} …", flush=True)
                data = lighthouse(base + path, REPORTS / f"{name}.json")
                scores[name] = {c: round(data["categories"][c]["score"] * 100) for c in CATEGORIES}
                for category in CATEGORIES:
                    lost, advice = losses(data, category), losses(data, category, weighted=False)
                    if lost:
                        print(f"  {category}: points lost on {', '.join(lost)}")
                    if advice:
                        print(f"  {category}: advice, no points lost: {', '.join(advice)}")
        finally:
            server.terminate()
            server.wait(10)

    print(f"\n{'page':<10}" + "".join(f"{c:>16}" for c in CATEGORIES))
    for name, row in scores.items():
        print(f"{name:<10}" + "".join(f"{row[c]:>16}" for c in CATEGORIES))
    low = [f"{name} {c} {s}" for name, row in scores.items() for c, s in row.items() if s < args.min]
    if low:
        print(f"\nUnder {args.min}: {', '.join(low)}")
        return 1
    print(f"\nEvery score is {args.min} or more. Reports: {REPORTS.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
