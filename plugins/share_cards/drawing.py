"""The pictures of the share cards, with Pillow: a card drawn from a post's title, or the post's own photo.

Both are exactly SIZE (1200×630, the size Open Graph consumers crop to) and deterministic: the same
inputs give the same bytes on every run (no timestamp or metadata is written), which the cache and the
accelerator's byte-for-byte equivalence rely on.

The title is set as French typography wants it: lines break only at ordinary spaces, never at a
no-break space (U+00A0, U+202F: « guillemets » and the space before ; : ! ? stay with their word), and
never inside a word. A long title takes a smaller size; one that still does not fit at the smallest
ends, after its last whole word that fits, with an ellipsis.

Text is laid out with FreeType's basic layout (kerning, no shaping engine): the same glyph positions
whether or not the machine's Pillow has libraqm.
"""
import io
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageChops, ImageColor, ImageDraw, ImageFont, ImageOps

SIZE = (1200, 630)
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 96, 72, 64
BAR = 24  # the accent band on the left edge
TITLE_SIZES = range(76, 38, -4)  # tried largest first
SMALLEST_TITLE = 12  # below TITLE_SIZES: only to fit one very long word whole
LINE_PITCH = 1.2
LABEL_SIZE = 34  # the rubrique (top) and the blog's name (bottom)
TITLE_BOX = (MARGIN_X, 150, SIZE[0] - MARGIN_X, 490)  # left, top, right, bottom
RULE_Y = 520
ELLIPSIS = "…"
JPEG_QUALITY = 85


@dataclass(frozen=True)
class Style:
    """What a card looks like besides its text: font files and the theme's colours (#rrggbb)."""

    title_font: str
    text_font: str
    background: str
    text: str
    accent: str
    rule: str


@lru_cache(maxsize=64)
def font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def wrap(words: list[str], face, width: int) -> list[str]:
    """Greedy line filling; a word wider than the line gets a line of its own (the caller checks)."""
    lines, current = [], ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and face.getlength(candidate) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    return lines


def with_ellipsis(line: str, face, width: int) -> str:
    """The line's first whole words that fit with an ellipsis after them (a word is never cut)."""
    words = line.split(" ")
    while words:
        text = " ".join(words).rstrip(" \u00a0\u202f,;:–-") + ELLIPSIS
        if face.getlength(text) <= width:
            return text
        words.pop()
    return ELLIPSIS


def layout_title(title: str, font_path: str, box=TITLE_BOX) -> tuple[int, list[str]]:
    """(font size, lines) of the title in the box: the largest size at which it fits whole, else the
    smallest size with as many lines as fit, the last ending in an ellipsis."""
    left, top, right, bottom = box
    width, height = right - left, bottom - top
    # Not str.split(): it breaks at U+00A0 and U+202F too. Only ordinary spaces separate words here.
    words = [w for w in title.replace("\t", " ").replace("\n", " ").split(" ") if w]
    if not words:
        return TITLE_SIZES[0], []

    def fits(size, lines):
        face = font(font_path, size)
        ascent, descent = face.getmetrics()
        return (ascent + descent + round(size * LINE_PITCH) * (len(lines) - 1) <= height
                and all(face.getlength(line) <= width for line in lines))

    for size in TITLE_SIZES:
        lines = wrap(words, font(font_path, size), width)
        if fits(size, lines):
            return size, lines
    size = TITLE_SIZES[-1]
    longest = max(words, key=lambda w: font(font_path, size).getlength(w))
    while size > SMALLEST_TITLE and font(font_path, size).getlength(longest) > width:
        size -= 2  # one word wider than the card: smaller, rather than cut its letters
    face = font(font_path, size)
    ascent, descent = face.getmetrics()
    room = max(1, 1 + (height - ascent - descent) // round(size * LINE_PITCH))
    lines = wrap(words, face, width)
    if len(lines) > room or any(face.getlength(line) > width for line in lines):
        kept = [line for line in lines[:room] if face.getlength(line) <= width]
        last = kept.pop() if kept else ""
        lines = kept + [with_ellipsis(last, face, width)]
    return size, lines


def draw_card(title: str, rubrique: str, sitename: str, style: Style) -> bytes:
    """The generated card, as PNG bytes.

    Every pixel is the background blended with one colour (the text's, the accent's) or the rule's: the
    card is drawn as two coverage masks and saved as an indexed PNG whose palette holds those blends.
    That is the RGB picture to the eye, at a third of the bytes and a fifth of the encoding time.
    """
    ink, accent = Image.new("L", SIZE, 0), Image.new("L", SIZE, 0)
    draw_ink, draw_accent = ImageDraw.Draw(ink), ImageDraw.Draw(accent)
    draw_accent.rectangle((0, 0, BAR - 1, SIZE[1] - 1), fill=255)
    label = font(style.text_font, LABEL_SIZE)
    width = SIZE[0] - 2 * MARGIN_X
    if rubrique:
        draw_accent.text((MARGIN_X, MARGIN_TOP), fit_label(rubrique, label, width), font=label, fill=255)
    size, lines = layout_title(title, style.title_font)
    face = font(style.title_font, size)
    ascent, descent = face.getmetrics()
    pitch = round(size * LINE_PITCH)
    block = ascent + descent + pitch * (len(lines) - 1)
    y = TITLE_BOX[1] + (TITLE_BOX[3] - TITLE_BOX[1] - block) // 2 + ascent  # centred in its box
    for line in lines:
        draw_ink.text((TITLE_BOX[0], y), line, font=face, fill=255, anchor="ls")
        y += pitch
    name = font(style.title_font, LABEL_SIZE)
    draw_ink.text((MARGIN_X, SIZE[1] - MARGIN_BOTTOM), fit_label(sitename, name, width), font=name, fill=255,
                  anchor="ls")
    # Indices: 0-127 background to text, 128-254 background to accent, 255 the rule (nothing overlaps).
    card = ImageChops.add(ink.point(lambda v: v >> 1), accent.point(lambda v: 128 + v * 126 // 255 if v else 0))
    ImageDraw.Draw(card).rectangle((MARGIN_X, RULE_Y, SIZE[0] - MARGIN_X - 1, RULE_Y + 1), fill=255)
    card.putpalette(palette(style))
    return encode(card, "PNG")


def palette(style: Style) -> list[int]:
    background, text, accent = rgb(style.background), rgb(style.text), rgb(style.accent)
    blends = [mix(background, text, i / 127) for i in range(128)]
    blends += [mix(background, accent, i / 126) for i in range(127)]
    return [channel for colour in blends + [rgb(style.rule)] for channel in colour]


def rgb(colour: str) -> tuple[int, int, int]:
    return ImageColor.getrgb(colour)[:3]


def mix(a, b, t: float) -> tuple[int, ...]:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def fit_label(text: str, face, width: int) -> str:
    """A one-line label, ending in an ellipsis after its last whole word if it is too long."""
    return text if face.getlength(text) <= width else with_ellipsis(text, face, width)


def cover(source: bytes) -> tuple[bytes, str]:
    """The post's picture cropped to fill SIZE, centred: (bytes, "JPEG" or "PNG").

    A JPEG stays a JPEG (a photo), anything else becomes a PNG. Nothing of the source's metadata is
    kept (EXIF with its GPS position and camera serial, XMP, comments): the orientation it recorded is
    applied to the pixels first; only the colour profile stays, which says nothing about the author.
    Raises OSError (PIL.UnidentifiedImageError among them) for a file Pillow cannot decode.
    """
    kind = picture_kind(source)
    with Image.open(io.BytesIO(source)) as opened:
        opened.draft("RGB", (SIZE[0] * 2, SIZE[1] * 2))  # a big JPEG is decoded at a reduced scale: faster
        icc = opened.info.get("icc_profile")
        upright = ImageOps.exif_transpose(opened)
        if upright.mode not in ("RGB", "L"):
            flat = Image.new("RGB", upright.size, "#ffffff")
            rgba = upright.convert("RGBA")
            flat.paste(rgba, mask=rgba.getchannel("A"))
            upright = flat
        fitted = ImageOps.fit(upright, SIZE, Image.Resampling.LANCZOS, centering=(0.5, 0.5))
    clean = Image.new(fitted.mode, fitted.size)  # a new image: no info dict carried over from the source
    clean.paste(fitted)
    return encode(clean, kind, icc), kind


def encode(image, kind: str, icc: bytes | None = None) -> bytes:
    out = io.BytesIO()
    options = {"icc_profile": icc} if icc else {}
    if kind == "JPEG":
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True, **options)
    else:
        image.save(out, "PNG", **options)
    return out.getvalue()


def picture_kind(source: bytes) -> str:
    """"JPEG" for a JPEG, "PNG" for any other picture Pillow can open; OSError if it cannot."""
    try:
        with Image.open(io.BytesIO(source)) as opened:
            return "JPEG" if opened.format == "JPEG" else "PNG"
    except Image.DecompressionBombError as error:
        raise OSError(str(error)) from None
