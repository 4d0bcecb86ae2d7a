"""The old WordPress addresses of what was imported, kept in content/redirects.csv.

Each imported post and page keeps its old addresses: its permalink (the item's <link>:
/2019/05/12/slug/, /slug/, or /?p=123 on a site with plain permalinks), and /?p=ID
(and /?page_id=ID for a page), which WordPress answers whatever its permalink settings.
Each category and tag keeps /category/<parents>/<slug>/ and /tag/<slug>/ (WordPress's
default bases: the export does not say if they were changed), and /feed/ goes to the
site's feed.

content/redirects.csv has one line per old address, `old,new`, where new is written as
Pelican's own links are ({filename}/posts/….md, {category}Name, {tag}name) or is an
address of the site (/atom.xml). The build (plugins/redirects) resolves them, so the
redirects follow the URL settings and any later change of slug; the author may add lines.
"""
import csv
import io

from .oldsite import OldSite, wp_quote

FILE = "redirects.csv"
HEADER = ("old", "new")


def item_paths(item, site) -> list[str]:
    """The old addresses of a post or page: its permalink, then /?p=ID (and /?page_id=ID)."""
    paths = []
    permalink = site.path(item.link)
    if permalink and permalink != "/":
        paths.append(permalink)
    paths.append(f"{site.base}/?p={item.id}")
    if item.type == "page":
        paths.append(f"{site.base}/?page_id={item.id}")
    return paths


def category_path(export, site, slug: str) -> str:
    """/category/<parent>/<child>/, WordPress's default, with the export's category tree."""
    chain, seen = [], set()
    while slug and slug not in seen:
        seen.add(slug)
        chain.append(slug)
        term = export.categories.get(slug)
        slug = term.parent if term else ""
    return f"{site.base}/category/" + "/".join(wp_quote(s) for s in reversed(chain)) + "/"


def term_rows(export, site, categories: dict, tags: dict) -> list[tuple[str, str]]:
    """Old category and tag addresses, to the category or tag page each became on the site.

    categories: (domain, slug) -> name of the published posts' first categories; tags: the same for
    their tags and their other categories (which are tags here)."""
    rows = []
    for (_, slug), name in categories.items():
        rows.append((category_path(export, site, slug), "{category}" + name))
    for (domain, slug), name in tags.items():
        if domain == "category":
            if ("category", slug) not in categories:
                rows.append((category_path(export, site, slug), "{tag}" + name))
        else:
            rows.append((f"{site.base}/tag/{wp_quote(slug)}/", "{tag}" + name))
    return rows


def deduplicate(rows) -> tuple[list, list]:
    """The rows with one target per old address (the first given wins), and the losers, to report."""
    kept, chosen, lost = [], {}, []
    for old, target in rows:
        key = OldSite.key(old)
        if key not in chosen:
            chosen[key] = target
            kept.append((old, target))
        elif chosen[key] != target and (old, target, chosen[key]) not in lost:
            lost.append((old, target, chosen[key]))
    return kept, lost


def read_csv(path) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8", newline="") as file:
        rows = [tuple(row[:2]) for row in csv.reader(file) if len(row) >= 2]
    return [row for row in rows if row != HEADER]


def merge(previous, new) -> list:
    """The new rows, after the previous ones whose old address the new ones do not name (lines added by hand)."""
    named = {OldSite.key(old) for old, _ in new}
    return [row for row in previous if OldSite.key(row[0]) not in named] + list(new)


def csv_text(rows) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue()
