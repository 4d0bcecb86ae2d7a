"""Stop the build on a malformed post or page, naming the file, the line and the problem.

Pelican skips a post it cannot read and logs a line among many; the author then
publishes a site with a post missing. This plugin reads every Markdown header
before Pelican does and refuses the whole build instead, listing every problem.

It accepts what Pelican accepts and reports real mistakes only. The header is read by
blogcore.header, exactly as Pelican's Markdown reader reads it (a byte-order mark, a
`---` fence, indented continuation lines); the files are those Pelican reads (its
Markdown extensions under ARTICLE_PATHS and PAGE_PATHS, minus the *_EXCLUDES and
IGNORE_FILES); a post's Date may come from the header, FILENAME_METADATA,
PATH_METADATA, EXTRA_PATH_METADATA or DEFAULT_DATE; pages need no Date; two posts may
share a slug when they are translations (different Lang, or `Translation: true`).

Reported: no header, a line without `Key: value` inside it, an unknown (misspelt)
key, a key given twice, a date or status Pelican cannot read, an empty or missing
title, a post without a date, two posts of one language with one slug.

Settings:
    CONTENT_CHECKS_EXTRA_KEYS: metadata keys allowed on top of the known ones.
"""
import difflib
import fnmatch
import os
import pickle
import re
from datetime import datetime

from pelican import signals
from pelican.utils import get_date

from blogcore.header import read_header

KNOWN_KEYS = {
    "title", "date", "modified", "category", "tags", "author", "authors", "slug",
    "summary", "status", "lang", "translation", "template", "save_as", "url",
    "typographie", "typography", "guid", "image", "date_source",
}
STATUSES = {"published", "draft", "hidden"}
MARKDOWN_EXTENSIONS = ("md", "markdown", "mkd", "mdown")  # pelican.readers.MarkdownReader.file_extensions
CACHE_FILE = "ContentChecks"  # in CACHE_PATH: each file's findings, while its mtime and size hold
CHECKS_VERSION = 2  # part of the cache key: bump when the checks change
# Settings the findings depend on, besides the allowed keys (part of the cache key).
READ_SETTINGS = ("FILENAME_METADATA", "PATH_METADATA", "EXTRA_PATH_METADATA", "DEFAULT_DATE", "DEFAULT_METADATA",
                 "DEFAULT_LANG", "PATH")


class ContentError(SystemExit):
    """A build-stopping problem in the content, with a message meant for the author."""


def valid_date(value: str):
    """Raise ValueError unless Pelican can read the date (ISO dates, the usual case, without dateutil's cost)."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        get_date(value)


def path_metadata(source_path: str, settings) -> dict:
    """The metadata Pelican takes from a file's path (relative to PATH), as pelican.readers does, unprocessed."""
    found = {}
    base = os.path.splitext(os.path.basename(source_path))[0]
    for key, data in (("FILENAME_METADATA", base), ("PATH_METADATA", source_path)):
        pattern = settings.get(key)
        match = re.match(pattern, data) if pattern and data else None
        if match:
            for name, value in match.groupdict().items():
                if value is not None:
                    found.setdefault(name.lower(), value)
    for path, extra in (settings.get("EXTRA_PATH_METADATA") or {}).items():
        if source_path == path.replace(os.sep, "/"):
            for name, value in extra.items():
                found.setdefault(name.lower(), value)
    return found


def header_problems(path: str, header, is_article: bool, allowed: set, from_path: dict, settings) -> list[str]:
    """Problems in one file's metadata header, each as 'path:line: message'."""
    problems, seen = [], {}
    if not header.entries:
        where = header.body_line or header.end or 1
        problems.append(f"{path}:{where}: no metadata header; a post starts with 'Title: …' then 'Date: …'")
        return problems
    for entry in header.entries:
        key, value, number = entry.name, entry.value, entry.line
        if key not in allowed:
            hint = difflib.get_close_matches(key, sorted(allowed), n=1)
            problems.append(f"{path}:{number}: unknown metadata {entry.key!r}"
                            + (f" (did you mean {hint[0].capitalize()!r}?)" if hint else ""))
        if key in seen:
            problems.append(f"{path}:{number}: {entry.key!r} given twice (first on line {seen[key]})")
        seen[key] = number
        if key in ("date", "modified"):
            try:
                valid_date(value)
            except ValueError:
                problems.append(f"{path}:{number}: {entry.key} {value!r} is not a valid date "
                                "(expected YYYY-MM-DD or YYYY-MM-DD HH:MM)")
        elif key == "status" and value.lower() not in STATUSES:
            problems.append(f"{path}:{number}: status {value!r} is not one of {', '.join(sorted(STATUSES))}")
        elif key == "title" and not value:
            problems.append(f"{path}:{number}: empty title")
    if header.body_line is not None:
        problems.append(f"{path}:{header.body_line}: metadata line without 'Key: value' form: "
                        f"{header.body_text.strip()!r} (end the header with a blank line before the text)")
    if "date" not in seen and "date" in from_path:
        try:
            valid_date(str(from_path["date"]))
        except ValueError:
            problems.append(f"{path}:1: the date {from_path['date']!r} taken from the file's path is not a valid date")
    if not problems:
        has_date = ("date" in seen or "date" in from_path or settings.get("DEFAULT_DATE")
                    or "date" in (settings.get("DEFAULT_METADATA") or {}))
        if "title" not in seen:
            problems.append(f"{path}:1: missing 'Title' metadata")
        if is_article and not has_date:
            problems.append(f"{path}:1: missing 'Date' metadata")
    return problems


def content_files(settings, kind: str) -> list[tuple[str, str]]:
    """(absolute path, path relative to PATH) of the Markdown files Pelican reads as `kind` ("ARTICLE" or "PAGE"),
    found as pelican.generators.Generator.get_files finds them, sorted."""
    root = settings["PATH"]
    ignores = settings.get("IGNORE_FILES") or []
    excluded = {}
    for name in settings.get(f"{kind}_EXCLUDES") or []:
        parent, subdir = os.path.split(os.path.join(root, name))
        excluded.setdefault(parent, set()).add(subdir)
    found = set()
    for folder in settings.get(f"{kind}_PATHS") or []:
        top = os.path.join(root, folder) if folder else root
        if not os.path.isdir(top):
            continue
        for parent, dirs, names in os.walk(top, topdown=True, followlinks=True):
            skip = excluded.get(parent, ())
            dirs[:] = [d for d in dirs if d not in skip and not any(fnmatch.fnmatch(d, i) for i in ignores)]
            for name in names:
                if (os.path.splitext(name)[1][1:] in MARKDOWN_EXTENSIONS
                        and not any(fnmatch.fnmatch(name, i) for i in ignores)):
                    full = os.path.join(parent, name)
                    found.add((full, os.path.relpath(full, root).replace(os.sep, "/")))
    return sorted(found)


def file_findings(path: str, source_path: str, is_article: bool, allowed: set, settings) -> tuple[list[str], dict]:
    """One file's header problems, and what the slug check needs: slug (with its line), lang, translation."""
    shown = os.path.relpath(path)
    try:
        header = read_header(path)
    except UnicodeDecodeError as error:
        return [f"{shown}: not UTF-8 text ({error.reason} at byte {error.start})"], {}
    from_path = path_metadata(source_path, settings)
    slug = next(((entry.line, entry.value) for entry in header.entries if entry.name == "slug"), None)
    facts = {
        "slug": slug,
        "lang": (header.get("lang") or settings.get("DEFAULT_LANG") or "").lower().replace("_", "-"),
        "translation": (header.get("translation") or "").strip().lower() in ("true", "yes", "oui", "1"),
    }
    return header_problems(shown, header, is_article, allowed, from_path, settings), facts


class Findings:
    """file_findings per file, kept between builds in CACHE_PATH while the file's mtime and size hold."""

    def __init__(self, settings, allowed: set):
        self.allowed, self.settings = allowed, settings
        self.path = os.path.join(settings["CACHE_PATH"], CACHE_FILE) if settings.get("CACHE_CONTENT") else None
        self.cached, self.fresh, self.changed = {}, {}, False
        if self.path and settings.get("LOAD_CONTENT_CACHE"):
            try:
                with open(self.path, "rb") as file:
                    self.cached = pickle.load(file)
            except (OSError, EOFError, pickle.PickleError, ValueError, TypeError, AttributeError):
                self.cached = {}
        self.version = (CHECKS_VERSION, tuple(sorted(allowed)), os.getcwd(),
                        repr([(key, settings.get(key)) for key in READ_SETTINGS]))

    def of(self, path: str, source_path: str, is_article: bool):
        info = os.stat(path)
        key = (path, is_article)
        stamp = (info.st_mtime_ns, info.st_size, self.version)
        entry = self.cached.get(key)
        if entry is None or entry[0] != stamp:
            entry = (stamp, file_findings(path, source_path, is_article, self.allowed, self.settings))
            self.changed = True
        self.fresh[key] = entry
        return entry[1]

    def save(self):
        if not self.path or not (self.changed or len(self.fresh) != len(self.cached)):
            return
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            temporary = f"{self.path}.{os.getpid()}"
            with open(temporary, "wb") as file:
                pickle.dump(self.fresh, file, pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, self.path)
        except OSError:
            pass  # only an accelerator


def check_content(pelican):
    """Check every Markdown file before Pelican reads any (initialized: runs once, before generators)."""
    settings = pelican.settings
    allowed = KNOWN_KEYS | {key.lower() for key in settings.get("CONTENT_CHECKS_EXTRA_KEYS", ())}
    findings = Findings(settings, allowed)
    problems, slugs = [], {}
    for kind in ("ARTICLE", "PAGE"):
        for path, source_path in content_files(settings, kind):
            found, facts = findings.of(path, source_path, kind == "ARTICLE")
            problems += found
            if kind != "ARTICLE" or not facts.get("slug") or facts["translation"]:
                continue
            # Two posts with one slug and one language: `make send` and the feeds' ids could not tell them
            # apart. The same slug in another language is a translation, as Pelican sees it.
            number, slug = facts["slug"]
            if (slug, facts["lang"]) in slugs:
                first, line = slugs[slug, facts["lang"]]
                problems.append(f"{os.path.relpath(path)}:{number}: slug {slug!r} is already used by "
                                f"{os.path.relpath(first)}:{line}")
            else:
                slugs[slug, facts["lang"]] = (path, number)
    findings.save()
    if problems:
        raise ContentError("Build stopped, nothing was published:\n  " + "\n  ".join(problems))


def register():
    signals.initialized.connect(check_content)
