"""`make build` and `make publish`: python -m sitebuild [--settings publishconf.py] [--output DIR] [--content DIR]."""
import argparse
import json
import logging
import sys

from .build import BuildFailed, build_site
from .search import IndexFailed


def override(text: str) -> tuple:
    key, equals, value = text.partition("=")
    if not equals:
        raise SystemExit(f"-e {text}: expected KEY=VALUE")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sitebuild", description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="pelicanconf.py", help="settings file, relative to the repository")
    parser.add_argument("--output", help="the folder the site is published in (default: the settings' OUTPUT_PATH)")
    parser.add_argument("--content", help="the content folder (default: the settings' PATH)")
    parser.add_argument("-e", "--extra-settings", dest="overrides", nargs="*", action="extend", default=[],
                        metavar="KEY=VALUE", help="override settings, as pelican -e does (VALUE is JSON, else a string)")
    parser.add_argument("--verbose", action="store_true", help="log every page written")
    args = parser.parse_args(argv)
    from pelican.log import init

    init(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        build_site(args.settings, args.output, args.content, dict(map(override, args.overrides)))
    except BuildFailed as failure:
        published = isinstance(failure.__cause__, IndexFailed)  # the pages were moved in; only the index was not
        print(f"{failure}" if published else f"{failure}\nBuild failed: output/ was left unchanged.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
