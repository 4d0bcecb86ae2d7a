"""Shared fixtures: a real Pelican build of the project into a temporary folder; the one rule
for a missing external tool (skip locally, fail under CI)."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import settings

# Hypothesis's default 200 ms deadline per example is a timed test: on a shared 2-core machine it fails
# for load, not for a bug. Properties are checked, not speed (benchmarks measure that).
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

ROOT = Path(__file__).resolve().parent.parent


# -- external tools: skip locally, fail under CI --------------------------------------------

def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing(what: str) -> NoReturn:
    """An external tool a test needs (Chromium, Java, a node_modules package) is absent.

    Outside CI the test is skipped with `what` as the reason; under CI=true it fails: a suite
    that skips there proves nothing. Only for tools outside the project: the project's own
    modules are imported plainly, so their absence is an error.
    """
    if in_ci():
        pytest.fail(f"{what} (CI=true: a missing tool fails the run)", pytrace=False)
    pytest.skip(f"{what} (skipped outside CI only)")


def require_command(name: str, install: str) -> str:
    """The path of command `name`, or missing() with how to install it."""
    path = shutil.which(name)
    if path is None:
        missing(f"`{name}` not found on PATH ({install})")
    return path


def require_file(path: Path, install: str) -> Path:
    """`path` if it is a file, or missing() with how to get it."""
    if not Path(path).is_file():
        missing(f"{path} not found ({install})")
    return Path(path)


def log_of(path: Path) -> str:
    """A server's log file, or nothing if it has not written one."""
    return path.read_text() if path.exists() else ""


def wait_until_serving(process: subprocess.Popen, probe, errors: tuple, name: str, output) -> None:
    """Until `probe()`, which talks to the server on its port, succeeds: a probe, not a fixed wait. If the
    process ends first, or 20 s pass, it is killed and the test fails with `output()`, its own words."""
    deadline = time.monotonic() + 20
    while True:
        try:
            probe()
            return
        except errors:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"{name} did not start: {output()}")
            time.sleep(0.05)


_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    """Under CI, a skip from anywhere (not only missing()) fails the run."""
    if in_ci() and _skipped and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter):
    if in_ci() and _skipped:
        terminalreporter.write_line(f"CI=true: {len(_skipped)} skipped test(s) fail the run: "
                                    + ", ".join(_skipped[:10]), red=True)


# Browser fixtures live in tests/fixtures/browser.py; registered here so one Chromium serves every
# browser test module (Playwright's sync API allows one running instance per process).
pytest_plugins = ["tests.fixtures.browser", "tests.fixtures.dns", "tests.fixtures.postfix", "tests.fixtures.postgres"]


def build(content: Path, output: Path, settings: str = "pelicanconf.py", env=None, check=True, args=()):
    """Run Pelican as `make build` does, in a subprocess (plugins register signals once per process)."""
    result = subprocess.run(
        [sys.executable, "-m", "pelican", str(content), "-s", str(ROOT / settings), "-o", str(output),
         "--fatal", "errors", *args],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"build failed:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """The project's own content, built once for the session."""
    out = tmp_path_factory.mktemp("site") / "output"
    build(ROOT / "content", out)
    return out


@pytest.fixture
def content_copy(tmp_path) -> Path:
    """A writable copy of content/, for tests that add or break a post."""
    dest = tmp_path / "content"
    shutil.copytree(ROOT / "content", dest)
    return dest
