"""The Nu HTML Checker (vnu.jar, from node_modules/) finds no error on any page of the built site."""
import json
import subprocess

from tests.conftest import ROOT, require_command, require_file

VNU = ROOT / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
# A checker run lasts seconds: the JVM's optimising compiler (C2) costs more than it gives back, so only the
# quick one (C1) runs: half the CPU time (4 s -> 2 s on one page, 11 s -> 5 s on 400), the same report.
# C1's code takes more stack than the checker's default thread stack allows (StackOverflowError): 8 MB.
JAVA_OPTIONS = ["-XX:TieredStopAtLevel=1", "-Xss8m"]


def vnu(*args) -> list[dict]:
    """Error messages of one checker run (a single JVM for the whole folder: a couple of seconds).

    The exit status and the report must agree: 0 with no error, 1 with at least one. Anything
    else (a crash, no report at all, a report that is not JSON) fails the test: silence is not
    a clean bill.
    """
    java = require_command("java", "apt-get install default-jre-headless")
    jar = require_file(VNU, "run `npm ci`, as make test does")
    result = subprocess.run([java, *JAVA_OPTIONS, "-jar", str(jar), "--errors-only", "--format", "json", *map(str, args)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), f"vnu exited with {result.returncode}:\n{result.stderr}"
    try:
        messages = json.loads(result.stderr)["messages"]
    except (ValueError, KeyError) as exc:
        raise AssertionError(f"vnu gave no JSON report ({exc}), exit {result.returncode}:\n"
                             f"{result.stdout}\n{result.stderr}") from None
    errors = [m for m in messages if m["type"] != "info"]
    assert (result.returncode == 1) == bool(errors), (result.returncode, messages)
    return errors


def test_every_page_is_valid_html(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) > 10
    # the « Suivre ce fil » pages (plugins/feeds/follow.py) are among them
    assert site / "suivre" / "index.html" in pages and site / "categorie" / "ethiquebiz" / "suivre" / "index.html" in pages
    errors = vnu("--skip-non-html", site)
    assert not errors, "\n".join(f"{m.get('url', '')}:{m.get('lastLine', '')}: {m['message']}" for m in errors)


def test_stylesheet_is_valid_css(site):
    errors = vnu("--css", site / "theme" / "css" / "site.css")
    assert not errors, "\n".join(f"{m.get('lastLine', '')}: {m['message']}" for m in errors)


def test_the_checker_reports_an_invalid_page(tmp_path):
    """The checker as run above does see errors: an invalid page and an invalid stylesheet are reported."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "valide.html").write_text(
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Bon</title></head>'
        "<body><p>Bonjour</p></body></html>", encoding="utf-8")
    (folder / "invalide.html").write_text(
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Mauvais</title></head>'
        "<body><p>Bonjour<div><span>non fermé</p></body></html>", encoding="utf-8")
    errors = vnu("--skip-non-html", folder)
    assert errors, "vnu reported nothing on an invalid page"
    assert {m["url"].rsplit("/", 1)[-1] for m in errors} == {"invalide.html"}
    css = tmp_path / "invalide.css"
    css.write_text("p { color: pas-une-couleur; margin: 1px 2px 3px 4px 5px; }\n", encoding="utf-8")
    assert vnu("--css", css), "vnu reported nothing on an invalid stylesheet"
