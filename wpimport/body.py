"""A WordPress body, from the block editor or the classic one, as clean Markdown for Pelican.

The steps follow the order in which WordPress shows a post:

1. reusable blocks (<!-- wp:block {"ref":12} /-->) are replaced by their content;
2. HTML comments go: the block editor's <!-- wp:… --> markers, <!--more-->, <!--nextpage-->;
3. shortcodes become HTML (wpimport.shortcodes);
4. a classic-editor post gets its paragraphs (wpimport.autop); a block-editor post has them;
5. the HTML is cleaned (below), then markdownify writes the Markdown, with what
   Python-Markdown needs: nested lists indented by four spaces, code blocks inside a list
   or a quote indented rather than fenced, a captioned image as a raw <figure>.

Cleaning. Headings start at h2 and never skip a level (the page's h1 is the title). Nothing of
WordPress's presentation is kept: classes, styles, ids and data
attributes go with every tag markdownify does not write. Scripts, styles, forms and SVG
icons go. Paragraphs holding nothing but spaces (&nbsp;) go. The site loads nothing from
elsewhere (the privacy promise), so an iframe, an embed block, a bare URL that WordPress
would have embedded, a video or an image from another site become links. Uploads are
copied and linked locally (wpimport.media); links to other imported posts and pages become
Pelican's `{filename}` links, so they survive a change of URL settings. Emoji images become
their character. Footnotes (the block editor's and the footnote shortcodes) become
Markdown footnotes. No-break spaces become plain spaces: French typography is the build's
job (plugins/french_typography), as for every post the author writes.
"""
import html
import json
import re
import warnings
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from bs4 import BeautifulSoup, Comment, MarkupResemblesLocatorWarning, NavigableString, Tag
from markdownify import MarkdownConverter

from . import shortcodes
from .autop import autop

ATTRIBUTES = r"\{(?:(?!-->).)*?\}"  # a block's JSON attributes, inside its comment
REUSABLE = re.compile(rf"<!--\s*wp:(?:core/)?block\s+({ATTRIBUTES})\s*/-->", re.S)
SELF_CLOSING_BLOCK = re.compile(rf"<!--\s*wp:([a-z][a-z0-9_-]*(?:/[a-z0-9_-]+)?)(?:\s+{ATTRIBUTES})?\s*/-->", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
QUIET_BLOCKS = {"more", "nextpage", "footnotes", "spacer", "separator", "block", "image", "embed", "html",
                "paragraph", "heading"}
DROPPED_TAGS = ("script", "style", "noscript", "form", "input", "select", "textarea", "button", "link", "meta",
                "template", "svg", "canvas", "map", "area", "head", "title")
BLOCKISH = ("center", "address", "aside", "header", "footer", "main", "hgroup", "nav", "details", "section",
            "article")
PROVIDERS = (("youtube.com", "YouTube"), ("youtu.be", "YouTube"), ("vimeo.com", "Vimeo"),
             ("dailymotion.com", "Dailymotion"), ("twitter.com", "Twitter"), ("x.com", "X"),
             ("instagram.com", "Instagram"), ("facebook.com", "Facebook"), ("soundcloud.com", "SoundCloud"),
             ("spotify.com", "Spotify"), ("slideshare.net", "SlideShare"), ("flickr.com", "Flickr"),
             ("ted.com", "TED"), ("google.com", "Google"), ("linkedin.com", "LinkedIn"), ("tiktok.com", "TikTok"))
BARE_URL = re.compile(r"^\s*https?://\S+\s*$")
SEPARATOR = "WPIMPORTSEPARATORX"
NOTE_MARK = "WPIMPORTNOTE{}X"
NOTE = re.compile(r"WPIMPORTNOTE(\d+)X")
LINE_START = re.compile(r"(^|\n)([ \t]*)([#>+-])")
NUMBERED = re.compile(r"(^|\n)([ \t]*\d{1,9})([.)])(?=[ \t]|$)")
ENTITY_LIKE = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
FENCE = re.compile(r"^(`{3,}|~{3,})")
LEFTOVERS = re.compile(r"<!--\s*/?wp:|<!--\s*(?:more|nextpage)|\[/?(?:caption|gallery|embed|video|audio|playlist)\b|wp-block-|\bwp-image-\d|"
                       r"\bclass=|&nbsp;|\baligncenter\b|\balignleft\b|\balignright\b|\bsize-(?:large|medium|full)\b")
UNSAFE_SCHEMES = ("javascript:", "vbscript:", "data:text")
BLOCK_STARTS = {"p", "li", "div", "blockquote", "td", "th", "dd", "dt", "figcaption", "[document]", "section", "article"}
BLOCK_TAGS = {"p", "div", "ul", "ol", "li", "blockquote", "figure", "figcaption", "table", "pre", "h1", "h2", "h3",
              "h4", "h5", "h6", "hr", "cite", "dl", "dd", "dt"}
INLINE_ALLOWED = {"a", "em", "strong", "i", "b", "code", "br", "sup", "sub", "abbr", "q", "cite", "small", "del"}


@dataclass
class Body:
    markdown: str
    notes: list = field(default_factory=list)  # what the summary should say about this post


class Converter:
    """Converts the bodies of one export; knows its attachments, reusable blocks, uploads and imported posts."""

    def __init__(self, media, site, attachments: dict, children: dict, reusable: dict, resolve, french=True):
        self.media = media  # wpimport.media.Media
        self.site = site  # wpimport.oldsite.OldSite
        self.attachments = attachments  # id -> shortcodes.Attachment
        self.attachment_pages = {}  # old path key of an attachment page -> file URL
        self.children = children  # post id -> [attachment ids]
        self.reusable = reusable  # wp_block id -> content
        self.resolve = resolve  # old address -> Pelican link ({filename}…) or None
        self.french = french

    # -- the whole body ----------------------------------------------------------------------------------

    def convert(self, content: str, post_id: int, where: str, footnotes_meta: str = "") -> Body:
        notes = []
        markdown, notes_html = self._markdown(content, post_id, where, notes, footnotes_meta)
        markdown = NOTE.sub(lambda m: f"[^{m[1]}]", markdown).replace(SEPARATOR, "<!-- -->")
        if notes_html:
            definitions = []
            for number, note in enumerate(notes_html, start=1):
                text = self._markdown(note, post_id, where, notes)[0].strip()
                lines = text.split("\n")
                definitions.append(f"[^{number}]: " + "\n".join([lines[0]] + [("    " + x if x else "")
                                                                         for x in lines[1:]]))
            markdown = markdown.rstrip("\n") + "\n\n" + "\n".join(definitions) + "\n"
        if LEFTOVERS.search(_outside_code(markdown)):
            notes.append(f"WordPress markup left in the text: {LEFTOVERS.search(_outside_code(markdown))[0]!r}")
        return Body(markdown, notes)

    def summary(self, excerpt: str, post_id: int, where: str) -> str:
        """An excerpt as one line of Markdown, for the Summary header."""
        if not excerpt.strip():
            return ""
        text, _ = self._markdown(excerpt, post_id, where, [])
        text = re.sub(r"<figure>.*?</figure>|!\[[^\]]*\]\([^)]*\)", "", text)
        return re.sub(r"\s+", " ", text).strip()

    def _markdown(self, content: str, post_id: int, where: str, notes: list, footnotes_meta: str = ""):
        content = self._inline_reusable(content, notes)
        blocks = "<!-- wp:" in content
        for name in SELF_CLOSING_BLOCK.findall(content):
            base = name.split("/")[-1] if name.startswith("core/") else name
            if base not in QUIET_BLOCKS:
                notes.append(f"dynamic block wp:{name} dropped (WordPress drew it on each visit)")
        content = COMMENT.sub("", content)
        context = shortcodes.Context(post_id, self.attachments, self.children)
        content = shortcodes.expand(content, context)
        notes.extend(context.notes)
        if not blocks:
            content = autop(content)
        with warnings.catch_warnings():  # a body that is only a URL is a body, not a file name to open
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            soup = BeautifulSoup(content, "html.parser")
        footnotes = _footnotes(footnotes_meta)
        notes_html = self._clean(soup, where, notes, footnotes)
        text = _Markdown(french=self.french).convert_soup(soup)
        return _tidy(text), notes_html

    def _inline_reusable(self, content: str, notes: list, depth: int = 0) -> str:
        def one(match):
            try:
                ref = int(json.loads(match[1]).get("ref", 0))
            except (ValueError, TypeError, AttributeError):
                ref = 0
            if ref in self.reusable and depth < 5:
                return self._inline_reusable(self.reusable[ref], notes, depth + 1)
            notes.append(f"reusable block {ref} is not in the export: dropped")
            return ""
        return REUSABLE.sub(one, content)

    # -- cleaning ------------------------------------------------------------------------------------------

    def _clean(self, soup, where: str, notes: list, footnotes: dict) -> list:
        for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
            comment.extract()
        for tag in soup.find_all(DROPPED_TAGS):
            tag.decompose()
        notes_html = self._footnotes(soup, footnotes)
        for summary in soup.find_all("summary"):
            summary.name = "strong"
            summary.wrap(soup.new_tag("p"))
        for tag in soup.find_all(BLOCKISH):
            tag.name = "div"
        for tag in soup.find_all(["ul", "li"], class_=re.compile("gallery")):
            tag.unwrap()  # the block editor's first galleries: a list of figures
        self._embeds(soup, notes)
        self._media_elements(soup, where, notes)
        self._images(soup, where, notes)
        self._links(soup, where)
        for quote_ in soup.find_all("blockquote"):
            for cite in quote_.find_all("cite"):
                if cite.get_text(strip=True):
                    cite.name = "p"
                    cite.insert(0, "— ")
                else:
                    cite.decompose()
        for table in soup.find_all("table"):  # one body: markdownify reads a footer or a second body as a header
            bodies = table.find_all(["tbody", "tfoot"])
            for extra in bodies[1:]:
                for row in extra.find_all("tr"):
                    bodies[0].append(row.extract())
                extra.decompose()
        for br in soup.find_all("br"):  # a break that ends a block breaks nothing
            following = br.next_sibling
            while isinstance(following, NavigableString) and not following.strip():
                following = following.next_sibling
            if following is None or (isinstance(following, Tag) and following.name in BLOCK_TAGS):
                br.decompose()
        for verse in soup.find_all("pre", class_=re.compile(r"wp-block-verse")):
            lines = verse.decode_contents().split("\n")
            verse.clear()
            verse.name = "p"
            verse.append(BeautifulSoup("<br>".join(lines), "html.parser"))
        _heading_levels(soup)
        _separate_neighbours(soup)
        for tag in soup.find_all(["p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "figure",
                                  "figcaption", "span", "a", "strong", "em", "b", "i"]):
            if tag.decomposed or tag.parent is None or not _empty(tag):
                continue
            if tag.name in ("span", "a", "strong", "em", "b", "i"):
                tag.replace_with(" " if tag.get_text() else "")  # keep the space between two words
            else:
                tag.decompose()
        return notes_html

    def _footnotes(self, soup, footnotes: dict) -> list:
        """Notes in reading order; each call site becomes a marker the Markdown turns into [^n]."""
        found = []
        for sup in soup.find_all("sup"):
            if sup.has_attr("data-wpimport-note"):
                text = sup.decode_contents()
            elif sup.has_attr("data-fn"):
                text = footnotes.get(sup["data-fn"], "")
            else:
                continue
            found.append(text)
            sup.replace_with(NavigableString(NOTE_MARK.format(len(found))))
        return found

    def _embeds(self, soup, notes: list):
        for figure in soup.find_all(["figure", "div"], class_=re.compile(r"wp-block-embed\b|wp-block-embed-")):
            if figure.parent is None:
                continue
            wrapper = figure.find(class_="wp-block-embed__wrapper")
            url = (wrapper.get_text(strip=True) if wrapper else "") or next(
                (a["href"] for a in figure.find_all("a", href=True)), "")
            caption = figure.find("figcaption")
            figure.replace_with(self._link_paragraph(soup, url, caption.get_text(" ", strip=True) if caption else ""))
        for frame in soup.find_all(["iframe", "embed", "object"]):
            url = frame.get("src") or frame.get("data") or ""
            if self.media.upload_path(url):  # a PDF shown in the page (file block): a link to it
                frame.replace_with(self._link_paragraph(soup, url, "Le document"))
            else:
                frame.replace_with(self._link_paragraph(soup, _watch_url(url), ""))
        for link in soup.find_all("a", attrs={"data-wpimport-embed": True}):
            link.parent.replace_with(self._link_paragraph(soup, link["href"], ""))
        for paragraph in soup.find_all("p"):
            if len(paragraph.contents) == 1 and isinstance(paragraph.contents[0], NavigableString) \
                    and BARE_URL.match(paragraph.contents[0]):  # a URL alone on its line: WordPress embedded it
                paragraph.replace_with(self._link_paragraph(soup, paragraph.get_text(strip=True), ""))

    def _link_paragraph(self, soup, url: str, caption: str) -> Tag:
        """What an embed becomes: « YouTube : <a>…</a> », or the caption as the link's text."""
        paragraph = soup.new_tag("p")
        if not url:
            return paragraph  # removed as empty
        link = soup.new_tag("a", href=url)
        provider = _provider(url)
        link.string = caption or url
        if provider and not caption:
            paragraph.append(f"{provider} : ")
        paragraph.append(link)
        return paragraph

    def _media_elements(self, soup, where: str, notes: list):
        for element in soup.find_all(["video", "audio"]):
            source = element.get("src") or next((s.get("src") for s in element.find_all("source") if s.get("src")), "")
            local = self.media.link(source, where) if source else None
            if local:
                clean = soup.new_tag(element.name, controls=None, src=local)
                fallback = soup.new_tag("a", href=local)
                fallback.string = "Télécharger la vidéo" if element.name == "video" else "Télécharger le son"
                clean.append(fallback)
                element.replace_with(clean)
            else:
                label = "Vidéo" if element.name == "video" else "Son"
                paragraph = soup.new_tag("p")
                if source:
                    link = soup.new_tag("a", href=source)
                    link.string = source
                    paragraph.append(f"{label} : ")
                    paragraph.append(link)
                element.replace_with(paragraph)

    def _images(self, soup, where: str, notes: list):
        for image in soup.find_all("img"):
            src = image.get("src", "")
            for lazy in ("data-src", "data-lazy-src", "data-orig-file", "data-large-file"):
                if (not src or src.startswith("data:image/gif")) and image.get(lazy):
                    src = image[lazy]
            alt = image.get("alt", "")
            classes = " ".join(image.get("class", []))
            if "wp-smiley" in classes or "emoji" in classes or "/images/core/emoji/" in src:
                image.replace_with(alt)
                continue
            local = self.media.link(src, where)
            if local == "":
                image.decompose()
                continue
            if local is None and src.startswith("data:"):
                local = src
            if local is None:
                parts = urlsplit(src)
                if not parts.netloc:  # the old site's own path, outside uploads: not in the export
                    self.media.note_missing(src, where)
                    local = src
                else:  # another site's image: the page would load it from there
                    notes.append(f"image from another site turned into a link: {src}")
                    label = alt or f"Image ({parts.hostname})"
                    if image.find_parent("a"):
                        image.replace_with(label)
                    else:
                        link = soup.new_tag("a", href=src)
                        link.string = label
                        image.replace_with(link)
                    continue
            image.attrs = {"src": local, "alt": alt}

    def _links(self, soup, where: str):
        for link in soup.find_all("a"):
            href = (link.get("href") or "").strip()
            if not href or href.lower().startswith(UNSAFE_SCHEMES) or href.startswith("#"):
                if href.startswith("#") and href[1:] and not link.find("img"):
                    link.attrs = {"href": href}
                else:
                    link.unwrap()
                continue
            target = self._target(href, where)
            if target == "":
                link.unwrap()
            else:
                link.attrs = {"href": target}

    def _target(self, href: str, where: str) -> str:
        """Where a link of the body goes on the new site ("" to drop the link and keep its text)."""
        local = self.media.link(href, where)
        if local is not None:
            return local
        old = self.site.path(href)
        if old is None:
            return href
        query = parse_qs(urlsplit(old).query)
        attachment = self.attachment_pages.get(self.site.key(old.split("#")[0]))
        if "attachment_id" in query or attachment is not None:
            url = attachment or getattr(self.attachments.get(int(query["attachment_id"][0])
                                                             if query.get("attachment_id", [""])[0].isdigit()
                                                             else -1), "url", "")
            return (self.media.link(url, where) or url) if url else ""
        fragment = urlsplit(href).fragment
        resolved = self.resolve(old)
        if resolved:
            return resolved + (f"#{fragment}" if fragment and not fragment.startswith(("comment", "respond",
                                                                                           "more-")) else "")
        return href


def _heading_levels(soup):
    """Headings from h2 down, one level at a time: the page's h1 is the title, and a skipped level (h2 then h4, or
    a post starting at h3) is an error for the HTML checker and a hole in the outline for screen readers."""
    stack = []  # (level in WordPress, level here), from the outermost section
    for heading in soup.find_all(["h1", "h2", "h3", "h4", "h5", "h6"]):
        level = int(heading.name[1])
        while stack and stack[-1][0] > level:
            stack.pop()
        if stack and stack[-1][0] == level:
            new = stack[-1][1]
        else:
            new = min(stack[-1][1] + 1, 6) if stack else 2
            stack.append((level, new))
        heading.name = f"h{new}"


def _family(tag, last: bool) -> str:
    """"list" or "quote" for what a block ends (last) or starts with in Markdown, through wrappers; else ""."""
    while isinstance(tag, Tag) and tag.name in ("div", "figure", "section", "article"):
        children = [c for c in tag.children if isinstance(c, Tag)]
        if not children or any(isinstance(c, NavigableString) and c.strip() for c in tag.children):
            return ""
        tag = children[-1] if last else children[0]
    if isinstance(tag, Tag):
        return "list" if tag.name in ("ul", "ol") else "quote" if tag.name == "blockquote" else ""
    return ""


def _separate_neighbours(soup):
    """Two lists, or two quotes, one after the other: Python-Markdown would make them one (a bullet list and a
    numbered one, a quote and a pull quote). An empty HTML comment between them keeps them apart."""
    for tag in soup.find_all(["ul", "ol", "blockquote", "div", "figure"]):
        family = _family(tag, last=False)
        if not family:
            continue
        previous = tag.previous_sibling
        while isinstance(previous, NavigableString) and not previous.strip():
            previous = previous.previous_sibling
        if isinstance(previous, Tag) and _family(previous, last=True) == family and tag.find_parent("li") is None:
            separator = soup.new_tag("p")
            separator.string = SEPARATOR
            tag.insert_before(separator)


def _footnotes(meta: str) -> dict:
    """The block editor's footnotes (post meta `footnotes`, JSON): id -> HTML."""
    if not meta:
        return {}
    try:
        return {note["id"]: note.get("content", "") for note in json.loads(meta) if isinstance(note, dict)}
    except (ValueError, TypeError, KeyError):
        return {}


def _watch_url(url: str) -> str:
    """A video player's address as the page a reader can open (YouTube's /embed/ID is /watch?v=ID)."""
    parts = urlsplit(url)
    if parts.netloc.endswith(("youtube.com", "youtube-nocookie.com")) and parts.path.startswith("/embed/"):
        return "https://www.youtube.com/watch?v=" + parts.path.split("/")[2]
    if parts.netloc == "player.vimeo.com" and parts.path.startswith("/video/"):
        return "https://vimeo.com/" + parts.path.split("/")[2]
    return ("https:" + url) if url.startswith("//") else url


def _provider(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return next((name for domain, name in PROVIDERS if host == domain or host.endswith("." + domain)), "")


def _empty(tag) -> bool:
    """A tag that shows nothing: only spaces (&nbsp; included), no image, media, rule or break of a line."""
    if tag.get_text().replace("\u00a0", " ").replace("\u200b", "").strip():
        return False  # most tags: text, decided without a search
    return tag.find(["img", "video", "audio", "hr", "table", "pre", "code"]) is None


def _outside_code(markdown: str) -> str:
    """The Markdown without its code blocks and code spans (where WordPress markup may be the subject)."""
    kept, fenced = [], None
    for line in markdown.split("\n"):
        match = FENCE.match(line)
        if fenced:
            if match and match[1][0] == fenced[0] and len(match[1]) >= len(fenced):
                fenced = None
            continue
        if match:
            fenced = match[1]
            continue
        if not line.startswith("    "):
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def _tidy(markdown: str) -> str:
    """No-break spaces as spaces, runs of spaces and blank lines collapsed, outside code; one final newline."""
    out, fenced, blank = [], None, 0
    for line in markdown.split("\n"):
        match = FENCE.match(line.lstrip())
        if fenced:
            out.append(line.replace("\u00a0", " "))  # the editor's &nbsp; indentation: copied code must run
            if match and match[1][0] == fenced[0] and len(match[1]) >= len(fenced):
                fenced = None
            continue
        if match:
            fenced = match[1]
        line = line.replace("\u00a0", " ").replace("\u202f", " ")
        hard_break = line.endswith("  ") and line.strip()
        indent = len(line) - len(line.lstrip(" "))
        line = " " * indent + re.sub(r" {2,}", " ", line.strip()) + ("  " if hard_break else "")
        if not line.strip():
            blank += 1
            if blank > 1:
                continue
            line = ""
        else:
            blank = 0
        out.append(line)
    lines = out
    for index, line in enumerate(lines):  # a hard break before a blank line or the end is nothing
        if line.endswith("  ") and (index + 1 == len(lines) or not lines[index + 1].strip()):
            lines[index] = line.rstrip()
    return "\n".join(lines).strip("\n") + "\n" if any(line.strip() for line in lines) else ""


def _url(url: str) -> str:
    """An address as a Markdown link destination: spaces and parentheses escaped, but in Pelican's own links
    ({category}Humeurs Marketing), which Pelican reads as written."""
    if url.startswith(("{category}", "{tag}", "{filename}", "{author}")):
        return url
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


class _Markdown(MarkdownConverter):
    """markdownify, writing what Python-Markdown (Pelican's reader, with `extra`) reads back as the same HTML."""

    def __init__(self, french=True):
        super().__init__(heading_style="atx", bullets="-", strong_em_symbol="*", sub_symbol="<sub>",
                         sup_symbol="<sup>", table_infer_header=True, keep_inline_images_in=["td", "th"],
                         code_language_callback=_language, escape_misc=False)
        self.french = french

    def process_text(self, el, parent_tags=None):
        previous = el.previous_sibling
        self.line_start = (previous is None and el.parent is not None and el.parent.name in BLOCK_STARTS) or (
            isinstance(previous, Tag) and previous.name == "br")
        return super().process_text(el, parent_tags)

    def escape(self, text, parent_tags):
        if not text:
            return ""
        text = text.replace("\\", "\\\\")
        text = super().escape(text, parent_tags)
        text = ENTITY_LIKE.sub("&amp;", text)  # before < becomes &lt;, whose & is ours
        text = text.replace("`", "\\`").replace("<", "&lt;")
        if "](" in text or "][" in text:
            text = text.replace("[", "\\[").replace("]", "\\]")
        if "td" in parent_tags or "th" in parent_tags:
            text = text.replace("|", "\\|")
        # What Markdown would read as a heading, a quote, a list or a rule, where a line begins: at the start of a
        # block or after a break, and after the text's own newlines; not after a word or a tag on the same line.
        head, newline, rest = ("", "", text) if getattr(self, "line_start", True) else text.partition("\n")
        if newline or not head:
            rest = NUMBERED.sub(r"\1\2\\\3", LINE_START.sub(r"\1\2\\\3", newline + rest))
        return head + rest

    def convert_br(self, el, text, parent_tags):
        if "pre" in parent_tags:
            return "\n"
        return super().convert_br(el, text, parent_tags)

    def convert_li(self, el, text, parent_tags):
        text = (text or "").strip()
        if not text:
            return "\n"
        parent = el.parent
        if parent is not None and parent.name == "ol":
            start = str(parent.get("start") or "1")
            start = int(start) if start.isdigit() else 1
            bullet = f"{start + len(el.find_previous_siblings('li'))}. "
        else:
            bullet = "- "
        lines = text.split("\n")
        end = "\n\n" if "\n\n" in text else "\n"  # after a block (a code block…), a blank line ends the item
        return bullet + lines[0] + "".join("\n" + ("    " + line if line else "") for line in lines[1:]) + end

    def convert_pre(self, el, text, parent_tags):
        if not text:
            return ""
        text = text.strip("\n")
        if parent_tags & {"li", "blockquote", "td", "th"}:  # fenced code is not read inside a list or a quote
            return "\n\n" + "\n".join("    " + line if line else "" for line in text.split("\n")) + "\n\n"
        longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
        fence = "`" * (longest + 1)
        return f"\n\n{fence}{_language(el) or ''}\n{text}\n{fence}\n\n"

    def convert_img(self, el, text, parent_tags):
        if "_inline" in parent_tags and el.parent.name not in self.options["keep_inline_images_in"]:
            return el.attrs.get("alt", "")
        alt = (el.attrs.get("alt") or "").replace("[", "\\[").replace("]", "\\]")
        return f"![{alt}]({_url(el.attrs.get('src', ''))})"

    def convert_a(self, el, text, parent_tags):
        if "_noformat" in parent_tags:
            return text
        href = el.get("href")
        prefix, inner, suffix = re.match(r"^(\s*)(.*?)(\s*)$", text, re.S).group(1, 2, 3)
        if not inner:
            return ""
        if not href:
            return text
        if inner.replace("\\_", "_") == href and href.startswith(("http://", "https://")):
            return f"{prefix}<{href}>{suffix}"
        return f"{prefix}[{inner}]({_url(href)}){suffix}"

    def convert_figure(self, el, text, parent_tags):
        image, caption = el.find("img"), el.find("figcaption")
        nested = parent_tags & {"li", "blockquote", "td", "th", "p"}
        if image is None or caption is None or el.find(["table", "figure"]) or nested:
            return "\n\n" + text.strip() + "\n\n" if text.strip() else ""
        alt = image.get("alt") or caption.get_text(" ", strip=True)  # the caption describes it: Pelican wants an alt
        src, alt = html.escape(image.get("src", ""), quote=True), html.escape(alt, quote=True)
        media = f'<img src="{src}" alt="{alt}">'
        link = image.parent if image.parent.name == "a" and image.parent.get("href") else None
        if link is not None:
            media = f'<a href="{html.escape(link["href"], quote=True)}">{media}</a>'
        return f"\n\n<figure>{media}<figcaption>{_inline_html(caption)}</figcaption></figure>\n\n"

    def convert_figcaption(self, el, text, parent_tags):
        text = text.strip()
        return f"\n\n*{text}*\n\n" if text and "*" not in text else (f"\n\n{text}\n\n" if text else "")

    def _media(self, el, parent_tags):
        src = html.escape(el.get("src", ""), quote=True)
        label = html.escape(el.get_text(strip=True))
        return f'\n\n<{el.name} controls src="{src}"><a href="{src}">{label}</a></{el.name}>\n\n'

    def convert_video(self, el, text, parent_tags):
        return self._media(el, parent_tags)

    def convert_audio(self, el, text, parent_tags):
        return self._media(el, parent_tags)

    def convert_del(self, el, text, parent_tags):
        return f"<del>{text}</del>" if text.strip() else text

    convert_s = convert_del
    convert_strike = convert_del

    def convert_q(self, el, text, parent_tags):
        return f"« {text} »" if self.french else f"“{text}”"


def _language(el) -> str:
    """The language of a code block, from class="language-x" (block editor, Prism) or lang="x"."""
    for tag in (el, el.find("code")):
        if tag is None:
            continue
        for css in tag.get("class", []) or []:
            if css.startswith(("language-", "lang-")):
                return css.split("-", 1)[1]
        if tag.get("lang"):
            return tag["lang"]
    return ""


def _inline_html(tag) -> str:
    """A caption's HTML with only inline formatting and links kept, every attribute but href dropped."""
    out = []
    for child in tag.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, Comment):
                out.append(html.escape(str(child), quote=False))
        elif child.name in INLINE_ALLOWED:
            inner = _inline_html(child)
            if child.name == "br":
                out.append("<br>")
            elif child.name == "a" and child.get("href"):
                out.append(f'<a href="{html.escape(child["href"], quote=True)}">{inner}</a>')
            elif child.name != "a":
                out.append(f"<{child.name}>{inner}</{child.name}>")
            else:
                out.append(inner)
        else:
            out.append(_inline_html(child))
    return "".join(out).strip()
