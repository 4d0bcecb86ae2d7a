"""French typography as pure functions, shared by the site build, the feeds and the mails.

French text only: callers ask `blogcore.language.is_french` first (an English post keeps
its own spacing).

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

How it stays fast (a post body is a few kB and every build runs this on every post):
all patterns are compiled once; a rule runs only when its text contains what the
rule needs (a digit, a guillemet, a mark…); patterns start with a literal or a
character class where they can, so the regex engine skips ahead instead of trying
a look-behind at every character; and the rules that bind a gap of spaces to the
sign after it (guillemet, ; : ! ?, emoticon, ellipsis) look for the sign first and
walk back over the gap, instead of trying "any character followed by spaces" at
every position.
"""
import functools
import html
import re
from typing import Callable, NamedTuple

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
PLACEHOLDER = re.compile(f"[{WORD}{EMOTICON}]")

# --- protected tokens ----------------------------------------------------------------
# The alternatives of one pattern, in order, each with the strings it cannot match
# without. A text runs through the alternatives whose hints it contains, joined as one
# pattern: the same leftmost matches as the whole pattern, without trying the e-mail
# alternative at every word of a text that has no "@".
WORD_TOKENS = (
    ({"&"}, r"&(?:\#\d+|\#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);"),  # entity
    ({"://", "www.", "mailto:"},  # URL, entities whole, minus its final punctuation
     r"(?:(?:https?|ftp)://|www\.|mailto:)"
     r"(?:&(?:\#\w+|[A-Za-z]\w*);|(?!&(?:\#\w+|[A-Za-z]\w*);)[^\s<>\"\U000f0000-\U000f0003])*"
     r"(?:&(?:\#\w+|[A-Za-z]\w*);|[^\s<>\"&.,;:!?)\]»’'\U000f0000-\U000f0003])"),
    ({"@"}, r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),  # e-mail address
    ({"@"}, r"(?<![\w@])@\w+(?:[.-]\w+)*"),  # @handle
    ({"#"}, r"(?<![\w&\#])\#\w+"),  # #hashtag
    ({"`"}, r"`[^`\n]+`"),  # `code` (plain text only)
)
# ;-) :-) :) ;) :( :-D :p at the start of a word (the look-behind after the first
# character, so the engine jumps from one ; or : to the next).
EMOTICON_TOKEN = ({";", ":"}, r"[;:](?<![^\s(\[\U000f0000][;:])-?[()DPp](?!\w)")
HINTS = frozenset().union(*(hints for hints, _ in WORD_TOKENS + (EMOTICON_TOKEN,)))


@functools.cache
def _protector(hints: frozenset) -> re.Pattern | None:
    """The protected-token pattern made of the alternatives whose hints are in `hints`."""
    words = [pattern for needs, pattern in WORD_TOKENS if not hints.isdisjoint(needs)]
    parts = [f"(?P<word>{'|'.join(words)})"] if words else []
    if not hints.isdisjoint(EMOTICON_TOKEN[0]):
        parts.append(f"(?P<emoticon>{EMOTICON_TOKEN[1]})")
    return re.compile("|".join(parts)) if parts else None


def _protect(text: str, held: set, kept: list) -> str:
    """Replace URLs, addresses, handles, entities… by WORD and emoticons by EMOTICON."""
    pattern = _protector(HINTS.intersection(held))
    if pattern is None:
        return text

    def protect(match):
        kept.append(match.group())
        return EMOTICON if match.lastgroup == "emoticon" else WORD
    return pattern.sub(protect, text)


def _restore(text: str, kept: list) -> str:
    """Put the protected tokens back, in order."""
    parts = PLACEHOLDER.split(text)
    return "".join(part + token for part, token in zip(parts, kept)) + parts[-1]


# --- the rules -----------------------------------------------------------------------

UNIT_SYMBOLS = r"%|‰|€|\$|£"
UNIT_WORDS = (
    r"millions?|milliards?|milliers|mille|euros?|dollars?|francs?|livres?|k€|M€|Md€"
    r"|km|m|cm|mm|kg|g|mg|l|cl|ml|ha|m²|km²|°C|°F|h|min|ms|ans|mois|jours?|heures?|minutes?"
    r"|secondes?|semaines?|Ko|Mo|Go|To|ko|px"
)
# A number not glued to a word, a period or a comma before it: the look-behind comes
# after the first digit ((?<![\w.,])\d+ reads \d(?<![\w.,]\d)\d*), so the engine jumps
# from digit to digit.
NUMBER = r"\d(?<![\w.,]\d)\d*(?:[.,\u202f]\d+)*"

# What a text holds, as the rules ask it: its characters, "0-9" if it has a decimal digit
# (any, as \d matches), and each of LONGER it contains. The rules only ever add spaces,
# ’ (for ') and … (for ...), so what a text holds before them, with … if it holds ...,
# is all a later rule can find: a rule that cannot apply at the start never can.
DIGITS = "0-9"
DIGIT = re.compile(r"\d")
LONGER = ("...", "etc", "://", "www.", "mailto:")


def _holds(text: str) -> set:
    """What `text` holds, for the rules' `needs` and the protected tokens' hints."""
    held = set(text)
    if DIGIT.search("".join(held)):
        held.add(DIGITS)
    held.update(word for word in LONGER if word in text)
    if "..." in held:
        held.add("…")
    return held


class Rule(NamedTuple):
    name: str
    needs: frozenset  # what the text must hold at least one of for the rule to apply
    apply: Callable[[str], str]


def _when(hint, apply):
    """`apply`, run only on a text where the regex `hint` matches."""
    hint = re.compile(hint)
    return lambda text: apply(text) if hint.search(text) else text


def _sub(pattern, replacement, flags=0):
    return functools.partial(re.compile(pattern, flags).sub, replacement)


def _sub_gap(pattern, build):
    """A rule that rewrites a whitespace gap; inline tags inside the gap are kept, in order."""
    regex = re.compile(pattern)
    return lambda text: regex.sub(lambda m: build(m, TAG * m.group("gap").count(TAG)), text)


def _bind_before(sign, pre, mark, is_gap, needs_space=False):
    """pre + gap + sign → pre + the gap's tags + mark + sign, the gap being spaces and tags.

    The same as re.sub(pre + gap + sign) (`sign` may be a look-ahead), found from the
    sign: the gap is the run of spaces and tags just before it, `pre` the character
    before that run, and a match never starts inside the previous one.
    """
    pre = re.compile(pre)

    def apply(text):
        out, copied, consumed = [], 0, 0
        for match in sign.finditer(text):
            start = end = match.start()
            while start > 0 and is_gap(text[start - 1]):
                start -= 1
            if start <= consumed or not pre.match(text, start - 1):
                continue  # no character before the gap, it belongs to the previous match, or the wrong one
            tags = text.count(TAG, start, end)
            if needs_space and tags == end - start:
                continue
            out += [text[copied:start], TAG * tags, mark]
            copied, consumed = end, match.end()
        return "".join(out) + text[copied:] if out else text
    return apply


def _rules(space, is_gap):
    """The rules in order; `space` is the whitespace they may rewrite (no line break in plain text)."""
    g = f"(?P<gap>(?:{space}|{TAG})*)"
    rules = [
        # "..." → "…", "...." → "…."
        Rule("ellipsis", {"..."}, _sub(r"(?<!\.)\.\.\.(\.?)(?!\.)", "…\\1")),
        # l'ami → l’ami (the look-behind after the quote: (?<=\w)' reads '(?<=\w'))
        Rule("apostrophe", {"'"}, _sub(rf"'(?<=\w')(?=[{TAG}]*\w)", "’")),
        # digit groups: 4 815, 100 000
        Rule("digit groups", {DIGITS}, _sub(
            r"\d(?<![\w.,\u202f\u00a0]\d)\d{0,2}(?:[ \u00a0\u202f]\d{3})+(?!\d)",
            lambda m: m.group().replace(" ", NNBSP).replace(NBSP, NNBSP))),
        # times: 10 h 30
        Rule("times", {DIGITS}, _sub(r"(\d(?<![\w.,]\d)\d?)[ \u00a0\u202f]h[ \u00a0\u202f](\d\d)(?!\d)",
                                  f"\\1{NBSP}h{NBSP}\\2")),
        # 78 % and 78% → 78 %
        Rule("unit symbols", set("%‰€$£"),
             _sub(rf"({NUMBER})[ \u00a0\u202f]?({UNIT_SYMBOLS})", f"\\1{NBSP}\\2")),
        # 5 millions, 20 °C
        Rule("unit words", {DIGITS}, _sub(rf"({NUMBER})[ \u00a0\u202f]({UNIT_WORDS})(?!\w)", f"\\1{NBSP}\\2")),
        # M. Dupont, Dr Knock: before a capital
        Rule("titles", set("MDPS"), _when(
            r"(?:M\.|MM\.|Mmes?|Mlles?|Dr|Pr|St|Ste)[ \u202f][A-ZÀ-Ý]",
            _sub(r"(?<![\w.])(M\.|MM\.|Mmes?|Mlles?|Dr|Pr|St|Ste)[ \u202f](?=[A-ZÀ-Ý])", f"\\1{NBSP}"))),
        # p. 12, n° 5: before a digit
        Rule("numbered", {DIGITS}, _when(
            r"(?:p\.|pp\.|n°|N°|art\.|chap\.|vol\.|fig\.)[ \u202f]\d",
            _sub(r"(?<![\w.])(p\.|pp\.|n°|N°|art\.|chap\.|vol\.|fig\.)[ \u202f](?=\d)", f"\\1{NBSP}"))),
        # 32, etc. ((?<=\S)[ ] reads [ ](?<=\S[ ]))
        Rule("etc", {"etc"}, _sub(r"[ \u202f](?<=\S[ \u202f])(?=etc\b)", NBSP)),
        # dialogue dash at the start of a paragraph or line
        Rule("dialogue", {"–", "—"}, _sub(rf"^([\s{TAG}]*[–—])[ \u202f](?=\S)", f"\\1{NBSP}", re.M)),
        # « amis »: a narrow space after « …
        Rule("opening guillemet", {"«"},
             _sub_gap(rf"«{g}(?=[^\s{TAG}.,;:!?»])", lambda m, tags: "«" + NNBSP + tags)),
        # … and before »
        Rule("closing guillemet", {"»"},
             _bind_before(re.compile("»"), rf"[^\s{TAG}«]", NNBSP, is_gap)),
        # Non ?  Vraiment ?!  A mark cluster that ends a word; "Non:)" is not "Non :"
        Rule("punctuation", set(";:!?"), _bind_before(
            re.compile(rf"[;:!?]+(?=[\s{TAG})\]}}»\"'’”.,…\ue000-\uf8ff]|$)(?!(?<=[;:])-?[()DPp](?!\w))"),
            rf"[^\s{TAG}(\[{{«'\"‘“\-–—;:!?]", NNBSP, is_gap)),
        # Super :) : the space before an emoticon becomes no-break
        Rule("emoticon", {EMOTICON},
             _bind_before(re.compile(f"(?={EMOTICON})"), rf"[^\s{TAG}]", NBSP, is_gap, needs_space=True)),
        # A moins que … : the space before a spaced ellipsis becomes no-break
        Rule("spaced ellipsis", {"…"},
             _bind_before(re.compile("(?=…)"), rf"[\w»)\],{WORD}]", NBSP, is_gap, needs_space=True)),
    ]
    return [rule._replace(needs=frozenset(rule.needs)) for rule in rules]


TEXT_RULES = _rules(r"[^\S\n]", lambda char: char == TAG or (char.isspace() and char != "\n"))
HTML_RULES = _rules(r"\s", lambda char: char == TAG or char.isspace())


def _apply(text: str, rules) -> str:
    """Protect what must not change, run the rules that can apply, put the protected tokens back."""
    kept = []
    held = _holds(text)
    text = _protect(text, held, kept)
    if kept:
        held.update((WORD, EMOTICON))
    for _, needs, apply in rules:
        if not needs.isdisjoint(held):
            text = apply(text)
    return _restore(text, kept) if kept else text


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
# TOKEN as its only group, for TOKEN_SPLIT.split: text, token, text, token, …, text.
TOKEN_SPLIT = re.compile("(" + re.sub(r"\(\?P<\w+>", "(?:", TOKEN.pattern) + ")", re.VERBOSE | re.DOTALL)
INLINE = {
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "data", "del", "dfn", "em",
    "font", "i", "ins", "label", "mark", "q", "s", "small", "span", "strike", "strong", "sub",
    "sup", "time", "u", "wbr",
}
SKIPPED = {"code", "pre", "kbd", "samp", "var", "tt", "script", "style", "textarea", "svg", "math"}
VOID_OPAQUE = {"img", "input", "button", "select", "iframe", "object", "video", "audio", "canvas"}
ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")
MARKERS = re.compile(f"[{TAG}{OPAQUE}]")
MARKER = {"tag": TAG, "opaque": OPAQUE}


def _decode(text: str) -> str:
    """Entities to characters, so the rules see « and …; &amp; &lt; &gt; stay escaped."""
    def one(match):
        char = html.unescape(match.group())
        return match.group() if char in ("&", "<", ">") or char == match.group() else char
    return ENTITY.sub(one, text)


@functools.cache
def _end_tag(name: str) -> re.Pattern:
    return re.compile(rf"<(/?){name}\b(?:[^>\"']|\"[^\"]*\"|'[^']*')*>", re.I)


def _end_of_skipped(fragment: str, name: str, start: int) -> int:
    """Index just after the element `name` opened before `start`, nesting included."""
    depth = 1
    for match in _end_tag(name).finditer(fragment, start):
        if name in ("script", "style", "textarea") and not match.group(1):
            continue  # raw text: no nesting, only the end tag counts
        depth += -1 if match.group(1) else 1
        if depth == 0:
            return match.end()
    return len(fragment)


@functools.lru_cache(maxsize=4096)
def _kind(token: str) -> tuple:
    """('tag' inline or comment | 'skip' an element to pass over whole | 'opaque' | 'break', name)."""
    match = TOKEN.match(token)  # the token alone: the same alternative as in its fragment
    name = (match["name"] or "").lower()
    if match["comment"] or name in INLINE:
        return "tag", name
    if name in SKIPPED and not token.startswith("</") and not token.endswith("/>"):
        return "skip", name
    return ("opaque" if name in VOID_OPAQUE or name in SKIPPED else "break"), name


def _pieces(fragment: str):
    """Split HTML into ('text', str), ('tag', raw) inline, ('opaque', raw) and ('break', raw)."""
    position = 0
    while position < len(fragment):
        for index, raw in enumerate(TOKEN_SPLIT.split(fragment[position:] if position else fragment)):
            position += len(raw)
            if index % 2 == 0:
                if raw:
                    yield "text", raw
                continue
            kind, name = _kind(raw)
            if kind == "skip":  # its content may hold anything: find its end, split again after it
                end = _end_of_skipped(fragment, name, position)
                yield "opaque", fragment[position - len(raw):end]
                position = end
                break
            yield kind, raw
        else:
            return


def _fix_flow(flow) -> str:
    """Run the rules over a run of text and inline tags, as one string, then split it back."""
    if all(kind != "text" or raw.isspace() for kind, raw in flow):
        return "".join(raw for _, raw in flow)  # no text, or only spaces: nothing to change
    texts = [(_decode(raw) if "&" in raw else raw) if kind == "text" else "" for kind, raw in flow]
    if any(RESERVED.search(text) for text in texts):
        return "".join(raw for _, raw in flow)
    joined = "".join(texts[i] if kind == "text" else MARKER[kind] for i, (kind, _) in enumerate(flow))
    parts = iter(MARKERS.split(_apply(joined, HTML_RULES)))
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
            if flow:
                out.append(_fix_flow(flow))
                flow = []
            out.append(raw)
        else:
            flow.append((kind, raw))
    if flow:
        out.append(_fix_flow(flow))
    return "".join(out)
