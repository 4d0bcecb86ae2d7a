"""plugins/fast_build/scaling.py: same site, byte for byte, and taxonomy membership work linear in the posts.

No timing here: the linearity test counts operations (membership calls and items
indexed with the handler, items scanned without it).
"""
import random
import sys
from collections import defaultdict
from pathlib import Path

from tests.conftest import ROOT, build

sys.path.insert(0, str(ROOT / "plugins"))
from fast_build import scaling  # noqa: E402
from fast_build.scaling import IdentityList  # noqa: E402

CATEGORIES = [f"Rubrique {n}" for n in range(18)]
TAGS = [f"étiquette {n}" for n in range(70)]
AUTHORS = [f"Auteur {n}" for n in range(9)]

# Two test plugins: one connects scaling's handlers, one disconnects them (whether or not fast_build's
# register() connects them itself); each writes which list type the taxonomies ended with, outside output/.
PLUGIN = '''
import os
from pelican import signals
from fast_build import scaling


def report(generator):
    kinds = {{type(articles).__name__ for _, articles in [*generator.tags.items(), *generator.categories,
                                                         *generator.authors]}}
    with open(os.environ["SCALING_MARKER"], "w", encoding="utf-8") as file:
        file.write(" ".join(sorted(kinds)))


def register():
    {action}
    signals.article_generator_finalized.connect(report)
'''


def write_corpus(folder: Path, count: int, seed: int = 3) -> Path:
    """count posts with many categories, tags (a duplicate now and then) and authors, shared dates, and
    translations (published, hidden and draft; the English one with no French original too)."""
    rnd = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        tags = rnd.sample(TAGS, rnd.randint(1, 5))
        if i % 37 == 0:
            tags.append(tags[0])  # the same tag twice: Pelican files the post twice under it
        authors = rnd.sample(AUTHORS, rnd.randint(1, 2))
        status = "hidden" if i % 23 == 0 else "draft" if i % 29 == 0 else "published"
        date = f"{2010 + i % 12}-{1 + i % 12:02d}-{1 + (i // 7) % 28:02d} 10:00"  # many posts share a date
        header = [f"Title: Billet {i} sur la relation client", f"Date: {date}",
                  f"Category: {rnd.choice(CATEGORIES)}", f"Tags: {', '.join(tags)}",
                  f"Authors: {', '.join(authors)}", f"Status: {status}"]
        body = f"Premier paragraphe du billet {i}.\n\nUn second, avec [un lien](https://example.org/{i})."
        lang_first = "en" if i % 41 == 0 else "fr"  # an English post without French original: an original
        (folder / f"billet-{i:04d}.md").write_text("\n".join(header + [f"Lang: {lang_first}"]) + "\n\n" + body + "\n",
                                                   encoding="utf-8")
        if i % 6 == 0 and lang_first == "fr":  # translation: same title, so the same slug
            (folder / f"billet-{i:04d}-en.md").write_text(
                "\n".join(header + ["Lang: en"]) + "\n\nThe English version.\n", encoding="utf-8")
    return folder


def plugin_folder(root: Path, name: str, action: str) -> Path:
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(PLUGIN.format(action=action), encoding="utf-8")
    return root


def files_of(folder: Path) -> dict:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_site_identical_with_and_without_handlers(tmp_path):
    content = tmp_path / "content"
    write_corpus(content / "posts", 320)
    plugins = tmp_path / "plugins"
    plugin_folder(plugins, "scaling_on", "scaling.connect(signals)")
    plugin_folder(plugins, "scaling_off",
                  "signals.article_generator_pretaxonomy.disconnect(scaling.identity_taxonomies)")
    outputs = {}
    for variant in ("scaling_on", "scaling_off"):
        output, marker = tmp_path / f"out-{variant}", tmp_path / f"marker-{variant}"
        build(content, output, env={"SCALING_MARKER": str(marker)}, args=(
            "--cache-path", str(tmp_path / f"cache-{variant}"),
            "-e", f'MAIL_POSTS_PATH="{tmp_path / f"mail-{variant}"}"',
            f'PLUGIN_PATHS=["plugins", "{plugins}"]',
            'PLUGINS=["content_checks", "french_typography", "theme_extras", "sitemap", "feeds", "mail_posts", '
            f'"fast_build", "{variant}"]'))
        outputs[variant] = files_of(output)
        expected = "IdentityList" if variant == "scaling_on" else "list"
        assert marker.read_text(encoding="utf-8") == expected
    on, off = outputs["scaling_on"], outputs["scaling_off"]
    assert len(on) > 320 and any("/etiquette/" in f"/{name}" for name in on)
    assert sorted(on) == sorted(off)
    assert [name for name in on if on[name] != off[name]] == []


# Operation counts -------------------------------------------------------------------------------------------

class ScanCountingList(list):
    """A plain list's `in`, counting the items it compares (what list.__contains__ does in C)."""

    scanned = 0

    def __contains__(self, item):
        for position, member in enumerate(self, 1):
            if member is item or member == item:
                ScanCountingList.scanned += position
                return True
        ScanCountingList.scanned += len(self)
        return False


def taxonomy_work(tmp_path: Path, count: int, identity: bool, monkeypatch) -> tuple[int, dict]:
    """Run Pelican's own generate_context, generate_tags, generate_categories and generate_authors on count
    posts, with scaling's handler connected or not; return the membership work and what each page got."""
    from pelican import signals
    from pelican.generators import ArticlesGenerator
    from pelican.settings import read_settings

    content = write_corpus(tmp_path / f"posts-{count}", count)
    settings = read_settings(override={"PATH": str(content), "ARTICLE_PATHS": [""], "CACHE_CONTENT": False,
                                       "LOAD_CONTENT_CACHE": False, "PLUGINS": [], "TIMEZONE": "Europe/Paris",
                                       "DEFAULT_LANG": "fr", "AUTHOR_SAVE_AS": "auteur/{slug}.html"})
    context = {**settings, "generated_content": {}, "static_links": set(), "static_content": {}}
    generator = ArticlesGenerator(context=context, settings=settings, path=str(content),
                                  theme=settings["THEME"], output_path=str(tmp_path / "out"))
    if identity:
        scaling.connect(signals)
    try:
        generator.generate_context()
    finally:
        signals.article_generator_pretaxonomy.disconnect(scaling.identity_taxonomies)

    counts = {"calls": 0, "indexed": 0}
    if identity:
        contains, index = IdentityList.__contains__, IdentityList._index

        def counted_contains(self, item):
            counts["calls"] += 1
            return contains(self, item)

        def counted_index(self):
            counts["indexed"] += len(self)
            return index(self)

        monkeypatch.setattr(IdentityList, "__contains__", counted_contains)
        monkeypatch.setattr(IdentityList, "_index", counted_index)
    else:  # Pelican as it is: plain lists, each `in` scanning
        ScanCountingList.scanned = 0
        for tag in list(generator.tags):
            generator.tags[tag] = ScanCountingList(generator.tags[tag])
        generator.categories = [(cat, ScanCountingList(arts)) for cat, arts in generator.categories]
        generator.authors = [(aut, ScanCountingList(arts)) for aut, arts in generator.authors]

    pages = {}

    def write(name, template, context, **kwargs):
        pages[name] = tuple([Path(a.source_path).name for a in kwargs[key]] for key in ("dates", "articles"))

    generator.generate_tags(write)
    generator.generate_categories(write)
    generator.generate_authors(write)
    monkeypatch.undo()
    work = counts["calls"] + counts["indexed"] if identity else ScanCountingList.scanned
    return work, pages


def test_taxonomy_membership_work_is_linear(tmp_path, monkeypatch):
    work = {}
    for count in (200, 400):
        ours, our_pages = taxonomy_work(tmp_path / "ours", count, True, monkeypatch)
        stock, stock_pages = taxonomy_work(tmp_path / "stock", count, False, monkeypatch)
        assert our_pages == stock_pages  # every tag, category and author page gets the same lists
        assert len(our_pages) == len(TAGS) + len(CATEGORIES) + len(AUTHORS)
        work[count] = (ours, stock)
    ours_ratio = work[400][0] / work[200][0]
    stock_ratio = work[400][1] / work[200][1]
    # Twice the posts: twice the work with the handler (one membership test per post and term, one set entry
    # per filing); about four times without it (each test scans a list that doubled too).
    assert 1.8 <= ours_ratio <= 2.2, work
    assert stock_ratio >= 3.4, work
    assert work[400][0] * 10 < work[400][1], work


# IdentityList itself ---------------------------------------------------------------------------------------

class Plain:
    pass


class Equal:
    """Equal to every other Equal: list semantics must be kept (no set lookup)."""

    def __eq__(self, other):
        return isinstance(other, Equal)

    __hash__ = object.__hash__


def test_identity_list_keeps_list_semantics():
    items = [Plain() for _ in range(6)]
    ours = IdentityList(items[:4])
    assert items[0] in ours and items[5] not in ours
    ours.append(items[5])
    assert items[5] in ours  # a change drops the set
    ours[0] = items[4]
    assert items[0] not in ours and items[4] in ours
    ours.remove(items[4])
    assert items[4] not in ours
    list.append(ours, items[0])  # bypassing the overrides: the length guard notices
    assert items[0] in ours
    ours += [items[3]]
    assert type(ours) is IdentityList and ours.count(items[3]) == 2
    del ours[:]
    assert items[3] not in ours and list(ours) == []
    # Items, or probes, with their own equality: exactly list's answer.
    mixed = IdentityList([Equal(), 1, "a"])
    assert Equal() in mixed and 1.0 in mixed and "a" in mixed and 2 not in mixed
    assert Equal() in IdentityList(items[:2] + [Equal()])
    assert [] not in IdentityList(items) and 1 not in IdentityList(items)
    # Copies and pickles carry the items, not the set.
    import copy
    import pickle
    ours = IdentityList(items)
    assert items[1] in ours
    clone = copy.copy(ours)
    assert type(clone) is IdentityList and clone == ours and items[1] in clone
    assert type(ours.copy()) is list and ours.copy() == ours  # as for any list subclass
    restored = pickle.loads(pickle.dumps((items, ours)))
    assert restored[0][2] in restored[1] and items[2] not in restored[1]
    assert type(ours[1:3]) is list and ours == items


def test_pretaxonomy_handler_keeps_filed_articles():
    generator = type("G", (), {})()
    generator.tags, generator.categories = defaultdict(list), defaultdict(list)
    generator.tags["x"].append(1)
    generator.authors = {"not": "a defaultdict"}
    scaling.identity_taxonomies(generator)
    assert type(generator.tags["x"]) is IdentityList and generator.tags["x"] == [1]
    assert type(generator.categories["new"]) is IdentityList
    assert generator.authors == {"not": "a defaultdict"}
