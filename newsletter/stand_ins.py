"""A mail flattened once with stand-ins, then filled in per reader: what service_mail and mail_message share.

Building a Message and flattening it with email.generator costs milliseconds of the GIL per mail,
most of a sender's time. Only a few fields differ from one reader to the next (To, Date,
Message-ID, the link lines of the bodies, a few headers), so the message is flattened once with
letters-only stand-ins in their place (the generator neither folds nor encodes those), cut around
them (`cut`), and each mail joins the pieces with its own values (`fill`): header lines folded
like the generator folds ASCII (`header_line`), and only the body lines that hold the link
quoted-printable encoded again (`Line`, with binascii: C speed).
"""
from __future__ import annotations

import binascii
import time
from email.utils import formatdate


def qp(text: str) -> bytes:
    """Quoted-printable, CRLF line ends (binascii: C speed; lines of 76 at most)."""
    return binascii.b2a_qp(text.encode("utf-8"), quotetabs=False, istext=True, header=False).replace(b"\n", b"\r\n")


class Line:
    """A body encoded once around the lines that hold `stand_in`; those lines are encoded per reader,
    with the link as `escape` makes it (HTML-escaped for an HTML body)."""

    def __init__(self, body: str, stand_in: str, escape):
        body = body.replace("\r\n", "\n")
        if stand_in not in body:
            raise ValueError("the link's stand-in is missing from the body")
        self.stand_in, self.escape = stand_in, escape
        self.pieces: list[bytes | str] = []  # encoded bytes, and the lines (str) that hold the link
        done = 0
        while (at := body.find(stand_in, done)) >= 0:
            start = body.rfind("\n", 0, at) + 1
            end = body.find("\n", at)
            end = len(body) if end < 0 else end + 1
            self.pieces += [qp(body[done:start]), body[start:end]]
            done = end
        self.pieces.append(qp(body[done:]))

    def encoded(self, link: str) -> bytes:
        link = self.escape(link)
        return b"".join(qp(piece.replace(self.stand_in, link)) if isinstance(piece, str) else piece
                        for piece in self.pieces)


def header_line(name: str, value: str) -> bytes:
    """`Name: value` CRLF, ASCII, folded at spaces to 78 characters where it can be."""
    words = f"{name}: {value}".split(" ")
    lines, line = [], words[0]
    for word in words[1:]:
        if len(line) + 1 + len(word) > 78:
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    return ("\r\n".join(lines + [line]) + "\r\n").encode("ascii")


def cut(data: bytes, stand_ins: list[str], headers: dict[str, str] | None = None) -> list[bytes | str]:
    """The flattened `data` cut around each of `stand_ins` (each must appear once, in that order):
    [bytes, stand-in, bytes, …, bytes]. `headers` maps a header name to its stand-in value: its
    whole line (`Name: stand-in` CRLF) becomes the stand-in, to be filled with a `header_line`."""
    for name, stand_in in (headers or {}).items():
        line = f"{name}: {stand_in}\r\n".encode("ascii")
        if data.count(line) != 1:
            raise ValueError(f"the {name} header must appear once in the flattened mail")
        data = data.replace(line, stand_in.encode("ascii"))
    pieces: list[bytes | str] = []
    for stand_in in stand_ins:
        before, found, data = data.partition(stand_in.encode("ascii"))
        if not found or stand_in.encode("ascii") in data:
            raise ValueError(f"{stand_in} must appear once in the flattened mail")
        pieces += [before, stand_in]
    return pieces + [data]


def fill(pieces: list[bytes | str], values: dict[str, bytes]) -> bytes:
    """The pieces of `cut` joined, each stand-in replaced by its value."""
    return b"".join(values[piece] if isinstance(piece, str) else piece for piece in pieces)


_date = (0, "")


def date_now() -> bytes:
    """The Date header's value for now, as formatdate(localtime=True) gives it: made once a second (it
    only changes each second), as formatting it took a tenth of a service mail's time."""
    global _date
    second = int(time.time())
    if _date[0] != second:
        _date = (second, formatdate(second, localtime=True))
    return _date[1].encode("ascii")
