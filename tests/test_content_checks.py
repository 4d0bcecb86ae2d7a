"""content_checks accepts what Pelican accepts, and still stops the build on real mistakes, with file and line."""
from pathlib import Path
from types import SimpleNamespace

import pytest
from pelican.settings import read_settings

from plugins.content_checks import ContentError, check_content
from tests.conftest import build

POST = "Title: Un billet\nDate: 2015-10-17 08:00\nCategory: Humeurs\n\nTexte.\n"


def write(root: Path, files: dict) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return root


def problems(root: Path, **settings) -> list[str]:
    """What check_content reports with Pelican's default settings (plus `settings`), one line a problem."""
    configured = read_settings(override={"PATH": str(root), "CACHE_CONTENT": False, **settings})
    try:
        check_content(SimpleNamespace(settings=configured))
    except ContentError as error:
        return str(error).splitlines()[1:]
    return []


# --- accepted, as Pelican accepts them ----------------------------------------------------------

@pytest.mark.parametrize("files, settings", [
    ({"posts/bom.md": "\ufeff" + POST}, {}),  # a UTF-8 byte-order mark
    ({"posts/yaml.md": "---\n" + POST.replace("\n\n", "\n---\n")}, {}),  # a ---fenced header
    ({"posts/yaml.md": "---\nTitle: Un\nDate: 2015-10-17\n---\nTexte sans ligne vide.\n"}, {}),
    ({"posts/indent.md": "Title: Un\nDate: 2015-10-17\nSummary: une ligne\n    et la suite\n\nTexte.\n"}, {}),
    ({"posts/2015-10-17-du-nom.md": "Title: Un\n\nTexte.\n"}, {}),  # Pelican's default FILENAME_METADATA
    ({"posts/2015-10-17_du-nom.md": "Title: Un\n\nTexte.\n"},
     {"FILENAME_METADATA": r"(?P<date>\d{4}-\d{2}-\d{2})_(?P<slug>.*)"}),
    ({"posts/2015-10-17/billet.md": "Title: Un\n\nTexte.\n"},
     {"PATH_METADATA": r"posts/(?P<date>\d{4}-\d{2}-\d{2})/.*"}),
    ({"posts/billet.md": "Title: Un\n\nTexte.\n"}, {"DEFAULT_DATE": "fs"}),
    ({"pages/a-propos.md": "Title: À propos\n\nTexte.\n"}, {}),  # a page under the default PAGE_PATHS: no Date
    ({"posts/un.md": POST.replace("\n\n", "\nSlug: un\n\n"),
      "posts/un-en.md": POST.replace("\n\n", "\nSlug: un\nLang: en\n\n")},
     {"DEFAULT_LANG": "fr"}),  # a translation: the same slug in another language
    ({"posts/un.md": POST.replace("\n\n", "\nSlug: un\n\n"),
      "posts/un-bis.md": POST.replace("\n\n", "\nSlug: un\nTranslation: true\n\n")}, {}),
    ({"posts/notes.txt": "n'importe quoi"}, {}),  # not Markdown: not a post
])
def test_what_pelican_accepts_is_accepted(tmp_path, files, settings):
    assert problems(write(tmp_path, files), **settings) == []


# --- real mistakes, with file and line ------------------------------------------------------------

@pytest.mark.parametrize("files, expected", [
    ({"posts/a.md": "Title: Un\nDate: 2015-13-45\n\nTexte.\n"}, "posts/a.md:2: Date '2015-13-45' is not a valid date"),
    ({"posts/a.md": "Date: 2015-10-17\n\nTexte.\n"}, "posts/a.md:1: missing 'Title' metadata"),
    ({"posts/a.md": "Title: \nDate: 2015-10-17\n\nTexte.\n"}, "posts/a.md:1: empty title"),
    ({"posts/a.md": "Title: Un\nDate: 2015-10-17\nUn texte collé\n"},
     "posts/a.md:3: metadata line without 'Key: value' form: 'Un texte collé'"),
    ({"posts/a.md": "---\nTitle: Un\nDate: 2015-10-17\nUn texte collé\n---\n"},
     "posts/a.md:4: metadata line without 'Key: value' form"),
    ({"posts/a.md": "Title: Un\nDate: 2015-10-17\nCategroy: Humeurs\n\nTexte.\n"},
     "posts/a.md:3: unknown metadata 'Categroy' (did you mean 'Category'?)"),
    ({"posts/a.md": "Title: Un\n\nTexte.\n"}, "posts/a.md:1: missing 'Date' metadata"),
    ({"posts/a.md": "Bonjour à tous.\n\nTexte.\n"}, "posts/a.md:1: no metadata header"),
    ({"posts/a.md": "\ufeffTitle: Un\nDate: hier\n\n"}, "posts/a.md:2: Date 'hier' is not a valid date"),
    ({"posts/a.md": "Title: Un\nDate: 2015-10-17\nStatus: publié\n\n"}, "posts/a.md:3: status 'publié'"),
    ({"posts/a.md": "Title: Un\nDate: 2015-10-17\nTitle: Deux\n\n"}, "posts/a.md:3: 'Title' given twice"),
    ({"posts/2015-13-45-a.md": "Title: Un\n\n"}, "taken from the file's path is not a valid date"),
    ({"pages/a.md": "Title: Un\nCategroy: x\n\n"}, "pages/a.md:2: unknown metadata 'Categroy'"),
    ({"pages/a.md": "Titel: Un\n\n"}, "pages/a.md:1: unknown metadata 'Titel' (did you mean 'Title'?)"),
    ({"pages/a.md": "Lang: fr\n\n"}, "pages/a.md:1: missing 'Title' metadata"),
    ({"posts/a.markdown": "Title: Un\n\n"}, "posts/a.markdown:1: missing 'Date' metadata"),
    ({"posts/a.md": "Title: Un\nDate: 2015-10-17\nSlug: un\n\n", "posts/b.md": "Title: Deux\nDate: 2015-10-18\nSlug: un\n\n"},
     "posts/b.md:3: slug 'un' is already used by"),
    ({"posts/a.md": "Title: Un\nDate: 2015-10-17\nSlug: un\nLang: en\n\n",
      "posts/b.md": "Title: Deux\nDate: 2015-10-18\nSlug: un\nLang: en\n\n"}, "posts/b.md:3: slug 'un' is already used by"),
])
def test_real_mistakes_are_reported_with_file_and_line(tmp_path, monkeypatch, files, expected):
    monkeypatch.chdir(tmp_path)  # paths are shown relative to the working folder
    found = problems(write(tmp_path, files))
    assert len(found) == 1 and expected in found[0], found


def test_every_problem_is_listed_at_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"posts/a.md": "Title: Un\nDate: demain\n\n", "posts/b.md": "Date: 2015-10-17\n\n"})
    assert [line.split(":")[0].strip() for line in problems(tmp_path)] == ["posts/a.md", "posts/b.md"]


def test_pelican_builds_what_the_checks_accept(content_copy, tmp_path):
    """The same cases through a real build: Pelican reads them, and the checks let the build through."""
    write(content_copy, {
        "posts/bom.md": "\ufeffTitle: Avec BOM\nDate: 2016-01-02\nSlug: avec-bom\n\nTexte.\n",
        "posts/yaml.md": "---\nTitle: Entre tirets\nDate: 2016-01-03\nSlug: entre-tirets\n---\nTexte.\n",
        "posts/2016-01-04-date-du-nom.md": "Title: Daté par son nom\nSlug: date-du-nom\n\nTexte.\n",
        "posts/le-cr-aime-en.md": "Title: The CR loves\nDate: 2015-11-15\nSlug: le-cr-aime\nLang: en\n\nText.\n",
        "pages/mentions.md": "Title: Mentions\n\nTexte.\n",
    })
    out = tmp_path / "output"
    build(content_copy, out)
    for path in ("2016/01/avec-bom/index.html", "2016/01/entre-tirets/index.html", "2016/01/date-du-nom/index.html",
                 "mentions/index.html", "le-cr-aime-en.html"):
        assert (out / path).is_file(), path
    assert "Entre tirets" in (out / "2016/01/entre-tirets/index.html").read_text(encoding="utf-8")
