"""French typographic rules as pure functions, shared by the site build and the mail sender.

`fix_text` handles plain text (titles, plain-text mail); `fix_html` handles an HTML
fragment and changes only its text nodes, so tags and attributes come out byte for
byte. Both are idempotent and only ever change spaces, apostrophes and three-dot
ellipses: remove every whitespace character and map ’ to ' and … to ..., and the
output reads exactly as the input.

The rules, in the order they run (why in brackets):

- "..." becomes "…"; "...." becomes "…." (the author's extra period is kept, as
  smarty does); other runs of dots are left alone.
- An apostrophe between two word characters becomes ’ (l’ami, 90’s); a quote
  that opens or closes a quotation is not an apostrophe and stays.
- Digit groups take U+202F: « 4 815 », « 100 000 » (the French thousands
  separator, CLDR fr). Only groups of exactly three digits after a number of one
  to three digits, so years and lists (« 2, 4, 8 ») stay as they are.
- A number binds to its unit with U+00A0, a full-width no-break space (a unit
  reads as a word): « 78 % », « 78% » → « 78 % », « 5 millions », « 10 euros »,
  « 20 °C », « 10 h 30 ». A space is added only before a symbol (% ‰ € $ £).
- Abbreviations bind to what follows with U+00A0: M., MM., Mme, Mlle, Dr, Pr, St,
  Ste before a capital; p., pp., n°, art., chap., vol., fig. before a digit; and
  « etc. » to what precedes it (« 32, etc. » never starts a line with etc.).
- A dialogue dash (– or —) opening a paragraph or a line binds to the first word
  with U+00A0.
- Inside « guillemets »: U+202F after « and before », replacing a space or
  adding one.
- Before ; : ! ? : U+202F, replacing the space(s) there or adding one, once per
  cluster (« Non ?! », « courageux !!… »). The mark must end a word: followed by
  a space, the end, a closing bracket or quote, a period, a comma, an ellipsis or
  a caller's placeholder (a BMP private-use character, such as the mail's <br>).
  So 10:30, 16:9, a:b, http://, ?b=c and ;-) are never touched.
- An emoticon (;-) :-) :) ;) :( :-D :p) is left as written, and the space before
  it becomes U+00A0 so it never starts a line alone.
- A spaced ellipsis (« A moins que … », « Gnagnater, … ») binds to the word or
  comma before it with U+00A0.

Never touched: URLs (scheme:// and www.), e-mail addresses, @handles, #hashtags,
HTML entities, `backtick code` in plain text, and in HTML the contents of code,
pre, kbd, samp, var, tt, script, style, textarea, svg and math, and every
attribute. In HTML, entities in text are decoded to their characters (the same
text in a UTF-8 page) except &amp; &lt; &gt;, which stay as written.
"""
import html
import re

NNBSP = "\u202f"  # narrow no-break space: punctuation, guillemets, digit groups
NBSP = "\u00a0"  # no-break space: units, abbreviations, dialogue dash, emoticons

# Private-use characters stand for what the rules must see but never change. They come
# from plane 15, so callers can keep the BMP private-use area for their own placeholders
# (the mail's plain-text renderer marks <br> with U+E002).
TAG = "\U000f0000"  # an inline tag or comment: transparent, the text flows across it
WORD = "\U000f0001"  # a protected token (URL, address, handle, entity): an opaque word
EMOTICON = "\U000f0002"  # a protected emoticon
OPAQUE = "\U000f0003"  # an HTML element whose content is never touched (code, img…)
RESERVED = re.compile("[\U000f0000-\U000f0003]")

PROTECTED = re.compile(
    r"""
    (?P<word>
        &(?:\#\d+|\#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);       # entity
      | (?:(?:https?|ftp)://|www\.|mailto:)                          # URL, entities whole,
        (?:&(?:\#\w+|[A-Za-z]\w*);|(?!&(?:\#\w+|[A-Za-z]\w*);)[^\s<>"\U000f0000-\U000f0003])*
        (?:&(?:\#\w+|[A-Za-z]\w*);|[^\s<>"&.,;:!?)\]»’'\U000f0000-\U000f0003])  # minus final punctuation
      | [\w.+-]+@[\w-]+(?:\.[\w-]+)+                                 # e-mail address
      | (?<![\w@])@\w+(?:[.-]\w+)*                                   # @handle
      | (?<![\w&\#])\#\w+                                            # #hashtag
      | `[^`\n]+`                                                    # `code` (plain text only)
    )
    | (?P<emoticon>(?<![^\s(\[\U000f0000])[;:]-?[()DPp](?!\w))
    """,
    re.VERBOSE,
)

UNIT_SYMBOLS = r"%|‰|€|\$|£"
UNIT_WORDS = (
    r"millions?|milliards?|milliers|mille|euros?|dollars?|francs?|livres?|k€|M€|Md€"
    r"|km|m|cm|mm|kg|g|mg|l|cl|ml|ha|m²|km²|°C|°F|h|min|ms|ans|mois|jours?|heures?|minutes?"
    r"|secondes?|semaines?|Ko|Mo|Go|To|ko|px"
)
NUMBER = r"\d+(?:[.,\u202f]\d+)*"


def _sub_gap(pattern, build, flags=0):
    """A rule that rewrites a whitespace gap; inline tags inside the gap are kept, in order."""
    regex = re.compile(pattern, flags)

    def apply(text):
        return regex.sub(lambda m: build(m, TAG * m.group("gap").count(TAG)), text)
    return apply


def _rules(space):
    """The rules in order; `space` is the whitespace they may rewrite (no line break in plain text)."""
    g = f"(?P<gap>(?:{space}|{TAG})*)"
    g1 = f"(?P<gap>(?:{space}|{TAG})*{space}(?:{space}|{TAG})*)"  # at least one whitespace
    return [
        # "..." → "…", "...." → "…."
        lambda t: re.sub(r"(?<!\.)\.\.\.(\.?)(?!\.)", "…\\1", t),
        lambda t: re.sub(rf"(?<=\w)'(?=[{TAG}]*\w)", "’", t),
        # digit groups: 4 815, 100 000
        lambda t: re.sub(
            r"(?<![\w.,\u202f\u00a0])\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?!\d)",
            lambda m: re.sub(r"[ \u00a0]", NNBSP, m.group()), t),
        # times: 10 h 30
        lambda t: re.sub(r"(?<![\w.,])(\d{1,2})[ \u00a0\u202f]h[ \u00a0\u202f](\d\d)(?!\d)",
                         f"\\1{NBSP}h{NBSP}\\2", t),
        lambda t: re.sub(rf"(?<![\w.,])({NUMBER})[ \u00a0\u202f]?({UNIT_SYMBOLS})", f"\\1{NBSP}\\2", t),
        lambda t: re.sub(rf"(?<![\w.,])({NUMBER})[ \u00a0\u202f]({UNIT_WORDS})(?!\w)", f"\\1{NBSP}\\2", t),
        lambda t: re.sub(r"(?<![\w.])(M\.|MM\.|Mmes?|Mlles?|Dr|Pr|St|Ste)[ \u202f](?=[A-ZÀ-Ý])",
                         f"\\1{NBSP}", t),
        lambda t: re.sub(r"(?<![\w.])(p\.|pp\.|n°|N°|art\.|chap\.|vol\.|fig\.)[ \u202f](?=\d)",
                         f"\\1{NBSP}", t),
        lambda t: re.sub(r"(?<=\S)[ \u202f](?=etc\b)", NBSP, t),
        # dialogue dash at the start of a paragraph or line
        lambda t: re.sub(rf"^([\s{TAG}]*[–—])[ \u202f](?=\S)", f"\\1{NBSP}", t, flags=re.M),
        _sub_gap(rf"«{g}(?=[^\s{TAG}.,;:!?»])", lambda m, tags: "«" + NNBSP + tags),
        _sub_gap(rf"(?P<pre>[^\s{TAG}«]){g}»", lambda m, tags: m["pre"] + tags + NNBSP + "»"),
        _sub_gap(
            rf"(?P<pre>[^\s{TAG}(\[{{«'\"‘“\-–—;:!?]){g}(?P<marks>[;:!?]+)"
            rf"(?=[\s{TAG})\]}}»\"'’”.,…\ue000-\uf8ff]|$)(?!(?<=[;:])-?[()DPp](?!\w))",  # "Non:)" is not "Non :"
            lambda m, tags: m["pre"] + tags + NNBSP + m["marks"]),
        _sub_gap(rf"(?P<pre>[^\s{TAG}]){g1}(?={EMOTICON})", lambda m, tags: m["pre"] + tags + NBSP),
        _sub_gap(rf"(?P<pre>[\w»)\],{WORD}]){g1}(?=…)", lambda m, tags: m["pre"] + tags + NBSP),
    ]


TEXT_RULES = _rules(r"[^\S\n]")
HTML_RULES = _rules(r"\s")


def _apply(text: str, rules) -> str:
    """Protect what must not change, run the rules, put the protected tokens back."""
    kept = []

    def protect(match):
        kept.append(match.group())
        return EMOTICON if match["emoticon"] else WORD

    text = PROTECTED.sub(protect, text)
    for rule in rules:
        text = rule(text)
    tokens = iter(kept)
    return re.sub(f"[{WORD}{EMOTICON}]", lambda m: next(tokens), text)


def fix_text(text: str) -> str:
    """French typography for plain text; line breaks are never moved or removed."""
    if not text or RESERVED.search(text):
        return text  # empty, or already using our private characters: leave it
    return _apply(text, TEXT_RULES)


# --- HTML ---------------------------------------------------------------------------

TOKEN = re.compile(
    r"""
    (?P<comment><!--.*?-->)
    | (?P<decl><![^>]*>|<\?[^>]*>)
    | (?P<tag></?(?P<name>[A-Za-z][\w:-]*)(?:[^>"']|"[^"]*"|'[^']*')*>)
    """,
    re.VERBOSE | re.DOTALL,
)
INLINE = {
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "data", "del", "dfn", "em",
    "font", "i", "ins", "label", "mark", "q", "s", "small", "span", "strike", "strong", "sub",
    "sup", "time", "u", "wbr",
}
SKIPPED = {"code", "pre", "kbd", "samp", "var", "tt", "script", "style", "textarea", "svg", "math"}
VOID_OPAQUE = {"img", "input", "button", "select", "iframe", "object", "video", "audio", "canvas"}
ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _decode(text: str) -> str:
    """Entities to characters, so the rules see « and …; &amp; &lt; &gt; stay escaped."""
    def one(match):
        char = html.unescape(match.group())
        return match.group() if char in ("&", "<", ">") or char == match.group() else char
    return ENTITY.sub(one, text)


def _end_of_skipped(fragment: str, name: str, start: int) -> int:
    """Index just after the element `name` opened before `start`, nesting included."""
    pattern = re.compile(rf"<(/?){name}\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.I)
    depth = 1
    for match in pattern.finditer(fragment, start):
        if name in ("script", "style", "textarea") and not match.group(1):
            continue  # raw text: no nesting, only the end tag counts
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return match.end()
    return len(fragment)


def _pieces(fragment: str):
    """Split HTML into ('text', str), ('tag', raw) inline, ('opaque', raw) and ('break', raw)."""
    position = 0
    while position < len(fragment):
        match = TOKEN.search(fragment, position)
        end = match.start() if match else len(fragment)
        if end > position:
            yield "text", fragment[position:end]
        if not match:
            return
        raw, name = match.group(), (match["name"] or "").lower()
        position = match.end()
        closing = raw.startswith("</")
        if match["comment"] or (name in INLINE):
            yield "tag", raw
        elif name in SKIPPED and not closing and not raw.endswith("/>"):
            position = _end_of_skipped(fragment, name, position)
            yield "opaque", fragment[match.start():position]
        elif name in VOID_OPAQUE or name in SKIPPED:
            yield "opaque", raw
        else:
            yield "break", raw


def _fix_flow(flow) -> str:
    """Run the rules over a run of text and inline tags, as one string, then split it back."""
    if not any(kind == "text" for kind, _ in flow):
        return "".join(raw for _, raw in flow)
    texts = [_decode(raw) if kind == "text" else "" for kind, raw in flow]
    if any(RESERVED.search(text) for text in texts):
        return "".join(raw for _, raw in flow)
    marker = {"tag": TAG, "opaque": OPAQUE}
    joined = "".join(texts[i] if kind == "text" else marker[kind] for i, (kind, _) in enumerate(flow))
    parts = iter(re.split(f"[{TAG}{OPAQUE}]", _apply(joined, HTML_RULES)))
    out, pending = [], next(parts)
    for kind, raw in flow:
        if kind == "text":
            continue
        out += [pending, raw]
        pending = next(parts)
    return "".join(out) + pending


def fix_html(fragment: str) -> str:
    """French typography for an HTML fragment: only text nodes change."""
    if not fragment:
        return fragment
    out, flow = [], []
    for kind, raw in _pieces(fragment):
        if kind == "break":
            out += [_fix_flow(flow), raw]
            flow = []
        else:
            flow.append((kind, raw))
    out.append(_fix_flow(flow))
    return "".join(out)
