"""`make import-wordpress FILE=export.xml [UPLOADS=wp-content/uploads] [FORCE=1]`.

python -m wpimport FILE [--uploads DIR] [--force] [--content DIR]: reads the whole export,
decides every file, then writes them all or, on any problem (a malformed export, a file
that exists without --force, a slug already taken), writes nothing. Prints a summary:
what was imported, what was skipped and why, missing images, redirects written.
Exit status: 0 imported, 1 refused (nothing written).
"""
import argparse
import sys
import time
from pathlib import Path

from . import wxr
from .files import write_all
from .importer import plan
from .summary import summary

ROOT = Path(__file__).resolve().parent.parent


def site_settings(settings_file: Path) -> tuple[set, str]:
    """The site's top-level folders (archives, categorie, images, theme…), which no imported page may take,
    and its DEFAULT_LANG."""
    from pelican.settings import read_settings

    settings = read_settings(str(settings_file))
    names = {"theme", "drafts", "feeds", "404"} | {str(p).split("/")[0] for p in settings.get("STATIC_PATHS", [])}
    for key, value in settings.items():
        if key.endswith(("_SAVE_AS", "_URL")) and isinstance(value, str) and "/" in value and "://" not in value:
            head = value.strip("/").split("/")[0]  # "archives/index.html", "/newsletter" (the signup service)
            if head and "{" not in head:
                names.add(head.lower())
    return names, settings.get("DEFAULT_LANG", "fr")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wpimport", description=__doc__.splitlines()[0])
    parser.add_argument("file", help="the WordPress export (WXR), from Tools > Export")
    parser.add_argument("--uploads", help="a copy of the old site's wp-content/uploads folder")
    parser.add_argument("--force", action="store_true", help="overwrite files that exist")
    parser.add_argument("--content", default=str(ROOT / "content"), help="the content folder (default: content/)")
    parser.add_argument("--settings", default=str(ROOT / "pelicanconf.py"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.file:
        print("Give the export: make import-wordpress FILE=export.xml", file=sys.stderr)
        return 1
    if args.uploads and not Path(args.uploads).is_dir():
        print(f"UPLOADS={args.uploads}: not a folder (give a copy of wp-content/uploads)", file=sys.stderr)
        return 1
    started = time.perf_counter()
    try:
        export = wxr.read(args.file)
    except wxr.ExportError as error:
        print(f"{error}\nNothing was imported.", file=sys.stderr)
        return 1
    reserved, language = site_settings(Path(args.settings))
    result = plan(export, Path(args.content), Path(args.uploads) if args.uploads else None, args.force,
                  reserved, language)
    if result.conflicts:
        print("\n".join(["Nothing was imported:", *(f"  {c}" for c in result.conflicts)]), file=sys.stderr)
        return 1
    write_all(result.texts, result.copies)
    print(summary(args.file, export, result, time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
