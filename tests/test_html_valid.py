"""The Nu HTML Checker (vnu.jar, from node_modules/) finds no error on any page of the built site."""
import json
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

VNU = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"


def vnu(*args) -> list[dict]:
    """Error messages of one checker run (a single JVM for the whole folder: a couple of seconds)."""
    if not shutil.which("java"):
        pytest.fail("the Nu HTML Checker needs Java (apt-get install default-jre-headless)")
    if not VNU.is_file():
        pytest.fail(f"{VNU} is missing: run `npm ci` (make test does)")
    result = subprocess.run(["java", "-jar", str(VNU), "--errors-only", "--format", "json", *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    return [m for m in json.loads(result.stderr or '{"messages": []}')["messages"] if m["type"] != "info"]


def test_every_page_is_valid_html(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 10
    errors = vnu("--skip-non-html", site)
    assert not errors, "\n".join(f"{m.get('url', '')}:{m.get('lastLine', '')}: {m['message']}" for m in errors)


def test_stylesheet_is_valid_css(site):
    errors = vnu("--css", site / "theme" / "css" / "site.css")
    assert not errors, "\n".join(f"{m.get('lastLine', '')}: {m['message']}" for m in errors)
