"""plugins/fast_build, judged from outside: a build with the accelerator writes the very bytes stock Pelican writes.

The specification of the build accelerator, in tests. Every build runs in a fresh subprocess
(tests/fixtures/torture/runner.py: Pelican's signals are process-global), on a copy of the torture corpus
(tests/fixtures/torture/: reST and Markdown, drafts, hidden posts, translations, several authors, internal
links, static files, a page with its own template, accents in slugs, a future post, every index paginated
by 2...), with Pelican's default theme (notmyidea) plus small overrides that print what third-party
plugins attach to posts. Three kinds of build:

- "on": PLUGINS = [...plugins under test, "fast_build"], CACHE_CONTENT and LOAD_CONTENT_CACHE True, a
  CACHE_PATH in tmp (kept across the builds of one test: that is what makes a build warm);
- "off": the same with FAST_BUILD = False;
- "stock": no fast_build at all, no cache, a fresh output folder: the reference.

Cases: (a) cold builds; (b) warm builds after each kind of edit, in one sequence on one cache, each against
a cold stock build of the same content; (c) two or three runs in one process (pelican --autoreload); (d)
the project's own site with its PLUGINS in other orders; (e) third-party plugins from PyPI
(requirements-plugins.txt, installed into .pypi-plugins/ by the session fixture below).

Control runs: TORTURE_ACCELERATOR=off makes every "on" build a FAST_BUILD = False build, and
TORTURE_ACCELERATOR=absent drops fast_build from the "on" and "off" builds' PLUGINS (stock Pelican with its
own content cache). With "absent", every test of this module must pass, which shows each one can pass (and
test_tree_diff_reports_differences shows the comparison can fail); "off" must too, except where fast_build
disturbs Pelican even when turned off.

One case: .venv/bin/python -m pytest tests/test_accelerator_equivalence.py -k "warm and title"
"""
import difflib
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pelican
import pytest

from tests.fixtures.torture.runner import apply_edits
from tests.conftest import missing

ROOT = Path(__file__).resolve().parent.parent
TORTURE = ROOT / "tests" / "fixtures" / "torture"
RUNNER = TORTURE / "runner.py"
TORTURE_SETTINGS = TORTURE / "pelicanconf.py"
PLUGIN_REQUIREMENTS = ROOT / "requirements-plugins.txt"
PYPI_PLUGINS = ROOT / ".pypi-plugins"
BUILD_TIMEOUT = 180
# Control runs (they show that every test here can pass): TORTURE_ACCELERATOR=off builds the "on" builds with
# FAST_BUILD = False; TORTURE_ACCELERATOR=absent removes fast_build from their PLUGINS (and from the "off"
# builds'), leaving stock Pelican with its own content cache.
ACCELERATOR = os.environ.get("TORTURE_ACCELERATOR", "on")
assert ACCELERATOR in ("on", "off", "absent"), "TORTURE_ACCELERATOR: on, off or absent"
ACCELERATOR_ON = ACCELERATOR == "on"
# Every build reads the clock through the runner's fake one: the post dated 2031 stays in the future
# whatever the real date, until a step says time has passed.
NOW = "2026-06-01T00:00:00+00:00"
LATER = "2032-01-01T00:00:00+00:00"
# Forked helpers read and render even this small corpus.
PARALLEL = {"FAST_BUILD_WORKERS": 2, "FAST_BUILD_MIN_BATCH": 1}


# Comparing output trees -------------------------------------------------------------------------------

def tree_files(root: Path) -> dict:
    """{relative path: bytes} of every file under root (a symlink: its target, marked)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in files:
            path = Path(folder, name)
            relative = str(path.relative_to(root))
            found[relative] = (b"symlink->" + os.readlink(path).encode()) if path.is_symlink() else path.read_bytes()
    return found


def tree_diff(expected: Path, actual: Path, label: str = "") -> str | None:
    """None if both trees hold the same files with the same bytes; else a readable report: the first
    missing, unexpected and differing files, and a unified diff of the first differing one."""
    want, got = tree_files(expected), tree_files(actual)
    missing = sorted(want.keys() - got.keys())
    unexpected = sorted(got.keys() - want.keys())
    differing = sorted(name for name in want.keys() & got.keys() if want[name] != got[name])
    if not (missing or unexpected or differing):
        return None
    lines = [f"{label}: the output differs from the reference",
             f"  reference: {expected}", f"  actual:    {actual}"]
    for title, names in (("missing (only in the reference)", missing), ("unexpected (only in the actual)", unexpected),
                         ("differing", differing)):
        if names:
            shown = ", ".join(names[:8]) + (f", ... ({len(names) - 8} more)" if len(names) > 8 else "")
            lines.append(f"  {len(names)} {title}: {shown}")
    if differing:
        first = differing[0]
        before = want[first].decode("utf-8", "replace").splitlines()
        after = got[first].decode("utf-8", "replace").splitlines()
        diff = list(difflib.unified_diff(before, after, f"reference/{first}", f"actual/{first}", n=2, lineterm=""))
        lines.append(f"  diff of {first}:")
        lines += ["    " + line[:300] for line in diff[:60]]
        if len(diff) > 60:
            lines.append(f"    ... ({len(diff) - 60} more diff lines)")
    return "\n".join(lines)


def assert_same_tree(expected: Path, actual: Path, label: str = ""):
    problem = tree_diff(expected, actual, label)
    if problem:
        pytest.fail(problem)


def test_tree_diff_reports_differences(tmp_path):
    """The comparison itself can fail: a changed byte, a missing and an extra file are all reported."""
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "sub").mkdir(parents=True)
        (root / "same.html").write_text("<p>même</p>\n", encoding="utf-8")
    (a / "sub" / "page.html").write_text("<h1>Titre</h1>\n<p>un</p>\n", encoding="utf-8")
    (b / "sub" / "page.html").write_text("<h1>Titre</h1>\n<p>deux</p>\n", encoding="utf-8")
    (a / "gone.html").write_text("x", encoding="utf-8")
    (b / "new.html").write_text("y", encoding="utf-8")
    report = tree_diff(a, b, "self-test")
    assert report is not None
    assert "1 missing (only in the reference): gone.html" in report
    assert "1 unexpected (only in the actual): new.html" in report
    assert "1 differing: sub/page.html" in report
    assert "-<p>un</p>" in report and "+<p>deux</p>" in report
    (b / "new.html").unlink()
    (a / "gone.html").unlink()
    (b / "sub" / "page.html").write_bytes((a / "sub" / "page.html").read_bytes())
    assert tree_diff(a, b) is None


# Building ---------------------------------------------------------------------------------------------

def site_copy(dest: Path) -> Path:
    """A writable copy of the torture site (content/ and templates/) under dest."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(TORTURE / "content", dest / "content")
    shutil.copytree(TORTURE / "templates", dest / "templates")
    return dest


def settings(kind: str, site: Path, output: Path, cache: Path, plugins=(), extra=None) -> dict:
    """The overrides of one build of the torture site. kind: "on", "off" or "stock" (module docstring)."""
    override = {"PATH": str(site / "content"), "OUTPUT_PATH": str(output), "CACHE_PATH": str(cache),
                "THEME_TEMPLATES_OVERRIDES": [str(site / "templates")]}
    if kind == "stock":
        override.update(PLUGINS=list(plugins), CACHE_CONTENT=False, LOAD_CONTENT_CACHE=False)
    else:
        accelerator = [] if ACCELERATOR == "absent" else ["fast_build"]
        override.update(PLUGIN_PATHS=[str(ROOT / "plugins")], PLUGINS=[*plugins, *accelerator],
                        CACHE_CONTENT=True, LOAD_CONTENT_CACHE=True,
                        FAST_BUILD=(kind == "on" and ACCELERATOR_ON))
    override.update(extra or {})
    return override


def run_runner(spec: dict, workdir: Path, label: str):
    """Run tests/fixtures/torture/runner.py on spec in a fresh process; fail with its output if it fails."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_file = workdir / f"spec-{hashlib.sha1(label.encode()).hexdigest()[:10]}.json"
    spec_file.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    result = subprocess.run([sys.executable, str(RUNNER), str(spec_file)], cwd=ROOT, capture_output=True,
                            text=True, timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise AssertionError(f"{label}: the build failed (exit {result.returncode}):\n{tail}")
    return result


def build(kind: str, site: Path, output: Path, cache: Path, plugins=(), extra=None, now=NOW,
          settings_file=TORTURE_SETTINGS, pypi=False, label=None) -> Path:
    """One build in a fresh process; returns the output folder."""
    spec = {"settings": str(settings_file), "override": settings(kind, site, output, cache, plugins, extra),
            "now": now, "pypi_plugins": str(PYPI_PLUGINS) if pypi else None}
    result = run_runner(spec, output.parent, label or f"{kind} build into {output}")
    (output.parent / f"{output.name}.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    return output


def stock(site: Path, workdir: Path, name: str, **kwargs) -> Path:
    """A cold stock build into a fresh folder: the reference."""
    return build("stock", site, workdir / name, workdir / (name + "-cache"), label=f"stock build {name}", **kwargs)


@pytest.fixture(scope="session")
def shared_dir(tmp_path_factory) -> Path:
    """A folder every xdist worker of this session sees (for the results computed once)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(shared: Path, name: str, compute):
    """compute() run by one process of the session (xdist workers included); its JSON result shared."""
    result_file = shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not result_file.exists():
                result_file.write_text(json.dumps(compute()), encoding="utf-8")
            return json.loads(result_file.read_text(encoding="utf-8"))
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# (a) cold builds --------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def torture_site(tmp_path_factory) -> Path:
    """A read-only copy of the torture site and its cold stock build (one per process)."""
    root = tmp_path_factory.mktemp("torture")
    site_copy(root / "site")
    stock(root / "site", root, "stock")
    return root


@pytest.mark.parametrize("profile", ["default", "parallel"])
def test_cold_build_on_equals_stock(torture_site, tmp_path, profile):
    """(a) A cold build with the accelerator writes stock Pelican's bytes."""
    extra = PARALLEL if profile == "parallel" else {}
    out = build("on", torture_site / "site", tmp_path / "on", tmp_path / "cache", extra=extra)
    assert_same_tree(torture_site / "stock", out, f"cold build, accelerator on ({profile})")


def test_cold_build_off_equals_stock(torture_site, tmp_path):
    """(a) FAST_BUILD = False is a plain Pelican build."""
    out = build("off", torture_site / "site", tmp_path / "off", tmp_path / "cache")
    assert_same_tree(torture_site / "stock", out, "cold build, FAST_BUILD = False")


def test_cold_torture_corpus_is_what_it_claims(torture_site):
    """The corpus exercises what the spec says (a guard against a fixture that silently stops covering)."""
    out = torture_site / "stock"
    names = set(tree_files(out))
    for expected in ("premier-billet.html",  # date and slug from the file name
                     "deuxieme-billet.html",  # reST
                     "traduction.html", "traduction-en.html",  # a translation
                     "drafts/un-brouillon-pas-fini.html", "drafts/billet-du-futur.html",  # draft, future post
                     "un-billet-cache.html", "pages/page-cachee.html",  # hidden
                     "café-crème.html", "noel-a-lhotel-chateau.html",  # non-ASCII slug and title
                     "billet-avec-bom.html", "en-tete-delimite.html",  # BOM, --- header
                     "images/photo.png", "fiche.pdf",  # {static}, {attach}
                     "index3.html", "tag/crm2.html", "category/humeurs2.html", "author/bob-martin2.html"):
        assert expected in names, expected
    contact = (out / "pages" / "contact.html").read_text(encoding="utf-8")
    assert "Gabarit spécial, version 1." in contact
    liens = (out / "des-liens-internes-partout.html").read_text(encoding="utf-8")
    assert 'href="https://torture.example/deuxieme-billet.html"' in liens
    assert 'href="https://torture.example/fiche.pdf"' in liens


# (b) warm builds after each kind of edit ---------------------------------------------------------------

def _replace(path, old, new):
    return {"op": "replace", "path": path, "old": old, "new": new}


NEW_POST = """Title: Un billet ajouté
Date: 2024-03-20 10:00
Category: Humeurs
Tags: crm, nouveau
Author: Alice Dupont

Ajouté entre deux builds.
"""

# (name, edits relative to the site folder, settings changed from then on, clock from then on)
WARM_STEPS = [
    ("body", [_replace("content/posts/dernier.md", "Texte du dernier billet", "Texte remanié du dernier billet")],
     None, None),
    ("title", [_replace("content/posts/deuxieme.rst", "Deuxième billet : réponse au premier",
                        "Deuxième billet : réponse tardive")], None, None),
    ("date", [_replace("content/posts/dernier.md", "Date: 2024-04-01 09:00", "Date: 2023-11-05 09:00")], None, None),
    ("category", [_replace("content/posts/bom.md", "Category: Technique", "Category: Humeurs")], None, None),
    ("tags", [_replace("content/posts/entete-yaml.md", "Tags: format", "Tags: format, rgpd, nouveau")], None, None),
    ("slug", [_replace("content/posts/cafe-creme.md", "Slug: café-crème", "Slug: café-noir")], None, None),
    ("add-post", [{"op": "write", "path": "content/posts/ajout.md", "text": NEW_POST}], None, None),
    ("delete-post", [{"op": "delete", "path": "content/posts/entete-yaml.md"}], None, None),
    ("rename-file", [{"op": "rename", "path": "content/posts/noel.md", "to": "content/posts/noel-renomme.md"}],
     None, None),
    ("page", [_replace("content/pages/a-propos.md", "relation client", "relation client, et de rien d'autre")],
     None, None),
    ("template", [_replace("templates/special.html", "version 1", "version 2")], None, None),
    ("article-template", [_replace("templates/article.html", '<aside id="plugin-data">',
                                   '<aside id="plugin-data" class="v2">')], None, None),
    ("static-file", [{"op": "append", "path": "content/docs/fiche.pdf", "text": "% modifiée\n"}], None, None),
    ("setting", [], {"SITENAME": "Torture : le blog renommé"}, None),
    ("to-draft", [_replace("content/posts/dernier.md", "Author: Bob Martin", "Author: Bob Martin\nStatus: draft")],
     None, None),
    ("from-draft", [_replace("content/posts/dernier.md", "Author: Bob Martin\nStatus: draft", "Author: Bob Martin")],
     None, None),
    ("linked-post", [_replace("content/posts/deuxieme.rst", ":slug: deuxieme-billet", ":slug: deuxieme-billet-v2")],
     None, None),
    ("translation", [_replace("content/posts/traduction-en.md", "English version", "The English version")],
     None, None),
    ("time-passes", [], None, LATER),
]
# Every page of notmyidea lists the categories, hence every post; and a post whose text has an intrasite link
# ({filename}, {static}, {attach}) is one the accelerator cannot fingerprint, so on the torture corpus it
# renders every page every time. NO_LINKS turns those links into plain URLs, and LEAN also drops the
# categories and pages from notmyidea's menu: there the accelerator keeps the pages it thinks unchanged
# (30 of 50 after a title edit), and that path is judged too.
NO_LINKS = [_replace("content/posts/deuxieme.rst", "<{filename}/posts/2024-01-15-premier-billet.md>",
                     "</premier-billet.html>"),
            _replace("content/posts/liens.md", "({filename}deuxieme.rst)", "(/deuxieme-billet.html)"),
            _replace("content/posts/liens.md", "({filename}/pages/a-propos.md)", "(/pages/a-propos.html)"),
            _replace("content/posts/liens.md", "({attach}/docs/fiche.pdf)", "(/docs/fiche.pdf)"),
            _replace("content/posts/liens.md", 'src="{static}/images/photo.png"', 'src="/images/photo.png"'),
            _replace("content/posts/liens.md", "({static}/images/photo.png)", "(/images/photo.png)")]


def lean_base() -> str:
    """notmyidea's base.html without the pages and categories of its menu: a page then depends on the posts it
    shows, not on every post, and the accelerator keeps the others (the "lean" variant)."""
    source = (Path(pelican.__file__).parent / "themes" / "notmyidea" / "templates" / "base.html").read_text(
        encoding="utf-8")
    lean = re.sub(r"[ \t]*\{% if DISPLAY_(PAGES|CATEGORIES)_ON_MENU -%\}.*?\{% endif %\}\n", "", source, flags=re.S)
    assert lean != source and " in categories " not in lean and " in pages " not in lean, "notmyidea changed"
    return "{# notmyidea's base.html, menu without pages and categories (tests/test_accelerator_equivalence.py) #}\n" + lean


LEAN = NO_LINKS + [{"op": "write", "path": "templates/base.html", "text": lean_base()}]
# variant: (edits that make it from the torture corpus, {profile: settings of the accelerated builds})
# ("links": the corpus as it is, every page rendered every time; "lean": pages kept, with forked helpers too)
WARM_VARIANTS = {"links": ([], {"default": {}}),
                 "lean": (LEAN, {"lean": {}, "lean-parallel": PARALLEL})}
WARM_PROFILES = [profile for _, profiles in WARM_VARIANTS.values() for profile in profiles]


def run_warm_sequence(root: Path, variant: str) -> dict:
    """Every step of WARM_STEPS in order on one copy of the site (WARM_VARIANTS[variant]): for each of the
    variant's accelerator profiles, a warm build into the same output folder with the same cache, and a
    cold stock build of the same content. Returns {"profile/step": None or what differs / how it failed}."""
    prepare, profiles = WARM_VARIANTS[variant]
    results = {}
    site = site_copy(root / "site")
    apply_edits(prepare, str(site))
    extra, now = {}, NOW
    outputs = {profile: root / f"on-{profile}" for profile in profiles}
    for number, (step, edits, changed, clock) in enumerate([("cold", [], None, None)] + WARM_STEPS):
        apply_edits(edits, str(site))
        extra.update(changed or {})
        now = clock or now
        reference = stock(site, root, f"stock-{number:02d}-{step}", extra=dict(extra), now=now)
        for profile, options in profiles.items():
            label = f"warm build after '{step}' ({profile})"
            try:
                build("on", site, outputs[profile], root / f"cache-{profile}", extra={**options, **extra}, now=now,
                      label=label)
                results[f"{profile}/{step}"] = tree_diff(reference, outputs[profile], label)
            except (AssertionError, subprocess.TimeoutExpired) as error:
                results[f"{profile}/{step}"] = str(error)
        shutil.rmtree(reference)
    return results


@pytest.fixture(scope="session")
def warm_results(shared_dir, tmp_path_factory):
    """The results of each variant's sequence, computed once per session (by whichever worker asks first)."""
    cache = {}

    def results(variant):
        if variant not in cache:
            cache[variant] = once(shared_dir, f"warm-{variant}",
                                  lambda: run_warm_sequence(tmp_path_factory.mktemp(f"warm-{variant}"), variant))
        return cache[variant]

    return results


@pytest.mark.parametrize("profile", WARM_PROFILES)
@pytest.mark.parametrize("step", ["cold"] + [step[0] for step in WARM_STEPS])
def test_warm_build_after_edit_equals_stock(warm_results, profile, step):
    """(b) After each edit (in sequence, one cache), a warm build writes what a cold stock build writes."""
    variant = next(name for name, (_, profiles) in WARM_VARIANTS.items() if profile in profiles)
    problem = warm_results(variant)[f"{profile}/{step}"]
    if problem:
        pytest.fail(problem)


# (c) several runs in one process (pelican --autoreload) ------------------------------------------------

IN_PROCESS_EDITS = [
    [],
    [_replace("content/posts/dernier.md", "Texte du dernier billet", "Texte remanié du dernier billet")],
    [_replace("content/posts/deuxieme.rst", "Deuxième billet : réponse au premier", "Deuxième billet : réponse tardive")],
]


@pytest.mark.parametrize("instance,runs", [("same", 2), ("same", 3), ("new", 2), ("new", 3)],
                         ids=["autoreload-2-runs", "autoreload-3-runs-with-edits", "new-instance-2-runs",
                              "new-instance-3-runs-with-edits"])
def test_runs_in_one_process_equal_fresh_builds(torture_site, tmp_path, instance, runs):
    """(c) Pelican run two or three times in one process, the accelerator on (with an edit between runs
    for 3 runs): each run's output equals a fresh-process stock build of the same content (for the corpus
    as it is, before any edit: the session's cold stock build of it, torture_site)."""
    edits = IN_PROCESS_EDITS[:runs] if runs == 3 else [[], []]
    site = site_copy(tmp_path / "site")
    reference_site = site_copy(tmp_path / "reference-site")
    spec = {"settings": str(TORTURE_SETTINGS), "now": NOW, "instance": instance,
            "override": settings("on", site, tmp_path / "out", tmp_path / "cache"),
            "runs": [{"edits": [dict(e, path=str(site / e["path"])) for e in run_edits],
                      "snapshot": str(tmp_path / f"run-{number}")} for number, run_edits in enumerate(edits)]}
    run_runner(spec, tmp_path, f"{runs} runs in one process ({instance} Pelican object)")
    problems = []
    edited = False
    for number, run_edits in enumerate(edits):
        apply_edits(run_edits, str(reference_site))
        edited = edited or bool(run_edits)
        reference = stock(reference_site, tmp_path, f"stock-{number}") if edited else torture_site / "stock"
        problem = tree_diff(reference, tmp_path / f"run-{number}", f"run {number + 1} of {runs} in one process")
        if problem:
            problems.append(problem)
    if problems:
        pytest.fail("\n\n".join(problems))


# (d) the project's own site, PLUGINS in other orders ---------------------------------------------------

PROJECT_SETTINGS = ROOT / "pelicanconf.py"


def declared_plugins() -> list:
    namespace = {"__file__": str(PROJECT_SETTINGS)}
    exec(compile(PROJECT_SETTINGS.read_text(encoding="utf-8"), str(PROJECT_SETTINGS), "exec"), namespace)
    return list(namespace["PLUGINS"])


def build_project(workdir: Path, plugins: list, label: str) -> Path:
    output = workdir / "output"
    spec = {"settings": str(PROJECT_SETTINGS), "now": None,
            "override": {"PATH": str(ROOT / "content"), "OUTPUT_PATH": str(output), "CACHE_PATH": str(workdir / "cache"),
                         "PLUGINS": plugins, "MAIL_POSTS_PATH": str(workdir / "mail")}}
    run_runner(spec, workdir, label)
    return output


@pytest.fixture(scope="session")
def project_declared_order(tmp_path_factory) -> Path:
    return build_project(tmp_path_factory.mktemp("project-declared"), declared_plugins(), "project, declared order")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_plugin_order_does_not_change_the_project_site(project_declared_order, tmp_path, seed):
    """(d) pelicanconf.py's PLUGINS in another order (fixed seed) builds the same bytes."""
    plugins = declared_plugins()
    shuffled = plugins[:]
    random.Random(seed).shuffle(shuffled)
    assert shuffled != plugins
    output = build_project(tmp_path, shuffled, f"project, PLUGINS = {shuffled}")
    assert_same_tree(project_declared_order, output, f"PLUGINS in the order {shuffled} (declared: {plugins})")


# (e) third-party plugins from PyPI ---------------------------------------------------------------------

# name: (module, settings, edits that give the corpus what the plugin needs, what drives it)
# The plugins the accelerator does not run with (plugins/fast_build/run.py says why for each).
STEPS_ASIDE_FOR = {"statistics", "i18n_subsites", "sitemap", "image_process"}

PYPI_PLUGIN_CASES = {
    "series": ("pelican.plugins.series", {}, [], "Series/Series_index metadata (premier, deuxième, notes)"),
    "related_posts": ("pelican.plugins.related_posts", {}, [],
                      "Related_posts metadata (deuxième, liens), shared tags for the others"),
    "neighbors": ("pelican.plugins.neighbors", {}, [], "none: next/prev articles, printed by templates/article.html"),
    "readtime": ("pelican.plugins.readtime", {}, [], "none: readtime, printed by templates/article.html"),
    "statistics": ("pelican.plugins.statistics", {}, [], "none: statistics, printed by templates/article.html"),
    "sitemap": ("pelican.plugins.sitemap", {"SITEMAP": {"format": "xml"}}, [], "SITEMAP setting (xml)"),
    "image_process": ("pelican.plugins.image_process",
                      {"IMAGE_PROCESS": {"thumb": ["scale_in 20 20 True"]}}, [],
                      "IMAGE_PROCESS setting, <img class=\"image-process-thumb\"> in liens.md"),
    "i18n_subsites": ("pelican.plugins.i18n_subsites",
                      {"I18N_SUBSITES": {"en": {"SITENAME": "Torture: the blog"}}},
                      # i18n_subsites 1.0.0 fails on stock Pelican (KeyError in interlink_removed_content) when
                      # a translation says `Translation: true`: here the language alone makes it one.
                      [_replace("content/posts/traduction-en.md", "Translation: true\n", "")],
                      "I18N_SUBSITES setting (an \"en\" subsite), the translated post"),
    "simple_footnotes": ("pelican.plugins.simple_footnotes", {}, [], "[ref]...[/ref] in notes.md"),
    "tag_cloud": ("pelican.plugins.tag_cloud", {"TAG_CLOUD_SORTING": "alphabetically"}, [],
                  "tag_cloud, printed by templates/article.html (sorted: the default order is random)"),
    "share_post": ("pelican.plugins.share_post", {}, [], "share_post, printed by templates/article.html"),
    "jinja2content": ("pelican.plugins.jinja2content", {}, [], "{{ 6 * 7 }} in notes.md"),
    "more_categories": ("pelican.plugins.more_categories", {},
                        [_replace("content/posts/dernier.md", "Category: Humeurs",
                                  "Category: Humeurs/Sous-humeur, Technique")],
                        "Category: a/b, c (dernier.md), categories printed by templates/article.html"),
}
# name: (file of the stock output, text it holds only when the plugin did its work): guards the corpus
PYPI_PLUGIN_EVIDENCE = {
    "series": ("premier-billet.html", 'class="series">La saga du CRM #1'),
    "related_posts": ("des-liens-internes-partout.html", 'class="related"'),
    "neighbors": ("le-dernier-billet.html", 'class="neighbors"'),
    "readtime": ("le-dernier-billet.html", 'class="readtime"'),
    "statistics": ("le-dernier-billet.html", 'class="statistics"'),
    "sitemap": ("sitemap.xml", "<urlset"),
    "image_process": ("des-liens-internes-partout.html", "derivatives/thumb/photo.png"),
    "i18n_subsites": ("en/index.html", "Torture: the blog"),
    "simple_footnotes": ("notes-de-bas-de-page-et-gabarit.html", 'class="simple-footnote"'),
    "tag_cloud": ("le-dernier-billet.html", 'class="tag-cloud"'),
    "share_post": ("le-dernier-billet.html", 'class="share"'),
    "jinja2content": ("notes-de-bas-de-page-et-gabarit.html", "calcul : 42."),
    "more_categories": ("le-dernier-billet.html", "Humeurs/Sous-humeur="),
}
PLUGIN_EDITS = [
    # (i) a title that other posts show through the plugin (series, related posts, neighbours, share links)
    ("title", [_replace("content/posts/deuxieme.rst", "Deuxième billet : réponse au premier",
                        "Deuxième billet : réponse tardive")]),
    # (ii) a body
    ("body", [_replace("content/posts/dernier.md", "Texte du dernier billet",
                       "Texte remanié du dernier billet, avec quelques mots de plus pour les statistiques")]),
]


@pytest.fixture(scope="session")
def pypi_plugins() -> Path:
    """requirements-plugins.txt as `make test` installed it into .pypi-plugins/ (tests reach no network)."""
    stamp = PYPI_PLUGINS / ".requirements-sha256"
    digest = hashlib.sha256(PLUGIN_REQUIREMENTS.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != digest:
        missing(f"{PYPI_PLUGINS} does not hold requirements-plugins.txt (make test installs it)")
    return PYPI_PLUGINS


@pytest.mark.parametrize("plugin", list(PYPI_PLUGIN_CASES))
@pytest.mark.parametrize("corpus", ["torture", "lean"])
def test_pypi_plugin_builds_equal_stock(pypi_plugins, tmp_path, corpus, plugin):
    """(e) With a PyPI plugin: cold builds with the accelerator on and off write stock Pelican's bytes (with
    the same plugin); then warm builds after (i) a title edit and (ii) a body edit write what cold stock
    builds of the same content write. Every check runs; the failure lists each one that failed.

    corpus "torture": the corpus as it is (the accelerator renders every page of it every time: see NO_LINKS);
    "lean": links made plain and notmyidea's menu without categories (LEAN), so that the accelerator keeps
    the pages it thinks unchanged, and plugin data it missed shows (the FAST_BUILD = False build is skipped)."""
    module, options, prepare, _ = PYPI_PLUGIN_CASES[plugin]
    site = site_copy(tmp_path / "site")
    apply_edits((LEAN if corpus == "lean" else []) + prepare, str(site))
    if os.environ.get("TORTURE_TRUST"):  # to try whether the accelerator can run with this plugin
        options = {**options, "FAST_BUILD_TRUSTED_PLUGINS": [module]}
    common = dict(plugins=[module], extra=options, pypi=True)
    problems = []

    def check(reference, kind, output, cache, what):
        what = f"{what} ({corpus} corpus)"
        try:
            build(kind, site, output, cache, label=f"{plugin}: {what}", **common)
            problem = tree_diff(reference, output, f"{plugin}: {what}")
        except (AssertionError, subprocess.TimeoutExpired) as error:
            problem = str(error)
        if problem:
            problems.append(problem)

    reference = stock(site, tmp_path, "stock-cold", **common)
    if corpus == "torture":
        evidence_file, evidence = PYPI_PLUGIN_EVIDENCE[plugin]
        evidence_path = reference / evidence_file
        assert evidence_path.is_file() and evidence in evidence_path.read_text(encoding="utf-8"), (
            f"the corpus does not make {plugin} do anything: {evidence!r} is not in stock's {evidence_file}")
    check(reference, "on", tmp_path / "on", tmp_path / "cache-on", "cold build, accelerator on")
    if ACCELERATOR_ON:  # the plugins it supports, it runs with; for the others it says why it steps aside
        log = (tmp_path / "on.log").read_text(encoding="utf-8")
        stepped_aside = "building without the accelerator" in log
        if stepped_aside != (plugin in STEPS_ASIDE_FOR):
            problems.append(f"{plugin}: the accelerator {'stepped aside' if stepped_aside else 'ran'}:\n{log[-2000:]}")
    if corpus == "torture":
        check(reference, "off", tmp_path / "off", tmp_path / "cache-off", "cold build, FAST_BUILD = False")
    for name, edits in PLUGIN_EDITS:
        apply_edits(edits, str(site))
        reference = stock(site, tmp_path, f"stock-{name}", **common)
        check(reference, "on", tmp_path / "on", tmp_path / "cache-on", f"warm build after a {name} edit")
    if problems:
        pytest.fail(f"{len(problems)} check(s) failed:\n\n" + "\n\n".join(problems))


# (f) this project's share cards (plugins/share_cards): pictures made at build time and kept in CACHE_PATH ------

SHARE_CARDS = {"PLUGIN_PATHS": [str(ROOT / "plugins")],
               "SHARE_CARDS_TITLE_FONT": str(ROOT / "theme" / "fonts" / "Inter-Bold.otf"),
               "SHARE_CARDS_TEXT_FONT": str(ROOT / "theme" / "fonts" / "Inter-Regular.otf"),
               "SHARE_CARDS_COLOURS": {"background": "#fdfcf9", "text": "#1d1b18", "accent": "#8a2b0e",
                                       "rule": "#ddd6cc"}}
SHARE_CARD_EDITS = [
    ("title", [_replace("content/posts/deuxieme.rst", "Deuxième billet : réponse au premier",
                        "Deuxième billet : réponse tardive")]),
    ("image", [_replace("content/posts/dernier.md", "Author: Bob Martin", "Author: Bob Martin\nImage: images/photo.png")]),
    ("body", [_replace("content/posts/dernier.md", "Texte du dernier billet", "Texte remanié du dernier billet")]),
]


@pytest.mark.parametrize("corpus", ["torture", "lean"])
def test_share_cards_builds_equal_stock(tmp_path, corpus):
    """(f) With share_cards: a cold build with the accelerator (and, on the torture corpus, with FAST_BUILD =
    False) writes stock Pelican's bytes, pictures included; so do warm builds, on one cache, after a title edit
    (its card is made again), an Image: added (a picture instead of a card) and a body edit (no card changes)."""
    site = site_copy(tmp_path / "site")
    apply_edits(LEAN if corpus == "lean" else [], str(site))
    common = dict(plugins=["share_cards"], extra=SHARE_CARDS)
    problems = []

    def check(reference, kind, output, cache, what):
        try:
            build(kind, site, output, cache, label=f"share_cards: {what}", **common)
            problem = tree_diff(reference, output, f"share_cards: {what} ({corpus} corpus)")
        except (AssertionError, subprocess.TimeoutExpired) as error:
            problem = str(error)
        if problem:
            problems.append(problem)

    reference = stock(site, tmp_path, "stock-cold", **common)
    cards = sorted(path.name for path in (reference / "cartes").iterdir())
    assert "premier-billet.png" in cards and "traduction-en.png" in cards, cards  # translations get their own
    assert 'class="share-card"' in (reference / "premier-billet.html").read_text(encoding="utf-8")
    check(reference, "on", tmp_path / "on", tmp_path / "cache-on", "cold build, accelerator on")
    if ACCELERATOR_ON:
        log = (tmp_path / "on.log").read_text(encoding="utf-8")
        if "building without the accelerator" in log:
            problems.append(f"the accelerator stepped aside for share_cards:\n{log[-2000:]}")
    if corpus == "torture":
        check(reference, "off", tmp_path / "off", tmp_path / "cache-off", "cold build, FAST_BUILD = False")
    for name, edits in SHARE_CARD_EDITS:
        apply_edits(edits, str(site))
        reference = stock(site, tmp_path, f"stock-{name}", **common)
        check(reference, "on", tmp_path / "on", tmp_path / "cache-on", f"warm build after a {name} edit")
    assert (reference / "cartes" / "le-dernier-billet.png").is_file()
    if problems:
        pytest.fail(f"{len(problems)} check(s) failed:\n\n" + "\n\n".join(problems))
