"""`make preview POST=slug[,slug…]`: the mail as a reader gets it, to open in a browser.

    python -m newsletter.preview SLUGS

Writes var/preview/{slugs}.html and .txt (with a sample unsubscribe link that
unsubscribes nobody) and prints their paths. The devserver shows the same at
/newsletter/apercu/{slug} through `render_preview(config, slug)`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from .config import ROOT, Config, ConfigError
from .mail_message import PostError, build_mail, load_posts

PREVIEW_DIR = ROOT / "var" / "preview"
SAMPLE_TOKEN = "apercu"


def sample_unsubscribe_url(config: Config) -> str:
    """A link of the right shape whose token is no valid signature: it unsubscribes nobody."""
    return f"{config.newsletter_url}/desinscription/{SAMPLE_TOKEN}"


def render_preview(config: Config, slugs: str | list[str]) -> tuple[str, str]:
    """(html, text) of the mail for one post or a digest ("a,b"). Raises PostError with an author-facing message."""
    names = [s.strip() for s in slugs.split(",")] if isinstance(slugs, str) else list(slugs)
    mail = build_mail(config, load_posts(config, [s for s in names if s]))
    return mail.sample(sample_unsubscribe_url(config))


def write_preview(config: Config, slugs: str, folder: Path = PREVIEW_DIR) -> tuple[Path, Path]:
    html, text = render_preview(config, slugs)
    folder.mkdir(parents=True, exist_ok=True)
    name = slugs.replace(",", "+")
    html_path, text_path = folder / f"{name}.html", folder / f"{name}.txt"
    html_path.write_text(html, encoding="utf-8")
    text_path.write_text(text, encoding="utf-8")
    return html_path, text_path


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].strip() or args[0] in ("-h", "--help"):
        print("usage: python -m newsletter.preview SLUG[,SLUG…]   (make preview POST=slug)", file=sys.stderr)
        return 2
    try:
        paths = write_preview(Config.from_env(), args[0].strip())
    except (PostError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
