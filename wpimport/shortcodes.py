"""WordPress shortcodes in an export's body, replaced by plain HTML before the body becomes Markdown.

WordPress runs a shortcode only when a plugin registered its name; the export holds the raw
text. Here a shortcode is replaced when its name is known (WordPress's own and those of
common plugins), or when its form leaves no doubt: `[name attr="…"]`, or `[name]…[/name]`.
A bracketed word in a sentence (`[sic]`, `[1]`, `[Mise à jour]`) is text and stays.
`[[name]]` is how WordPress writes a shortcode literally: it becomes `[name]`.

What each becomes (URLs stay as the export has them; the body converter rewrites them all
in one place, copying uploads and turning third-party media into links):

- caption: a figure with its image and caption; gallery: a figure per image (from the
  export's attachments); playlist: a list of links;
- video, audio: a <video> or <audio> element; embed and the embeds of Jetpack and other
  plugins (youtube, vimeo, tweet…): a link (the site loads nothing from elsewhere);
- code, sourcecode and the like (SyntaxHighlighter): a code block with its language;
- footnote, ref, efn_note: a note, which the converter makes a Markdown footnote;
- anything else: its content if it has one, else nothing, and a note in the summary.
"""
import html
import re
from dataclasses import dataclass, field

SHORTCODE = re.compile(r"""
    \[(?P<open>\[?)
    (?P<name>[A-Za-z][\w-]*)(?![\w-])
    (?P<attrs>[^\]/]*(?:/(?!\])[^\]/]*)*?)
    (?:
        /\]
      | \](?:(?P<content>[^\[]*(?:\[(?!/(?P=name)\])[^\[]*)*)\[/(?P=name)\])?
    )
    (?P<close>\]?)
""", re.X)
# wp-includes/shortcodes.php, shortcode_parse_atts: name="v", name='v', name=v, "v", 'v', v
ATTRIBUTE = re.compile(r"""([\w-]+)\s*=\s*"([^"]*)"(?:\s|$)|([\w-]+)\s*=\s*'([^']*)'(?:\s|$)"""
                       r"""|([\w-]+)\s*=\s*([^\s'"]+)(?:\s|$)|"([^"]*)"(?:\s|$)|'([^']*)'(?:\s|$)|(\S+)(?:\s|$)""")
CURLY_QUOTES = str.maketrans({"”": '"', "“": '"', "″": '"', "‘": "'", "’": "'", "′": "'", "\u00a0": " ", "\u200b": " "})
ORPHAN_CLOSE = re.compile(r"\[/([A-Za-z][\w-]*)\]")  # a closing tag left without its opening one
URL = re.compile(r"""https?://[^\s"'<>\]\[]+""")
MEDIA_START = re.compile(r"^\s*((?:<a\s[^>]*>\s*)?<img\s[^>]*>(?:\s*</a>)?)", re.I | re.S)

CODE = {"code", "sourcecode", "source", "syntax", "php", "js", "javascript", "python", "py", "bash", "shell",
        "sh", "css", "html", "xml", "sql", "java", "c", "cpp", "ruby", "perl", "text", "plain", "json", "yaml"}
NOTES = {"footnote", "ref", "efn_note", "fn", "note"}
EMBEDS = {"youtube", "vimeo", "dailymotion", "tweet", "twitter", "instagram", "soundcloud", "spotify", "googlemaps",
          "slideshare", "flickr", "ted", "facebook", "scribd", "issuu", "bandcamp", "mixcloud", "wpvideo", "archiveorg",
          "gist", "kickstarter", "podcast", "pinterest", "tiktok", "mastodon"}
VIDEO_SOURCES = ("src", "mp4", "m4v", "webm", "ogv", "wmv", "flv", "mov")
AUDIO_SOURCES = ("src", "mp3", "ogg", "oga", "m4a", "wav", "wma", "flac")
# Names seen alone ([toc]) in real blogs: always shortcodes, never words.
BARE = {"toc", "contact-form", "recent-posts", "sitemap", "wpforms", "mc4wp_form", "archives", "subscribe",
        "jetpack_subscription_form", "blog_subscription_form", "related_posts", "jp_related_posts", "ez-toc",
        "display-posts", "bws_google_captcha", "sharethis", "ssba", "addtoany", "column", "one_half", "one_third",
        "two_thirds", "one_fourth", "clear", "divider", "pullquote", "dropcap", "button", "box", "alert",
        "highlight", "tabs", "tab", "accordion", "toggle", "spoiler", "row", "col", "vc_row", "vc_column",
        "vc_column_text", "et_pb_section", "et_pb_row", "et_pb_column", "et_pb_text", "fusion_builder_container",
        "fusion_builder_row", "fusion_builder_column", "fusion_text"} | CODE | NOTES | EMBEDS | {
        "caption", "wp_caption", "gallery", "embed", "video", "audio", "playlist"}


@dataclass
class Shortcode:
    name: str  # lower case
    attrs: dict  # named attributes, values unescaped
    positional: list
    content: str | None  # None: self-closing
    raw: str


@dataclass
class Attachment:
    url: str
    title: str = ""
    caption: str = ""
    alt: str = ""


@dataclass
class Context:
    """What the shortcodes of one post need from the export, and where they leave notes for the summary."""

    post_id: int
    attachments: dict  # id -> Attachment
    children: dict  # post id -> [attachment ids] in menu order
    notes: list = field(default_factory=list)


def parse_attributes(text: str) -> tuple[dict, list]:
    """Named and positional attributes, as WordPress reads them."""
    named, positional = {}, []
    for match in ATTRIBUTE.finditer(text.translate(CURLY_QUOTES)):
        if match[1]:
            named[match[1].lower()] = html.unescape(match[2])
        elif match[3]:
            named[match[3].lower()] = html.unescape(match[4])
        elif match[5]:
            named[match[5].lower()] = html.unescape(match[6])
        else:
            value = match[7] if match[7] is not None else match[8] if match[8] is not None else match[9]
            positional.append(html.unescape(value))
    return named, positional


def expand(text: str, context: Context) -> str:
    """`text` with every shortcode replaced by HTML."""
    if "[" not in text:
        return text

    def one(match):
        if match["open"] and match["close"]:
            return match[0][1:-1]  # [[name]]: written literally
        named, positional = parse_attributes(match["attrs"] or "")
        code = Shortcode(match["name"].lower(), named, positional, match["content"], match[0])
        replaced = replace(code, context)
        if replaced is None:
            return match[0]
        return match["open"] + replaced + match["close"]

    text = SHORTCODE.sub(one, text)
    return ORPHAN_CLOSE.sub(lambda m: "" if m[1].lower() in BARE else m[0], text)


def replace(code: Shortcode, context: Context) -> str | None:
    """The HTML for one shortcode, or None to leave it as text."""
    name, content = code.name, code.content
    if name in ("caption", "wp_caption"):
        return caption(code, context)
    if name == "gallery":
        return gallery(code, context)
    if name == "playlist":
        return playlist(code, context)
    if name in ("video", "audio"):
        return media(code, context)
    if name == "embed" or name in EMBEDS:
        return embed(code, context)
    if name in CODE:
        language = code.attrs.get("language") or code.attrs.get("lang") or (name if name not in (
            "code", "sourcecode", "source", "syntax", "text", "plain") else "")
        body = html.escape(html.unescape((content or "").strip("\n")), quote=False)
        css = f' class="language-{html.escape(language.lower())}"' if language else ""
        return f"<pre><code{css}>{body}</code></pre>"
    if name in NOTES and content is not None:
        return f"<sup data-wpimport-note>{expand(content, context)}</sup>"
    has_attrs = bool(code.attrs) or "=" in code.raw.split("]", 1)[0]
    if content is None and not has_attrs and name not in BARE:
        return None  # [sic], [1]…: a word in brackets
    if content is not None:
        context.notes.append(f"shortcode [{name}] unwrapped (its content kept)")
        return expand(content, context)
    context.notes.append(f"shortcode [{name}] removed")
    return ""


def caption(code: Shortcode, context: Context) -> str:
    """[caption …]<a><img></a> Text[/caption] (or caption="Text", before WordPress 3.4): a figure."""
    content = expand(code.content or "", context)
    found = MEDIA_START.match(content)
    media_html, text = (found[1], content[found.end():]) if found else ("", content)
    if media_html.lower().count("<a ") > media_html.lower().count("</a>"):
        media_html += "</a>"  # an unclosed link around the image: close it before the caption
    text = (code.attrs.get("caption") or text).strip()
    if not media_html:
        return content
    return f"<figure>{media_html}<figcaption>{text}</figcaption></figure>" if text else f"<figure>{media_html}</figure>"


def _ids(value: str) -> list[int]:
    return [int(part) for part in re.findall(r"\d+", value or "")]


def gallery(code: Shortcode, context: Context) -> str:
    """[gallery ids="1,2"] (or the post's own attachments): one figure per image, captions kept."""
    ids = _ids(code.attrs.get("ids") or code.attrs.get("include", ""))
    if not ids:
        parent = int(code.attrs["id"]) if code.attrs.get("id", "").isdigit() else context.post_id
        excluded = set(_ids(code.attrs.get("exclude", "")))
        ids = [i for i in context.children.get(parent, []) if i not in excluded]
    figures = []
    for attachment_id in ids:
        attachment = context.attachments.get(attachment_id)
        if attachment is None:
            context.notes.append(f"[gallery]: attachment {attachment_id} is not in the export")
            continue
        alt = html.escape(attachment.alt or attachment.title, quote=True)
        image = f'<img src="{html.escape(attachment.url, quote=True)}" alt="{alt}">'
        text = attachment.caption.strip()
        figures.append(f"<figure>{image}<figcaption>{text}</figcaption></figure>" if text
                       else f"<figure>{image}</figure>")
    if not figures:
        context.notes.append("[gallery] without images removed")
    return "\n\n".join(figures)


def playlist(code: Shortcode, context: Context) -> str:
    """[playlist ids="…"]: a list of links to the files."""
    ids = _ids(code.attrs.get("ids", "")) or context.children.get(context.post_id, [])
    items = []
    for attachment_id in ids:
        attachment = context.attachments.get(attachment_id)
        if attachment is not None:
            title = html.escape(attachment.title or attachment.url.rsplit("/", 1)[-1])
            items.append(f'<li><a href="{html.escape(attachment.url, quote=True)}">{title}</a></li>')
    return f"<ul>{''.join(items)}</ul>" if items else ""


def media(code: Shortcode, context: Context) -> str:
    """[video mp4="…"] or [audio mp3="…"]: the element, with the first source given."""
    sources = VIDEO_SOURCES if code.name == "video" else AUDIO_SOURCES
    url = next((code.attrs[key] for key in sources if code.attrs.get(key)), "")
    if not url:
        found = URL.search(code.content or "")
        url = found[0] if found else ""
    if not url:
        context.notes.append(f"[{code.name}] without a file removed")
        return ""
    return f'<{code.name} controls src="{html.escape(url, quote=True)}"></{code.name}>'


def embed(code: Shortcode, context: Context) -> str:
    """[embed]URL[/embed], [youtube URL], [vimeo 123], [tweet URL]…: a link to what was embedded."""
    found = URL.search(code.content or "") or URL.search(code.raw)
    url = found[0] if found else ""
    if not url:
        value = code.attrs.get("id") or (code.positional[0] if code.positional else "").lstrip("=")
        if code.name == "youtube" and value:
            url = f"https://www.youtube.com/watch?v={value}"
        elif code.name == "vimeo" and value:
            url = f"https://vimeo.com/{value}"
    if not url:
        context.notes.append(f"[{code.name}] without an address removed")
        return ""
    return f'<p><a href="{html.escape(url, quote=True)}" data-wpimport-embed>{html.escape(url)}</a></p>'
