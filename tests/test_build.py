"""`make build` refuses malformed content and leaves the previous output/ as it was."""
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


class BuildFailed(Exception):
    """make build's command exited non-zero; the message is what it printed."""


def build_site(settings, output, content=None):
    """`make build`'s own command, in its own process (Pelican's signals are process-wide)."""
    command = [sys.executable, "-m", "sitebuild", "--settings", settings, "--output", str(output)]
    if content is not None:
        command += ["--content", str(content)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        assert "Build failed: output/ was left unchanged." in result.stderr
        raise BuildFailed(result.stdout + result.stderr)


def tree_digest(folder: Path) -> str:
    """One hash over every file's path and bytes: equal digests mean an untouched folder."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


GOOD_HEADER = "Title: Un billet\nDate: 2016-03-01 10:00\nCategory: Humeurs Marketing\n"

MALFORMED = [
    ("bad date", "Title: Un billet\nDate: 2016-13-45\n\nTexte.\n", "posts/casse.md:2", "not a valid date"),
    ("missing title", "Date: 2016-03-01\nCategory: Humeurs Marketing\n\nTexte.\n", "posts/casse.md:1",
     "missing 'Title'"),
    ("empty title", "Title:\nDate: 2016-03-01\n\nTexte.\n", "posts/casse.md:1", "empty title"),
    ("missing date", "Title: Un billet\nCategory: Humeurs Marketing\n\nTexte.\n", "posts/casse.md:1",
     "missing 'Date'"),
    ("line without colon", "Title: Un billet\nDate 2016-03-01\n\nTexte.\n", "posts/casse.md:2",
     "without 'Key: value'"),
    ("misspelt key", GOOD_HEADER + "Categry: Relation client\n\nTexte.\n", "posts/casse.md:4",
     "did you mean 'Category'"),
    ("key twice", GOOD_HEADER + "Title: Encore\n\nTexte.\n", "posts/casse.md:4", "given twice"),
    ("bad status", GOOD_HEADER + "Status: publié\n\nTexte.\n", "posts/casse.md:4", "status 'publié'"),
    ("slug taken", GOOD_HEADER + "Slug: le-cr-aime\n\nTexte.\n", "posts/casse.md:4",
     "slug 'le-cr-aime' is already used by"),
]


@pytest.fixture(scope="module")
def previous_output(tmp_path_factory):
    """A good build, standing in for the output/ the author already has."""
    output = tmp_path_factory.mktemp("previous") / "output"
    build_site("pelicanconf.py", output=output)
    return output


@pytest.mark.parametrize("name, text, where, problem", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_post_stops_build_and_keeps_output(previous_output, content_copy, name, text, where, problem):
    before = tree_digest(previous_output)
    (content_copy / "posts" / "casse.md").write_text(text, encoding="utf-8")
    with pytest.raises(BuildFailed) as failure:
        build_site("pelicanconf.py", output=previous_output, content=content_copy)
    message = str(failure.value)
    assert where in message and problem in message, message
    assert tree_digest(previous_output) == before
    assert not list(previous_output.parent.glob(".building-*")), "staging folder left behind"


def test_good_build_replaces_output(previous_output, content_copy, tmp_path):
    output = tmp_path / "output"
    build_site("pelicanconf.py", output=output, content=content_copy)
    (content_copy / "posts" / "nouveau.md").write_text(
        GOOD_HEADER + "Slug: nouveau-billet\nTags: essai\nSummary: Un résumé.\n\nUn nouveau billet.\n", encoding="utf-8")
    build_site("pelicanconf.py", output=output, content=content_copy)
    assert (output / "2016" / "03" / "nouveau-billet" / "index.html").is_file()
    assert output.stat().st_mode & 0o005 == 0o005, "other users (the web server) must read output/"
    assert [p.name for p in tmp_path.iterdir() if "output" in p.name] == ["output"], "staging folder left behind"
