"""WordPress's wpautop: the paragraphs of a classic-editor post, which the export stores without <p>.

The classic editor saves text the way the author typed it: a blank line between paragraphs,
a single newline for a line break, HTML blocks (<h2>, <ul>, <blockquote>…) in between.
WordPress adds the <p> and <br> only when it shows the post (wp-includes/formatting.php,
wpautop). This does the same, in the same steps, so the Markdown has the paragraphs the
readers saw. Posts written with the block editor already hold their <p>: they skip it.
"""
import re

BLOCKS = (r"(?:table|thead|tfoot|caption|col|colgroup|tbody|tr|td|th|div|dl|dd|dt|ul|ol|li|pre|form|map|area|"
          r"blockquote|address|style|p|h[1-6]|hr|fieldset|legend|section|article|aside|hgroup|header|footer|nav|"
          r"figure|figcaption|details|menu|summary|video|audio|iframe|object)")
PRESERVED = re.compile(r"<pre\b.*?</pre>", re.S | re.I)
TAG = re.compile(r"<[^>]*>", re.S)
OPEN_BLOCK = re.compile(rf"(<{BLOCKS}[\s/>])", re.I)
CLOSE_BLOCK = re.compile(rf"(</{BLOCKS}>)", re.I)
HR = re.compile(r"(<hr\s*?/?>)", re.I)
DOUBLE_BR = re.compile(r"<br\s*/?>\s*<br\s*/?>", re.I)
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
EMPTY_P = re.compile(r"<p>\s*</p>")
P_AROUND_BLOCK = re.compile(rf"<p>\s*(</?{BLOCKS}[^>]*>)\s*</p>", re.I)
P_BEFORE_BLOCK = re.compile(rf"<p>\s*(</?{BLOCKS}[^>]*>)", re.I)
P_AFTER_BLOCK = re.compile(rf"(</?{BLOCKS}[^>]*>)\s*</p>", re.I)
P_IN_DIV = re.compile(r"<p>([^<]+)</(div|address|form)>", re.I)
NEWLINE = re.compile(r"(?<!<br />)\s*\n")
BR_AFTER_BLOCK = re.compile(rf"(</?{BLOCKS}[^>]*>)\s*<br />", re.I)
BR_BEFORE_BLOCK = re.compile(r"<br />(\s*</?(?:p|li|div|dl|dd|dt|th|pre|td|ul|ol)[^>]*>)", re.I)
HOLD = '<pre wpimport-held="{}"></pre>'  # still a block for the rules below, as in WordPress
HELD = re.compile(r'<pre wpimport-held="(\d+)"></pre>')


def autop(text: str) -> str:
    """`text` with <p> around its paragraphs and <br /> for its single newlines, as WordPress shows it."""
    if not text.strip():
        return ""
    held = []

    def hold(match):
        held.append(match[0])
        return HOLD.format(len(held) - 1)

    text = text.replace("\r\n", "\n").replace("\r", "\n") + "\n"
    text = PRESERVED.sub(hold, text)
    text = DOUBLE_BR.sub("\n\n", text)
    text = OPEN_BLOCK.sub(r"\n\n\1", text)
    text = CLOSE_BLOCK.sub(r"\1\n\n", text)
    text = HR.sub(r"\1\n\n", text)
    text = TAG.sub(lambda m: m[0].replace("\n", " "), text)  # a tag written over several lines stays one tag
    paragraphs = [p.strip("\n") for p in PARAGRAPH_BREAK.split(text) if p.strip()]
    text = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    text = EMPTY_P.sub("", text)
    text = P_IN_DIV.sub(r"<p>\1</p></\2>", text)
    text = P_AROUND_BLOCK.sub(r"\1", text)
    text = re.sub(r"<p>(<li.+?)</p>", r"\1", text)
    text = re.sub(r"<p><blockquote([^>]*)>", r"<blockquote\1><p>", text, flags=re.I)
    text = text.replace("</blockquote></p>", "</p></blockquote>")
    text = P_BEFORE_BLOCK.sub(r"\1", text)
    text = P_AFTER_BLOCK.sub(r"\1", text)
    text = re.sub(r"<br\s*/?>", "<br />", text, flags=re.I)
    text = NEWLINE.sub("<br />\n", text)
    text = BR_AFTER_BLOCK.sub(r"\1", text)
    text = BR_BEFORE_BLOCK.sub(r"\1", text)
    text = re.sub(r"\n</p>$", "</p>", text)
    return HELD.sub(lambda m: held[int(m[1])], text)
