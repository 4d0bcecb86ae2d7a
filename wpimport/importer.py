"""Which items of an export become which files, and everything an import will write, decided before
anything is written.

- Posts go to content/posts/YYYY-MM-slug.md, pages to content/pages/slug.md, with the header
  the project's own posts have (Title, Date, Modified, Category, Tags, Author, Slug,
  Summary from the excerpt, Status). Published and scheduled ("future") items are
  published, scheduled ones keeping their date; drafts and posts pending review become
  `Status: draft`. Private and password-protected items are skipped and listed (their text
  was not public), and so is WordPress's privacy-policy page (the site has its own, which must
  stay true); trashed items, auto-drafts, revisions, attachments, menu items and the
  block editor's own data are skipped and counted; other post types are skipped and listed.
- A post has one Category in Pelican: the first of its WordPress categories. The others
  become tags, so no category is lost.
- Slugs are WordPress's. Two imported items with one slug get -2, -3; a page whose slug is a
  folder of the site (archives, categories…) too. An imported post whose slug is already a
  post's in content/ is a conflict, as is a file that exists: nothing is written unless
  FORCE overwrites the files (the slug of an overwritten file is free).
- Old addresses (wpimport.redirects) go to content/redirects.csv; links between imported
  posts become Pelican `{filename}` links.
"""
import html
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from blogcore.header import read_header

from . import redirects
from .body import Converter
from .media import Media
from .oldsite import OldSite
from .shortcodes import Attachment

IMPORTED_TYPES = {"post": "posts", "page": "pages"}
PUBLISHED, DRAFT = {"publish", "future"}, {"draft", "pending"}
COUNTED_TYPES = {
    "attachment": "attachments (files; their images are copied where posts show them)",
    "nav_menu_item": "menu items",
    "revision": "revisions",
    "wp_block": "reusable blocks (inlined in the posts that use them)",
    "wp_template": "theme templates", "wp_template_part": "theme templates", "wp_global_styles": "theme styles",
    "wp_navigation": "menus", "custom_css": "theme styles", "customize_changeset": "theme settings",
    "oembed_cache": "embed caches", "user_request": "privacy requests", "wp_font_family": "fonts",
    "wp_font_face": "fonts", "jp_pay_order": "Jetpack data", "jp_pay_product": "Jetpack data",
    "feedback": "contact-form messages",
}
# The page WordPress writes for its privacy policy (wp_page_for_privacy_policy): it speaks of WordPress's
# cookies, comments and embeds, and would contradict the site's own privacy page.
PRIVACY_PAGES = {"privacy-policy", "politique-de-confidentialite", "datenschutzerklaerung", "politica-de-privacidad"}
COUNTED_STATUSES = {"trash": "trashed items", "auto-draft": "auto-drafts", "inherit": "revisions"}
SLUG_SAFE = re.compile(r"^[\w-]+$")
INLINE_TAGS = re.compile(r"</?(?:em|strong|i|b|span|a|br|code|sup|sub|small|mark|abbr|cite|del|ins|u|s|q)\b[^>]*>", re.I)


@dataclass
class Skipped:
    title: str
    reason: str
    line: int


@dataclass
class Imported:
    kind: str  # "posts" or "pages"
    title: str
    path: Path
    status: str  # "published", "draft", "scheduled"
    date: object = None


@dataclass
class Plan:
    content: Path
    texts: dict = field(default_factory=dict)  # Path -> text to write
    copies: dict = field(default_factory=dict)  # destination Path -> source Path
    imported: list = field(default_factory=list)  # Imported
    skipped: list = field(default_factory=list)  # Skipped, listed one by one
    counted: dict = field(default_factory=dict)  # reason -> count, for the many of a kind
    comments: int = 0
    redirects: list = field(default_factory=list)  # (old, target) written this time
    redirect_conflicts: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # (where, note)
    conflicts: list = field(default_factory=list)  # why nothing can be written
    media: Media | None = None


def slugify(text: str) -> str:
    """An ASCII slug (for titles, and WordPress slugs holding other characters than letters, digits and -)."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")


def header_text(value: str) -> str:
    """A value for one header line: entities decoded, formatting tags gone, one line, < > & written for HTML.

    A title like « Des balises <html> » keeps its words: only the tags of inline formatting are markup."""
    value = INLINE_TAGS.sub("", html.unescape(value or ""))
    value = re.sub(r"\s+", " ", value.replace("\u00a0", " ")).strip()
    value = re.sub(r"&(?=#?[A-Za-z0-9]+;)", "&amp;", value)
    return value.replace("<", "&lt;").replace(">", "&gt;")


def term_name(term) -> str:
    return header_text(term.name).replace(",", " ").strip() or term.slug


def existing_slugs(content: Path, kind: str) -> dict:
    """Slug -> file, for the Markdown files already in content/<kind>/ that say their slug."""
    found = {}
    folder = content / kind
    for path in sorted(folder.rglob("*.md")) if folder.is_dir() else []:
        try:
            slug = read_header(str(path)).get("slug")
        except (OSError, UnicodeDecodeError):
            continue
        if slug:
            found.setdefault(slug, path)
    return found


def primary_language(tag: str) -> str:
    return (tag or "").replace("_", "-").split("-")[0].lower()


def plan(export, content: Path, uploads: Path | None, force: bool, reserved=frozenset(),
         site_language: str = "fr") -> Plan:
    """Everything the import of `export` into `content` would write, and why it might not."""
    content = Path(content)
    result = Plan(content=content)
    site = OldSite(export.link, export.blog_url)
    site_language = primary_language(site_language) or "fr"
    language = primary_language(export.language) or site_language
    if language != site_language:
        result.notes.append(("the export", f"its language is {language!r}, the site's {site_language!r}: posts and "
                             f"pages say Lang: {language} (set DEFAULT_LANG = {language!r} in pelicanconf.py if "
                             "the whole blog is in that language, and import again with FORCE=1)"))
    media = result.media = Media(site, uploads)

    attachments, children, reusable, attachment_pages = {}, {}, {}, {}
    for item in export.items:
        if item.type == "attachment" and item.attachment_url:
            attachments[item.id] = Attachment(item.attachment_url, header_text(item.title), item.excerpt,
                                              item.meta.get("_wp_attachment_image_alt", ""))
            children.setdefault(item.parent, []).append((item.order, item.id))
            old = site.path(item.link)
            if old:
                attachment_pages[OldSite.key(old)] = item.attachment_url
        elif item.type == "wp_block":
            reusable[item.id] = item.content
    children = {parent: [i for _, i in sorted(ids)] for parent, ids in children.items()}

    chosen = []
    for item in export.items:
        result.comments += item.comments
        title = header_text(item.title)
        if item.type not in IMPORTED_TYPES:
            if item.type in COUNTED_TYPES:
                _count(result, COUNTED_TYPES[item.type])
            else:
                result.skipped.append(Skipped(title, f"post type '{item.type}' (not a post or a page)", item.line))
        elif item.status in COUNTED_STATUSES:
            _count(result, COUNTED_STATUSES[item.status])
        elif item.status == "private":
            result.skipped.append(Skipped(title, "private", item.line))
        elif item.password:
            result.skipped.append(Skipped(title, "protected by a password", item.line))
        elif item.status not in PUBLISHED | DRAFT:
            result.skipped.append(Skipped(title, f"status '{item.status}'", item.line))
        elif item.type == "page" and item.slug in PRIVACY_PAGES:
            result.skipped.append(Skipped(title, "WordPress's privacy policy, which describes WordPress (cookies, "
                                          "comments…): the site's own is content/pages/confidentialite.md", item.line))
        elif item.date is None and item.modified is None and item.type == "post":
            result.skipped.append(Skipped(title, "no date", item.line))
        else:
            chosen.append(item)

    # Slugs and files, then the old addresses of what will be published.
    taken = {kind: existing_slugs(content, kind) for kind in IMPORTED_TYPES.values()}
    used = {kind: set() for kind in IMPORTED_TYPES.values()}
    placed = []
    for item in chosen:
        kind = IMPORTED_TYPES[item.type]
        base = item.slug if SLUG_SAFE.match(item.slug or "") else slugify(item.slug or "")
        base = base or slugify(header_text(item.title)) or f"{item.type}-{item.id}"
        slug, number = base, 1
        while slug in used[kind] or (kind == "pages" and slug.lower() in reserved):
            number += 1
            slug = f"{base}-{number}"
        if slug != base:
            result.notes.append((header_text(item.title) or slug, f"slug {base!r} already used: {slug!r}"))
        used[kind].add(slug)
        date = item.date or item.modified
        name = f"{date:%Y-%m}-{slug}.md" if kind == "posts" else f"{slug}.md"
        path = content / kind / name
        owner = taken[kind].get(slug)
        if owner is not None and not (force and owner.resolve() == path.resolve()):
            result.conflicts.append(f"{_shown(path)}: the slug {slug!r} of « {header_text(item.title)} » "
                                    f"(line {item.line}) is already used by {_shown(owner)}")
        placed.append((item, kind, slug, path))

    targets, rows = {}, []
    for item, kind, slug, path in placed:
        if item.status in PUBLISHED:
            target = "{filename}/" + path.relative_to(content).as_posix()
            for old in redirects.item_paths(item, site):
                rows.append((old, target))
    categories, tags = _terms(placed)
    rows += redirects.term_rows(export, site, categories, tags)
    if rows:
        rows.append((site.base + "/feed/", "/atom.xml"))
    kept, result.redirect_conflicts = redirects.deduplicate(rows)
    for old, target in kept:
        targets.setdefault(OldSite.key(old), target)
    result.redirects = kept

    converter = Converter(media, site, attachments, children, reusable,
                          lambda old: targets.get(OldSite.key(old)), french=language == "fr")
    converter.attachment_pages = attachment_pages
    for item, kind, slug, path in placed:
        title = header_text(item.title) or "Sans titre"
        where = f"« {title} »"
        body = converter.convert(item.content, item.id, where, item.meta.get("footnotes", ""))
        summary = converter.summary(item.excerpt, item.id, where)
        result.notes.extend((title, note) for note in body.notes)
        status = "draft" if item.status in DRAFT else "scheduled" if item.status == "future" else "published"
        fields = [("Title", title)]
        if kind == "posts":
            date = item.date or item.modified
            fields.append(("Date", f"{date:%Y-%m-%d %H:%M}"))
            if item.modified and item.modified > date:
                fields.append(("Modified", f"{item.modified:%Y-%m-%d %H:%M}"))
            names = [term_name(term) for term in item.categories]
            if names:
                fields.append(("Category", names[0]))
            tag_names = _unique(names[1:] + [term_name(term) for term in item.tags])
            if tag_names:
                fields.append(("Tags", ", ".join(tag_names)))
            if item.author:
                fields.append(("Author", header_text(item.author)))
        fields.append(("Slug", slug))
        if summary:
            fields.append(("Summary", summary))
        if status == "draft":
            fields.append(("Status", "draft"))
        if language != site_language:
            fields.append(("Lang", language))
        result.texts[path] = "".join(f"{key}: {value}\n" for key, value in fields) + "\n" + body.markdown
        result.imported.append(Imported(kind, title, path, status, item.date))

    for relative, source in sorted(media.copies.items()):
        result.copies[content / media.folder / relative] = source
    csv_path = content / redirects.FILE
    if kept:
        previous = redirects.read_csv(csv_path) if csv_path.exists() else []
        result.texts[csv_path] = redirects.csv_text(redirects.merge(previous, kept))
    if not force:
        for path in result.texts:
            if path.exists():
                result.conflicts.append(f"{_shown(path)} exists (FORCE=1 overwrites it)")
        for destination, source in result.copies.items():
            if destination.exists() and not _same_bytes(destination, source):
                result.conflicts.append(f"{_shown(destination)} exists with other bytes (FORCE=1 overwrites it)")
    result.copies = {d: s for d, s in result.copies.items() if not (d.exists() and _same_bytes(d, s))}
    return result


def _terms(placed) -> tuple[dict, dict]:
    """Of published posts: primary categories (slug -> name) and tags, secondary categories included."""
    categories, tags = {}, {}
    for item, kind, slug, path in placed:
        if kind != "posts" or item.status not in PUBLISHED:
            continue
        for index, term in enumerate(item.categories):
            (categories if index == 0 else tags).setdefault(("category", term.slug), term_name(term))
        for term in item.tags:
            tags.setdefault(("post_tag", term.slug), term_name(term))
    return categories, tags


def _unique(names: list) -> list:
    seen, kept = set(), []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            kept.append(name)
    return kept


def _count(result: Plan, reason: str):
    result.counted[reason] = result.counted.get(reason, 0) + 1


def _same_bytes(one: Path, other: Path) -> bool:
    return one.stat().st_size == other.stat().st_size and one.read_bytes() == other.read_bytes()


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
