"""plugins/fast_build: a parallel or cached build writes exactly the bytes of a plain sequential build."""
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEQUENTIAL = ["FAST_BUILD=false", "CACHE_CONTENT=false", "LOAD_CONTENT_CACHE=false"]
PARALLEL = ["FAST_BUILD_WORKERS=2"]  # a forked helper reads with the main process
DEFAULT = []  # pelicanconf.py as it is: helpers read, the main process renders

CATEGORIES = ["Humeurs Marketing", "Relation client", "Réseaux sociaux", "Fidélisation", "Données & vie privée"]
TAGS = ["crm", "fidélité", "service client", "rgpd", "twitter", "sav", "confiance", "marques", "tgv", "humour"]
SENTENCES = [
    "Le client n'est pas roi : il est otage d'un centre d'appels qui « prend soin de lui » !",
    "Pourquoi donc les marques s'obstinent-elles à nous écrire « Cher client » ?",
    "Un programme de fidélité qui récompense l'ancienneté… par un bon de 5 % sur rien.",
    "La *vraie* relation client tient en trois mots : écouter, répondre, tenir parole.",
    "Voir [la CNIL](https://www.cnil.fr/) ; ou, à défaut, relire le RGPD (article 21).",
    "Entre 9 h et 18 h, du lundi au vendredi ; le samedi, c'est « fermé pour inventaire ».",
]


def synthetic_posts(folder: Path, count: int = 150, seed: int = 6):
    """Posts with the blog's shape: metadata, headings, a list, a quote, a link, French punctuation."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        body = [rnd.choice(SENTENCES) for _ in range(6)]
        summary = [f"Summary: {body[0]}"] if i % 3 else []  # the others get a truncated summary
        header = [f"Title: Billet synthétique n° {i} : {rnd.choice(['Ah', 'Oh', 'Bah'])} !",
                  f"Date: {2010 + i % 14}-{1 + i % 12:02d}-{1 + i % 28:02d} {8 + i % 12:02d}:{i % 60:02d}",
                  f"Category: {rnd.choice(CATEGORIES)}",
                  f"Tags: {', '.join(rnd.sample(TAGS, 3))}",
                  f"Slug: synthese-{i}"] + summary
        text = "\n\n".join([body[0], "## Le constat", body[1] + " " + body[2],
                            f"- {body[3]}\n- {body[4]}\n- un dernier point", "## Et maintenant ?",
                            "> " + body[5], " ".join(rnd.choice(SENTENCES) for _ in range(40))])
        (folder / f"synthese-{i:03d}.md").write_text("\n".join(header) + "\n\n" + text + "\n", encoding="utf-8")


def markdown_state_posts(folder: Path):
    """Two posts read one after the other: the first defines what Markdown remembers within a document
    (abbreviations, link references, footnotes); the second uses the same names without defining them.
    A parser reused between files must not carry any of it over."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zz-etat-1.md").write_text(
        "Title: Définitions\nDate: 2020-05-01 10:00\nCategory: Relation client\nSlug: etat-1\n"
        "\n"  # no Summary: Pelican would reset the parser to convert it
        "Le CRM[^1] selon [la CNIL][cnil].\n\n*[CRM]: Customer Relationship Management\n\n"
        "[cnil]: https://www.cnil.fr/\n\n[^1]: Une note.\n\n```\ncode <b>\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n",
        encoding="utf-8")
    (folder / "zz-etat-2.md").write_text(
        "Title: Usages\nDate: 2020-05-02 10:00\nCategory: Relation client\nSlug: etat-2\n\n"
        "Le CRM[^1] selon [la CNIL][cnil], sans définitions ici.\n", encoding="utf-8")


def build(content: Path, output: Path, cache: Path, extra: list[str]):
    """`make build`'s command (staged by sitebuild), with a given cache folder and extra settings."""
    command = [sys.executable, "-m", "sitebuild", "--content", str(content), "--output", str(output),
               "-e", f'CACHE_PATH="{cache}"', f'MAIL_POSTS_PATH="{output.parent / (output.name + "-mail")}"', *extra]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"build failed:\n{result.stdout}\n{result.stderr}"
    return output


def files(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_site(expected: Path, actual: Path):
    want, got = files(expected), files(actual)
    assert sorted(got) == sorted(want), "not the same files"
    different = [name for name in want if want[name] != got[name]]
    assert not different, f"{len(different)} files differ, e.g. {different[:5]}"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The project's content plus 150 synthetic posts, and its plain sequential build."""
    work = tmp_path_factory.mktemp("fast_build")
    content = work / "content"
    shutil.copytree(ROOT / "content", content)
    synthetic_posts(content / "posts" / "synthese")
    markdown_state_posts(content / "posts" / "etat")
    sequential = build(content, work / "sequential", work / "no-cache", SEQUENTIAL)
    return work, content, sequential


@pytest.fixture(scope="module")
def parallel(site):
    """The same content's first build with forked helpers, into an empty cache: (output, cache). The tests
    of a cold parallel build, of the rebuild on its cache and of the cache's layout share it."""
    work, content, _ = site
    cache = work / "cache-parallel"
    return build(content, work / "parallel", cache, PARALLEL), cache


@pytest.mark.parametrize("settings", ["helpers-render", "main-renders"])
def test_parallel_build_is_byte_identical(site, settings, request):
    work, content, sequential = site
    if settings == "helpers-render":
        output = request.getfixturevalue("parallel")[0]  # FAST_BUILD_WORKERS=2
    else:
        output = build(content, work / "main-renders", work / "cache-main-renders", DEFAULT)
    assert len(files(output)) > 150
    assert_same_site(sequential, output)


def test_cached_rebuild_of_unchanged_content_is_byte_identical(site, parallel):
    work, content, sequential = site
    _, cache = parallel
    assert any(cache.rglob("FastBuild-ArticlesGenerator")), "no content cache written"
    assert_same_site(sequential, build(content, work / "rebuilt", cache, PARALLEL))


def test_cached_rebuild_after_editing_one_post_matches_a_cold_build(site, tmp_path):
    work, original, _ = site
    content = tmp_path / "content"
    shutil.copytree(original, content)
    cache = tmp_path / "cache"
    before = build(content, tmp_path / "before", cache, PARALLEL)
    post = content / "posts" / "synthese" / "synthese-042.md"
    post.write_text(post.read_text(encoding="utf-8").replace("## Le constat", "## Le constat, corrigé")
                    + "\nUne précision ajoutée : « enfin » !\n", encoding="utf-8")
    os.utime(post, ns=(post.stat().st_atime_ns, post.stat().st_mtime_ns + 1_000_000_000))
    cold = build(content, tmp_path / "cold", tmp_path / "no-cache", SEQUENTIAL)
    warm = build(content, tmp_path / "warm", cache, PARALLEL)
    assert_same_site(cold, warm)
    cold_files = files(cold)
    changed = [name for name, data in files(before).items() if cold_files.get(name) != data]
    assert any("synthese-42" in name for name in changed), "the edit did not reach the post's page"


def test_cache_lives_outside_output_in_one_folder_per_site(parallel):
    output, cache = parallel
    folders = [p for p in cache.iterdir() if p.is_dir() and p.name != "ShareCards"]  # plugins/share_cards' own
    assert len(folders) == 1 and folders[0].name.startswith("content-")
    assert not [p for p in folders[0].iterdir() if p.name.startswith(".build-")], "private cache left behind"
    assert not list(output.rglob("*Readers*")) and not list(output.rglob("FastBuild-*"))


def test_sequential_setting_forks_nothing_and_writes_the_same(site):
    work, content, sequential = site
    one = build(content, work / "one-worker", work / "cache-one", ["FAST_BUILD_WORKERS=1"])
    assert_same_site(sequential, one)


# Warm rebuilds: whatever changed, a rebuild with the last build's cache writes what a cold build writes -----

def edit(path: Path, change):
    """Rewrite a file through `change`, with a modification time that surely differs from the cached one."""
    before = path.stat().st_mtime_ns
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def header(name: str, value: str):
    """Change (or add) one metadata line of a post."""
    def change(text):
        head, body = text.split("\n\n", 1)
        lines = [line for line in head.splitlines() if not line.startswith(f"{name}:")]
        return "\n".join(lines + [f"{name}: {value}"]) + "\n\n" + body
    return change


def test_warm_rebuilds_after_each_kind_of_change_match_a_cold_sequential_build(site, tmp_path):
    """Each step changes the content, theme or settings, rebuilds warm (cache of the step before) and cold."""
    _, original, _ = site
    content = tmp_path / "content"
    shutil.copytree(original, content)
    theme = tmp_path / "theme"
    shutil.copytree(ROOT / "theme", theme)
    posts = content / "posts" / "synthese"
    cache = tmp_path / "cache"
    common = [f'THEME="{theme}"']
    first = build(content, tmp_path / "warm-0", cache, PARALLEL + common)
    assert len(files(first)) > 150

    def add_post(text_of="synthese-010.md"):
        text = (posts / text_of).read_text(encoding="utf-8")
        (posts / "synthese-new.md").write_text(text.replace("Slug: synthese-10", "Slug: synthese-nouveau")
                                               .replace("Title: ", "Title: Tout nouveau : "), encoding="utf-8")

    steps = [
        ("no change", lambda: None),
        ("one post's body", lambda: edit(posts / "synthese-042.md",
                                         lambda t: t + "\nUne précision ajoutée : « enfin » !\n")),
        ("one post's title", lambda: edit(posts / "synthese-043.md", header("Title", "Un titre tout neuf !"))),
        ("a post's category", lambda: edit(posts / "synthese-044.md", header("Category", "Relation client"))),
        ("a tag added", lambda: edit(posts / "synthese-045.md", header("Tags", "crm, sav, une-etiquette-neuve"))),
        ("a post added", add_post),
        ("a post deleted", lambda: (posts / "synthese-046.md").unlink()),
        ("a post's date", lambda: edit(posts / "synthese-047.md", header("Date", "2030-01-02 10:00"))),
        ("a template", lambda: (theme / "templates" / "base.html").write_text(
            (theme / "templates" / "base.html").read_text(encoding="utf-8") + "<!-- modifié -->\n",
            encoding="utf-8")),
        ("a partial", lambda: edit(theme / "templates" / "partials" / "post_meta.html",
                                   lambda t: t.replace("min de lecture", "min de lecture (environ)"))),
        ("the theme's stylesheet", lambda: edit(theme / "static" / "css" / "site.css", lambda t: t + "\n/* modifié */\n")),
        ("a page's text", lambda: edit(content / "pages" / "a-propos.md", lambda t: t + "\nUne ligne de plus.\n")),
        ("a post linking to another", lambda: edit(posts / "synthese-050.md",
                                                   lambda t: t + "\nVoir [ce billet]({filename}synthese-051.md).\n")),
        ("the linked post's slug", lambda: edit(posts / "synthese-051.md", header("Slug", "synthese-renomme"))),
    ]
    # Changes to output/ alone: the sources are those of the last step, whose cold build is the reference.
    by_hand = [
        ("a page of output/ edited by hand", lambda: (first / "index.html").write_text("abîmé", encoding="utf-8")),
        ("a page of output/ deleted by hand", lambda: (first / "archives" / "index.html").unlink()),
    ]
    want = None
    for number, (what, change) in enumerate(steps + by_hand, start=1):
        change()
        warm = build(content, tmp_path / "warm-0", cache, PARALLEL + common)  # in place, as `make build` does
        if number <= len(steps):
            cold = build(content, tmp_path / f"cold-{number}", tmp_path / f"no-cache-{number}", SEQUENTIAL + common)
            want = files(cold)
            for folder in (f"cold-{number}", f"no-cache-{number}"):
                shutil.rmtree(tmp_path / folder, ignore_errors=True)
        got = files(warm)
        assert sorted(got) == sorted(want), f"after {what}: not the same files"
        different = [name for name in want if want[name] != got[name]]
        assert not different, f"after {what}: {len(different)} files differ, e.g. {different[:5]}"

    # A setting read by every page: the site cache changes, and the pages follow.
    extra = common + ['SITESUBTITLE="Un autre sous-titre"']
    warm = build(content, tmp_path / "warm-setting", cache, PARALLEL + extra)
    assert_same_site(build(content, tmp_path / "cold-setting", tmp_path / "no-cache-setting", SEQUENTIAL + extra),
                     warm)


def test_warm_rebuild_rewrites_only_the_pages_an_edit_changes(site, tmp_path):
    """Unchanged pages keep their file (rsync uploads nothing for them); the edited post's pages are new."""
    _, original, _ = site
    content = tmp_path / "content"
    shutil.copytree(original, content)
    cache, output = tmp_path / "cache", tmp_path / "output"
    build(content, output, cache, PARALLEL)
    before = {p: p.stat().st_mtime_ns for p in output.rglob("*.html")}
    edit(content / "posts" / "synthese" / "synthese-042.md", lambda t: t + "\nUne précision ajoutée !\n")
    build(content, output, cache, PARALLEL)
    rewritten = sorted(str(p.relative_to(output)) for p, mtime in before.items() if p.stat().st_mtime_ns != mtime)
    assert any("synthese-42/" in name for name in rewritten), "the edited post's page was not rewritten"
    assert "archives/index.html" in rewritten
    assert len(rewritten) < 20, f"{len(rewritten)} of {len(before)} pages rewritten: {rewritten}"
    assert_same_site(build(content, tmp_path / "cold", tmp_path / "no-cache", SEQUENTIAL), output)


def test_rebuild_failing_while_writing_pages_leaves_output_as_it_was(site, tmp_path):
    """Pages are staged beside output/ and moved in only when all are written; a failure moves nothing in."""
    _, original, _ = site
    content, theme = tmp_path / "content", tmp_path / "theme"
    shutil.copytree(original, content)
    shutil.copytree(ROOT / "theme", theme)
    cache, output = tmp_path / "cache", tmp_path / "output"
    build(content, output, cache, PARALLEL + [f'THEME="{theme}"'])
    before, records = files(output), mail_records(tmp_path / "output-mail")
    # Every post is edited, and the template fails on one post only: most pages render before the failure.
    for post in (content / "posts" / "synthese").glob("*.md"):
        edit(post, lambda t: t + "\nUne précision ajoutée !\n")
    template = theme / "templates" / "article.html"
    template.write_text(template.read_text(encoding="utf-8").replace(
        "{% block content %}", "{% block content %}{% if article.slug == 'synthese-99' %}{{ panne() }}{% endif %}"),
        encoding="utf-8")
    command = [sys.executable, "-m", "sitebuild", "--content", str(content), "--output", str(output),
               "-e", f'CACHE_PATH="{cache}"', f'MAIL_POSTS_PATH="{tmp_path / "output-mail"}"', f'THEME="{theme}"',
               "FAST_BUILD_WORKERS=2"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and "panne" in result.stdout + result.stderr
    assert files(output) == before
    assert mail_records(tmp_path / "output-mail") == records, "the mail records of a failed build were kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "content", "output", "output-mail", "theme"]


def mail_records(folder: Path) -> list:
    with closing(sqlite3.connect(folder / "records.sqlite3")) as db:
        return db.execute("SELECT slug, stamp, record FROM posts ORDER BY slug").fetchall()


def test_output_retention_survives_rebuilds(tmp_path):
    """OUTPUT_RETENTION (say, the .git of a GitHub Pages checkout) is never removed, as with stock Pelican.
    The project's content alone: what is kept does not depend on how many posts there are."""
    content = ROOT / "content"
    output = tmp_path / "output"
    settings = PARALLEL + ['OUTPUT_RETENTION=[".git"]']
    build(content, output, tmp_path / "no-cache", settings + ["CACHE_CONTENT=false"])  # output/ walked
    (output / ".git").mkdir()
    (output / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    build(content, output, tmp_path / "no-cache", settings + ["CACHE_CONTENT=false"])
    build(content, output, tmp_path / "cache", settings)
    build(content, output, tmp_path / "cache", settings)  # the manifest's list of files
    assert (output / ".git" / "HEAD").read_text(encoding="utf-8") == "ref: refs/heads/main\n"


def test_fingerprint_follows_what_context_reading_functions_declare():
    """A Jinja global taking the whole context reads names its template never mentions: it must declare them
    (context_names), or its pages are always rendered (no fingerprint)."""
    import jinja2

    sys.path.insert(0, str(ROOT / "plugins"))
    from fast_build.fingerprints import Fingerprints

    @jinja2.pass_context
    def undeclared(context):
        return context.get("category")

    @jinja2.pass_context
    def declared(context):
        return context.get("category")
    declared.context_names = ("category",)

    env = jinja2.Environment(loader=jinja2.DictLoader({"a.html": "{{ undeclared() }}", "b.html": "{{ declared() }}"}))
    env.globals.update(undeclared=undeclared, declared=declared)
    fingerprints = Fingerprints({})
    assert fingerprints.page(env.get_template("a.html"), {"category": "crm"}, {}) is None
    template = env.get_template("b.html")
    crm = fingerprints.page(template, {"category": "crm"}, {})
    assert crm is not None and crm == fingerprints.page(template, {"category": "crm"}, {})
    assert crm != fingerprints.page(template, {"category": "sav"}, {})
