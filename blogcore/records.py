"""The post records: the build's hand-over to `make send`, defined once for both sides.

plugins/mail_posts writes one record per published post (the post exactly as the site
shows it, links made absolute); newsletter/mail_message reads them, so a mail is the
built post, never a second rendering that could drift from the site.

The contract:

- where: the folder MAIL_POSTS_PATH, else `var/posts` beside the output folder; a
  relative path is taken from the project root (the folder holding pelicanconf.py), and
  the folder is then resolved (symlinks followed), so both sides name the same file
  however they were started;
- the file: `records.sqlite3`, table posts(slug PRIMARY KEY, stamp, record), the record
  a JSON object with exactly FIELDS; stamp is the writer's business (what the record
  was made of, so a rebuild rewrites only the posts that changed); table
  rubriques(slug PRIMARY KEY, name): the rubriques of the published posts, each a
  newsletter list a reader may join (the signup service reads them, the sender reads
  a post's category slug);
- the version: RECORD_VERSION, in the file (PRAGMA user_version) and in every record.
  A reader meets another version with RecordsError asking for `make build`; a writer
  starts the file afresh.

Version 2: the version is stored in the file; records as in version 1.
Version 3 (this one): a record's category carries its slug; the rubriques table.
"""
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

RECORDS_FILE = "records.sqlite3"
RECORD_VERSION = 3
DEFAULT_FOLDER = "var/posts"  # beside the output folder
PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIELDS = (
    "version", "slug",
    "title", "title_text",  # HTML as the site shows it, and as one line of text
    "url", "date", "lang",  # absolute URL; ISO 8601 date with its offset; the post's language
    "category", "tags",  # {"name", "url", "slug"} or None; a list of {"name", "url"}
    "author",  # name or None
    "summary_html", "summary_text", "content_html",  # every link and image absolute
    "source_path", "source_sha256",  # the Markdown source, for the plain-text part and the staleness check
)


class RecordsError(Exception):
    """The records cannot be used as they are; the message tells the author what to run."""


def records_folder(settings, root: Path = PROJECT_ROOT) -> Path:
    """The folder of the records for these settings (see the module docstring)."""
    value = settings.get("MAIL_POSTS_PATH")
    if value is None or value == "":
        output = Path(settings.get("OUTPUT_PATH") or "output")
        return Path(os.path.realpath(root / output)).parent / DEFAULT_FOLDER
    if not isinstance(value, (str, os.PathLike)):
        raise RecordsError(f"MAIL_POSTS_PATH must be a folder path, not {value!r}")
    return Path(os.path.realpath(root / Path(value)))


def make_record(**fields) -> dict:
    """A record with exactly FIELDS (the version added); a missing or unknown field is a bug."""
    given = set(fields) | {"version"}
    if given != set(FIELDS):
        raise TypeError(f"record fields: missing {sorted(set(FIELDS) - given)}, unknown {sorted(given - set(FIELDS))}")
    return {"version": RECORD_VERSION, **{name: fields[name] for name in FIELDS if name != "version"}}


class RecordsWriter:
    """One build's writing: a transaction opened now, committed by commit(), rolled back by close()."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / RECORDS_FILE
        self.db = sqlite3.connect(self.path, isolation_level=None)
        try:
            self.db.execute("BEGIN IMMEDIATE")  # the sender sees the previous records or these, never a mix
            if self.db.execute("PRAGMA user_version").fetchone()[0] != RECORD_VERSION:
                self.db.execute("DROP TABLE IF EXISTS posts")  # another version's records: start afresh
                self.db.execute("DROP TABLE IF EXISTS rubriques")
                self.db.execute(f"PRAGMA user_version = {RECORD_VERSION}")
            self.db.execute("CREATE TABLE IF NOT EXISTS posts "
                            "(slug TEXT PRIMARY KEY, stamp TEXT NOT NULL, record TEXT NOT NULL)")
            self.db.execute("CREATE TABLE IF NOT EXISTS rubriques (slug TEXT PRIMARY KEY, name TEXT NOT NULL)")
        except BaseException:
            self.db.close()
            raise

    def stamps(self) -> dict:
        """slug: stamp of every record in the file."""
        return dict(self.db.execute("SELECT slug, stamp FROM posts"))

    def put(self, stamp: str, record: dict):
        self.db.execute("INSERT OR REPLACE INTO posts VALUES (?, ?, ?)",
                        (record["slug"], stamp, json.dumps(record, ensure_ascii=False)))

    def put_rubriques(self, rubriques: dict):
        """slug: name of every rubrique of the published posts (the whole table, replaced)."""
        self.db.execute("DELETE FROM rubriques")
        self.db.executemany("INSERT INTO rubriques VALUES (?, ?)", sorted(rubriques.items()))

    def remove(self, slugs):
        self.db.executemany("DELETE FROM posts WHERE slug = ?", [(slug,) for slug in slugs])

    def commit(self):
        try:
            self.db.execute("COMMIT")
        finally:
            self.db.close()

    def close(self):
        """Roll back (closing with the transaction open), for a build that failed."""
        self.db.close()


def _stale(path: Path, found) -> RecordsError:
    return RecordsError(f"{path} was written by another version of the build (records version {found}, "
                        f"expected {RECORD_VERSION}): run make build, then send again.")


def read_record(folder: Path, slug: str) -> tuple[dict | None, list[str]]:
    """The record of one post as the last good build left it (None if absent), and every built slug."""
    read = _read(folder, lambda db: (db.execute("SELECT record FROM posts WHERE slug = ?", (slug,)).fetchone(),
                                     [row[0] for row in db.execute("SELECT slug FROM posts ORDER BY slug")]))
    if read is None:
        return None, []
    found, slugs = read
    if found is None:
        return None, slugs
    return _checked(folder / RECORDS_FILE, found[0]), slugs


T = TypeVar("T")


def _read(folder: Path, work: Callable[[sqlite3.Connection], T]) -> T | None:
    """`work` done on the records the last good build left, read-only and checked for their version;
    None when no build has written them."""
    path = folder / RECORDS_FILE
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version != RECORD_VERSION:
                raise _stale(path, version)
            return work(db)
        finally:
            db.close()
    except sqlite3.DatabaseError as error:
        raise RecordsError(f"{path} cannot be read ({error}): run make build, then send again.") from None


def read_records(folder: Path) -> list[dict] | None:
    """Every record the last good build left, in one read (`make send` without POST looks at
    each post's date); None when no build has written the file yet."""
    rows = _read(folder, lambda db: db.execute("SELECT record FROM posts ORDER BY slug").fetchall())
    return None if rows is None else [_checked(folder / RECORDS_FILE, row[0]) for row in rows]


def read_rubriques(folder: Path) -> dict | None:
    """slug: name of the rubriques of the last good build (each a newsletter list); None before any build."""
    rows = _read(folder, lambda db: db.execute("SELECT slug, name FROM rubriques ORDER BY name").fetchall())
    return None if rows is None else dict(rows)


def _checked(path: Path, text: str) -> dict:
    """One record from its JSON, or RecordsError when another version of the build wrote it."""
    record = json.loads(text)
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION or not set(FIELDS) <= set(record):
        raise _stale(path, record.get("version") if isinstance(record, dict) else None)
    return record
