"""The newsletter mail: one post (or a digest of several) as a MIME message.

Everything shared by all readers is rendered and encoded once per send
(`build_mail`): the HTML from theme/templates/email/post.html with its CSS
inlined, and the plain text from the Markdown source. Per reader only the
unsubscribe links, To, Date and Message-ID differ: the message is flattened
once with stand-ins for them (stand_ins.py), and `Mail.wire(email, …)`, what
`make send` sends, fills them in, quoted-printable encoding again only the
lines that hold the link; `Mail.message` builds the same as a Message (tests,
test sends' previews). No tracking pixel, no rewritten link, nothing else
about the reader.
"""
from __future__ import annotations

import difflib
import hashlib
import logging
import email.policy
import html
import re
import textwrap
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from email.header import Header
from email.message import EmailMessage, Message
from email.utils import formataddr, formatdate, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

import css_inline
import jinja2
import markupsafe
from PIL import Image, UnidentifiedImageError

from blogcore.dates import local_date, site_zone
from blogcore.header import read_header
from blogcore.language import is_french
from blogcore.records import RecordsError, read_record, records_folder
from blogcore.typography import fix_html

from .config import ROOT, Config
from .mailer import wire_bytes
from .plaintext import WIDTH, fix_text, render_text
from .stand_ins import Line, cut, date_now, fill, header_line

logger = logging.getLogger(__name__)

TEMPLATES = ROOT / "theme" / "templates" / "email"
PLACEHOLDER = "xUNSUBSCRIBEx9f2c7e1bx"  # letters only: survives HTML serialisation and quoted-printable
# Stand-ins of the message flattened once (`Mail.wire`): letters only, neither folded nor encoded.
TO_STAND_IN, DATE_STAND_IN, ID_STAND_IN = "xTOx9f2c7e1bx", "xDATEx9f2c7e1bx", "xMESSAGEIDx9f2c7e1bx"
UNSUBSCRIBE_STAND_IN, TEXT_STAND_IN, HTML_STAND_IN = "xLISTUNSUBx9f2c7e1bx", "xTEXTx9f2c7e1bx", "xHTMLx9f2c7e1bx"
PREHEADER_PADDING = "&#847;&zwnj;&nbsp;" * 60  # keeps clients from pulling body text into the preview line
# compat32 with CRLF: headers are stored as given (pre-encoded below), which keeps
# per-reader message assembly cheap; smtplib and the outbox serialise it as is.
POLICY = email.policy.compat32.clone(linesep="\r\n")
_IMG_NO_ALT = re.compile(r"<img(?![^>]*\balt\s*=)", re.IGNORECASE)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r"""\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_SIZED = re.compile(r"\b(?:width|height)\s*=", re.IGNORECASE)
_TABLE = re.compile(r"<table\b", re.IGNORECASE)
_TABLE_END = re.compile(r"</table\s*>", re.IGNORECASE)
COLUMN_WIDTH = 560  # px: the mail's column (600) less the cell's padding; Outlook sizes images by attribute


class PostError(Exception):
    """A post can't be mailed: unknown slug, not built, or changed since the build."""


@dataclass(frozen=True)
class Post:
    slug: str
    title: str
    title_text: str
    url: str
    date: datetime
    category: dict | None
    tags: list
    author: str | None
    summary_html: str
    summary_text: str
    content_html: str
    source_path: str
    source_sha256: str
    lang: str = "fr"

    @property
    def french(self) -> bool:
        return is_french(self.lang)

    @classmethod
    def from_record(cls, data: dict) -> "Post":
        """A post from a record of blogcore.records (its version already checked)."""
        fields = {name: data.get(name) for name in cls.__dataclass_fields__}
        fields["date"] = datetime.fromisoformat(data["date"])
        fields["tags"] = data.get("tags") or []
        return cls(**fields)


# -- finding the built posts ---------------------------------------------------


def posts_path(config: Config) -> Path:
    """Where plugins/mail_posts wrote the records (the rule is blogcore.records')."""
    try:
        return records_folder(config.settings, ROOT)
    except RecordsError as error:
        raise PostError(str(error)) from None


def content_folder(config: Config) -> Path:
    content = Path(config.settings.get("PATH") or "content")
    return content if content.is_absolute() else ROOT / content


def source_slugs(config: Config) -> dict[str, Path]:
    """Slugs of the Markdown posts in the content folder (Slug: header, else the file name)."""
    content = content_folder(config)
    found = {}
    for path in sorted(content.rglob("*.md")):
        if "pages" in path.relative_to(content).parts:
            continue
        try:
            slug = read_header(path).get("slug") or path.stem
        except UnicodeDecodeError:
            slug = path.stem
        found[slug] = path
    return found


def load_post(config: Config, slug: str) -> Post:
    """The built record of one post, or a PostError that tells the author what to do."""
    try:
        found, built = read_record(posts_path(config), slug)
    except RecordsError as error:
        raise PostError(str(error)) from None
    if found is None:
        if slug in source_slugs(config):
            raise PostError(f"Post '{slug}' is not built yet: run make build first.")
        known = built or sorted(source_slugs(config))
        close = difflib.get_close_matches(slug, known, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        listing = ", ".join(known) if known else "none (run make build first)"
        raise PostError(f"No post with slug '{slug}'.{hint} Known slugs: {listing}.")
    post = Post.from_record(found)
    if not post.url.startswith(config.public_url.rstrip("/") + "/"):
        # Otherwise a mail would mix the post's links with unsubscribe links to another site.
        built_for = "{0.scheme}://{0.netloc}".format(urlsplit(post.url))
        raise PostError(f"Post '{slug}' was built for {built_for} but the newsletter is set up "
                        f"for {config.public_url}: build and send with the same settings "
                        "(make publish then NEWSLETTER_SETTINGS=publishconf.py make send, or the same PORT).")
    source = Path(post.source_path)
    if not source.is_file():
        raise PostError(f"Post '{slug}': its source {source} is gone; run make build first.")
    if hashlib.sha256(source.read_bytes()).hexdigest() != post.source_sha256:
        raise PostError(f"Post '{slug}': {source.name} changed since the last build; run make build first, "
                        "so the mail is what the site shows.")
    return post


def load_posts(config: Config, slugs: list[str]) -> list[Post]:
    return [load_post(config, slug) for slug in slugs]


# -- rendering once per send ------------------------------------------------------


def site_domain(config: Config) -> str:
    """The site's domain for Message-ID and List-Id: PUBLIC_URL's host, or the sender's domain in development."""
    host = urlsplit(config.public_url).hostname or ""
    if not host or host == "localhost" or host.replace(".", "").isdigit() or ":" in host:
        host = parseaddr(config.mail_from)[1].rpartition("@")[2] or "localhost"
    return host.lower()


def subject_of(config: Config, posts: list[Post]) -> str:
    if len(posts) == 1:
        return posts[0].title_text
    return fix_text(f"{config.site_name} : {len(posts)} nouveaux billets")


def _environment(config: Config) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    zone = site_zone(config.settings)  # the site's dates, so the mail says what the page says
    env.filters["local_date"] = lambda date, lang, year=True: local_date(date, lang, zone, year)
    return env


class _Kept:
    """Texts French typography must not touch (a post in another language), held out of the page by a
    placeholder while the template's own French words are fixed, then put back."""

    def __init__(self):
        self.texts: list[str] = []

    def hold(self, text) -> str:
        self.texts.append(str(text))
        return f"xKEPT{len(self.texts) - 1}x9f2c7e1bx"  # letters and digits only: fix_html leaves it alone

    def restore(self, page: str) -> str:
        for number, text in enumerate(self.texts):
            page = page.replace(f"xKEPT{number}x9f2c7e1bx", text)
        return page


def render_html(config: Config, posts: list[Post], unsubscribe_url: str = PLACEHOLDER) -> str:
    """The HTML mail with its CSS inlined (the @media rules kept in <style>)."""
    subject = subject_of(config, posts)
    preheader = posts[0].summary_text if len(posts) == 1 else " · ".join(p.title_text for p in posts)
    kept = _Kept()
    if len(posts) == 1 and not posts[0].french:
        subject, preheader = kept.hold(markupsafe.escape(subject)), kept.hold(markupsafe.escape(preheader))
    mailed = [_for_mail(config, post) for post in posts]
    fixed = [post if post.french else _held(post, kept) for post in mailed]
    page = _environment(config).get_template("post.html").render(
        subject=subject, preheader=preheader, preheader_padding=markupsafe.Markup(PREHEADER_PADDING),
        posts=fixed, digest=len(posts) > 1, site_name=config.site_name, public_url=config.public_url,
        unsubscribe_url=unsubscribe_url, css=(TEMPLATES / "email.css").read_text(encoding="utf-8"))
    inliner = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False, minify_css=True)
    return inliner.inline(kept.restore(fix_html(page)))  # the template's own words get French spacing too


def _held(post: Post, kept: _Kept) -> Post:
    """The post with its title, summary and content held out of French typography."""
    return replace(post, title=kept.hold(post.title), summary_html=kept.hold(post.summary_html),
                   content_html=kept.hold(post.content_html))


def _for_mail(config: Config, post: Post) -> Post:
    """The post's HTML made to hold in a narrow mail: every image gets an alt attribute (empty when the
    author gave none) and, when its file is in content/, its width and height (Outlook sizes images by
    these, and a client that blocks images keeps the room); every table scrolls inside its own box."""
    def mailable(html: str) -> str:
        html = _IMG_NO_ALT.sub('<img alt=""', html)
        html = _IMG.sub(lambda tag: _sized(config, tag.group(0)), html)
        html = _TABLE.sub('<div class="table-scroll"><table', html)
        return _TABLE_END.sub("</table></div>", html)
    return replace(post, content_html=mailable(post.content_html), summary_html=mailable(post.summary_html))


def _sized(config: Config, tag: str) -> str:
    """An <img> tag with width and height from its file, scaled down to the column; as it was when the
    author set a size, or when the image is not a readable file of the content folder (a remote one)."""
    found = _SRC.search(tag)
    if not found or _SIZED.search(tag):
        return tag
    src = found.group(1) if found.group(1) is not None else found.group(2)
    site = config.public_url.rstrip("/") + "/"
    if src.startswith(site):
        src = "/" + src[len(site):]
    if not src.startswith("/") or src.startswith("//"):
        return tag
    content = content_folder(config).resolve()
    path = (content / unquote(urlsplit(src).path).lstrip("/")).resolve()
    if not path.is_relative_to(content) or not path.is_file():
        return tag
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        logger.warning("Image %s: size not read (%s); the mail gives it none", path, error)
        return tag
    if width > COLUMN_WIDTH:
        width, height = COLUMN_WIDTH, max(1, round(height * COLUMN_WIDTH / width))
    return f'{tag[:4]} width="{width}" height="{height}"{tag[4:]}'


def render_plain(config: Config, posts: list[Post], unsubscribe_url: str = PLACEHOLDER) -> str:
    """The text/plain alternative: the post from its Markdown, or the digest's summaries."""
    markdown_settings = config.settings.get("MARKDOWN") or {}
    zone = site_zone(config.settings)
    parts = []
    if len(posts) == 1:
        post = posts[0]
        head = [post.title_text, "=" * len(post.title_text), ""]
        meta = local_date(post.date, post.lang, zone) + (f" · {post.author}" if post.author else "")
        if post.category:
            meta = f"{post.category['name']} · {meta}"
        head += [fix_text(meta) if post.french else meta, ""]
        body = render_text(Path(post.source_path).read_text(encoding="utf-8"), post.url, markdown_settings,
                           post.content_html, french=post.french)
        parts.append("\n".join(head) + "\n" + body.rstrip("\n"))
        parts.append(fix_text("Lire sur le blog :") + f" {post.url}")
    else:
        subject = subject_of(config, posts)
        parts.append(f"{subject}\n{'=' * len(subject)}")
        for post in posts:
            lines = [post.title_text, "-" * len(post.title_text)]
            meta = local_date(post.date, post.lang, zone) + (f" · {post.category['name']}" if post.category else "")
            lines.append(fix_text(meta) if post.french else meta)
            lines.append("")
            summary = fix_text(post.summary_text) if post.french else post.summary_text
            lines += textwrap.wrap(summary, WIDTH, break_long_words=False, break_on_hyphens=False)
            lines += ["", fix_text("Lire sur le blog :") + f" {post.url}"]
            parts.append("\n".join(lines))
    parts.append("-- \n"
                 + fix_text(f"Vous recevez cette lettre parce que vous vous êtes inscrit sur {config.site_name}.")
                 + "\n" + fix_text("Se désinscrire en un clic :") + f"\n{unsubscribe_url}")
    return "\n\n".join(parts) + "\n"


# -- the per-reader message -------------------------------------------------------


def _header(value: str) -> str:
    """A header value, RFC 2047-encoded when it isn't ASCII."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def _address(value: str) -> str:
    name, addr = parseaddr(value)
    return formataddr((name, addr), charset="utf-8") if name else addr


@dataclass
class Mail:
    """A rendered send: subject, HTML and text with a placeholder for the unsubscribe link."""

    subject: str
    html: str
    text: str
    headers: list[tuple[str, str]]
    domain: str

    def __post_init__(self):
        self._html = Line(self.html, PLACEHOLDER, lambda url: html.escape(url, quote=True))
        self._text = Line(self.text, PLACEHOLDER, lambda url: url)
        self._wire: list[bytes | str] | None = None  # the message flattened once with stand-ins, cut around them

    def message(self, to: str, unsubscribe_url: str, unsubscribe_mailto: str) -> EmailMessage:
        """The message for one reader. Only To, Message-ID and the unsubscribe links are theirs."""
        return self._assemble(to, formatdate(localtime=True), f"<{uuid.uuid4().hex}@{self.domain}>",
                              f"<{unsubscribe_url}>, <{unsubscribe_mailto}>", uuid.uuid4().hex,
                              _lines(self._text.encoded(unsubscribe_url)), _lines(self._html.encoded(unsubscribe_url)))

    def wire(self, to: str, unsubscribe_url: str, unsubscribe_mailto: str) -> bytes:
        """The bytes of message(…) as the relay gets them (CRLF, not DKIM-signed: the mailer signs them),
        filled in from the message flattened once (stand_ins.py): what `make send` sends to each reader."""
        if not (to + unsubscribe_url + unsubscribe_mailto).isascii():  # refused at signup; kept as it was
            return wire_bytes(self.message(to, unsubscribe_url, unsubscribe_mailto))
        if self._wire is None:
            self._wire = self._flattened_once()
        return fill(self._wire, {
            TO_STAND_IN: header_line("To", to),
            DATE_STAND_IN: date_now(),
            ID_STAND_IN: f"<{uuid.uuid4().hex}@{self.domain}>".encode("ascii"),
            UNSUBSCRIBE_STAND_IN: header_line("List-Unsubscribe", f"<{unsubscribe_url}>, <{unsubscribe_mailto}>"),
            TEXT_STAND_IN: self._text.encoded(unsubscribe_url),
            HTML_STAND_IN: self._html.encoded(unsubscribe_url),
        })

    def _flattened_once(self) -> list[bytes | str]:
        msg = self._assemble(TO_STAND_IN, DATE_STAND_IN, ID_STAND_IN, UNSUBSCRIBE_STAND_IN,
                             "=_" + uuid.uuid4().hex,  # no quoted-printable line can hold "=_"
                             TEXT_STAND_IN, HTML_STAND_IN)
        return cut(wire_bytes(msg), [TO_STAND_IN, DATE_STAND_IN, ID_STAND_IN, UNSUBSCRIBE_STAND_IN,
                                     TEXT_STAND_IN, HTML_STAND_IN],
                   headers={"To": TO_STAND_IN, "List-Unsubscribe": UNSUBSCRIBE_STAND_IN})

    def _assemble(self, to: str, date: str, message_id: str, list_unsubscribe: str, boundary: str,
                  text: str, html: str) -> EmailMessage:
        msg = EmailMessage(policy=POLICY)
        for name, value in self.headers:
            msg[name] = value
        msg["To"] = to
        msg["Date"] = date
        msg["Message-ID"] = message_id
        msg["List-Unsubscribe"] = list_unsubscribe
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg["MIME-Version"] = "1.0"
        msg["Content-Type"] = f'multipart/alternative; boundary="{boundary}"'
        msg.set_payload([_part("plain", text), _part("html", html)])
        return msg

    def sample(self, unsubscribe_url: str) -> tuple[str, str]:
        """The HTML and text as one reader sees them (preview, dry run)."""
        return (self.html.replace(PLACEHOLDER, html.escape(unsubscribe_url, quote=True)),
                self.text.replace(PLACEHOLDER, unsubscribe_url))


def _lines(encoded: bytes) -> str:
    return encoded.decode("ascii").replace("\r\n", "\n")


def _part(subtype: str, payload: str) -> Message:
    part = Message(policy=POLICY)
    part["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(payload)
    return part


def build_mail(config: Config, posts: list[Post]) -> Mail:
    """Render and encode the parts shared by every reader, once."""
    if not posts:
        raise ValueError("build_mail needs at least one post")
    domain = site_domain(config)
    subject = subject_of(config, posts)
    headers = [
        ("From", _address(config.mail_from)),
        ("Subject", _header(subject)),
        ("List-Id", f"{_header(config.site_name)} <egoblog.{domain}>"),
    ]
    if config.reply_to:
        headers.insert(1, ("Reply-To", _address(config.reply_to)))
    return Mail(subject=subject, html=render_html(config, posts), text=render_plain(config, posts),
                headers=headers, domain=domain)
