"""Shared fixtures: a real Pelican build of the project into a temporary folder."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Browser fixtures live here so one Chromium serves every browser test module (Playwright's
# sync API allows one running instance per process).
from tests.browser import browser, served_site  # noqa: F401,E402

ROOT = Path(__file__).resolve().parent.parent


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
