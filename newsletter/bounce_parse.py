"""What a message in the bounce mailbox is: a permanent failure, a complaint, an unsubscribe mail,
a temporary failure, or something we do not understand (left for the author).

Understood formats: delivery status notifications (RFC 3464: multipart/report;
report-type=delivery-status), feedback reports (ARF, RFC 5965, Feedback-Type: abuse), the
`unsubscribe-<token>` subject of the List-Unsubscribe mailto, and the plain-text bounces of MTAs
and mailbox providers that predate or ignore RFC 3464 (Exim, qmail and Yahoo's "Failure Notice",
Exchange and Outlook, Gmail, French providers), recognised by a sender that is a mail system, a
known phrase and an SMTP status. Anything else, or any doubt, is UNKNOWN: a mail that a person
wrote is never taken for a bounce. An auto-reply (RFC 3834 Auto-Submitted: auto-replied) is
never a bounce, even when it quotes one (X-Autoreply and the like; Auto-Submitted alone does not
tell, since MTAs mark their bounces auto-replied too).

Status X.2.2 (mailbox full) counts as temporary even in class 5: RFC 3463 calls it a "persistent
transient failure", and the reader may well empty the box.

This module only reads: which reader a verdict is about is decided by bounces.py with the
signed tokens and the store. Nothing here logs anything.
"""
from __future__ import annotations

import email
import email.policy
import enum
import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message

from .verp import tokens_in


class Kind(enum.Enum):
    HARD = "hard"                # permanent failure: erase
    COMPLAINT = "complaint"      # the reader marked the mail as spam: erase
    UNSUBSCRIBE = "unsubscribe"  # the List-Unsubscribe mailto: erase if the token is ours
    TEMPORARY = "temporary"      # delayed, or a failure that may clear: erase nothing, delete the message
    UNKNOWN = "unknown"          # left in the mailbox


@dataclass
class Verdict:
    kind: Kind
    verp: list[str] = field(default_factory=list)         # return-path tokens found in the message
    unsubscribe: list[str] = field(default_factory=list)  # unsubscribe tokens (subject, returned List-Unsubscribe)
    recipients: list[str] = field(default_factory=list)   # addresses the report says failed or complained


STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
SMTP_CODE = re.compile(r"(?:^|[\s:(\[])([245])\d\d(?:[\s-]|:\s)", re.MULTILINE)
ADDRESS = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,10}")
UNSUBSCRIBE_SUBJECT = re.compile(r"^\s*unsubscribe-([A-Za-z0-9_.-]+)\s*$", re.IGNORECASE)
UNSUBSCRIBE_TOKEN = re.compile(r"(?:subject=unsubscribe-|/desinscription/)([A-Za-z0-9_.-]+)")
DAEMON = re.compile(r"mailer-daemon|postmaster|mail delivery|maildelivery|mail-daemon|mdaemon|"
                    r"system administrator|microsoftexchange|\bnoreply-dsn|double-bounce", re.IGNORECASE)
# Phrases of the plain-text bounces (lower case, apostrophes straightened, spaces collapsed).
BOUNCE_PHRASES = (
    "this message was created automatically by mail delivery software",      # Exim
    "this is the qmail-send program",                                        # qmail
    "sorry, we were unable to deliver your message",                         # Yahoo (qmail-based)
    "delivery has failed to these recipients or groups",                     # Exchange, Outlook.com
    "your message did not reach some or all of the intended recipients",     # older Exchange
    "your message couldn't be delivered",                                    # Outlook.com
    "your message wasn't delivered",                                         # Gmail
    "address not found",                                                     # Gmail
    "delivery to the following recipient failed permanently",                # Gmail (older)
    "could not be delivered to one or more",                                 # Exim, many MTAs
    "undelivered mail returned to sender",                                   # Postfix subject
    "n'a pas pu être remis",                                                 # French MTAs, Orange, La Poste
    "n'a pas pu être distribué",
    "n'a pas pu être délivré",
    "votre message n'a pas été remis",
    "échec de la remise",                                                    # Exchange in French
    "message non remis",                                                     # Free, SFR
)
TEMPORARY_PHRASES = (
    "has not yet been delivered",            # Exim's delay warning
    "will continue trying", "will retry", "will keep trying", "still trying",
    "delivery has been delayed", "delivery delayed", "delayed mail",
    "nouvelle tentative", "remise différée", "temporairement", "erreur temporaire",
)
PERMANENT_PHRASES = ("permanent error", "permanently", "i've given up", "erreur permanente", "définitivement")
# Where the copy of the returned message starts in a plain-text bounce: addresses after it are not failures.
RETURNED_COPY = re.compile(
    r"^(?:-{2,}.*(?:copy|original|below this line|returned|message d.origine|en-têtes|headers).*"
    r"|received: .*|return-path: .*|original message headers.*)$", re.IGNORECASE | re.MULTILINE)
AUTO_REPLY_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Vacation")


def classify(raw: bytes) -> Verdict:
    """The verdict on one message, given as its bytes. Never raises on a malformed message."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        return _classify(msg, raw)
    except Exception:  # a message that breaks the parser is one we do not understand
        return Verdict(Kind.UNKNOWN)


def _classify(msg: Message, raw: bytes) -> Verdict:
    subject = header(msg, "Subject")
    # Tokens are read where they name the failed message's reader: the bounce's own recipient, the
    # report's fields and the returned message's own headers; never a body, where a forwarded
    # newsletter would name the reader who forwarded it.
    returned = returned_headers(msg)
    report = "\n".join(_part_string(part) for part in msg.walk()
                       if part.get_content_type() in ("message/delivery-status", "message/feedback-report"))
    verp = tokens_in(envelope_recipients(msg) + "\n" + report + "\n" + returned)
    unsubscribe = list(dict.fromkeys(
        token for line in re.findall(r"^List-Unsubscribe:.*(?:\n[ \t].*)*", returned, re.MULTILINE | re.IGNORECASE)
        for token in UNSUBSCRIBE_TOKEN.findall(line)))
    match = UNSUBSCRIBE_SUBJECT.match(subject)
    if match and not from_daemon(msg) and not auto_reply(msg):
        return Verdict(Kind.UNSUBSCRIBE, unsubscribe=[match.group(1)])
    if msg.get_content_type() == "multipart/report":
        # A report whose report part is missing or unreadable is not guessed at from its text.
        report_type = (msg.get_param("report-type") or "").lower()
        if report_type == "feedback-report":
            return _feedback(msg, verp, unsubscribe)
        if report_type == "delivery-status":
            return _delivery_status(msg, verp, unsubscribe)
    return _plain_bounce(msg, subject, verp, unsubscribe)


def _feedback(msg: Message, verp, unsubscribe) -> Verdict:
    report = part_of(msg, "message/feedback-report")
    if report is None:
        return Verdict(Kind.UNKNOWN)
    fields = report_fields(report)
    if fields.get("feedback-type", [""])[0].strip().lower() != "abuse":
        return Verdict(Kind.UNKNOWN)
    recipients = [address for value in fields.get("original-rcpt-to", []) + fields.get("removal-recipient", [])
                  for address in ADDRESS.findall(value)]
    return Verdict(Kind.COMPLAINT, verp, unsubscribe, recipients)


def _delivery_status(msg: Message, verp, unsubscribe) -> Verdict:
    report = part_of(msg, "message/delivery-status")
    if report is None:
        return Verdict(Kind.UNKNOWN)
    failed, temporary = [], False
    for block in status_blocks(report):
        action = block.get("action", [""])[0].strip().lower()
        status = STATUS.search(block.get("status", [""])[0] + " " + " ".join(block.get("diagnostic-code", [])))
        if action == "delayed" or (status and status.group(1) == "4"):
            temporary = True
        elif action == "failed" and status and status.group(1) == "5":
            if status.group(2) == "2" and status.group(3) == "2":  # mailbox full: persistent transient
                temporary = True
            else:
                failed += [address for name in ("final-recipient", "original-recipient")
                           for value in block.get(name, []) for address in ADDRESS.findall(value)]
                failed.append("")  # a failed recipient even when its address is unreadable
    if failed:
        return Verdict(Kind.HARD, verp, unsubscribe, [address for address in failed if address])
    if temporary:
        return Verdict(Kind.TEMPORARY)
    return Verdict(Kind.UNKNOWN)  # delivered, relayed, expanded: nothing to do, the author may want to see it


def _plain_bounce(msg: Message, subject: str, verp, unsubscribe) -> Verdict:
    # A plain-text bounce has no structure to tell the returned message's headers from a forwarded
    # one's: only its own recipient counts, and the addresses its explanation names.
    verp, unsubscribe = tokens_in(envelope_recipients(msg)), []
    if not from_daemon(msg) or vacation(msg):
        return Verdict(Kind.UNKNOWN)
    text = simplify(subject + "\n" + body_text(msg))
    if not any(phrase in text for phrase in BOUNCE_PHRASES + TEMPORARY_PHRASES):
        return Verdict(Kind.UNKNOWN)
    explanation = RETURNED_COPY.split(text, maxsplit=1)[0]
    statuses = {match.group(1) for match in STATUS.finditer(explanation)}
    codes = {match.group(1) for match in SMTP_CODE.finditer(explanation)}
    if any(phrase in explanation for phrase in TEMPORARY_PHRASES) or (not statuses - {"4"} and "4" in statuses):
        return Verdict(Kind.TEMPORARY)
    if re.search(r"\b5\.2\.2\b", explanation) and len(statuses) == 1:
        return Verdict(Kind.TEMPORARY)
    if "5" in statuses or "5" in codes or any(phrase in explanation for phrase in PERMANENT_PHRASES):
        return Verdict(Kind.HARD, verp, unsubscribe, ADDRESS.findall(explanation))
    return Verdict(Kind.UNKNOWN)


# -- reading the parts ---------------------------------------------------------------------------


def header(msg: Message, name: str) -> str:
    """A header decoded from RFC 2047 as far as it goes; "" when absent."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # unknown charset, broken encoded word
        return str(value)


def auto_reply(msg: Message) -> bool:
    """A reply sent by a program (RFC 3834): a vacation notice, or a bounce (MTAs mark theirs so too)."""
    return header(msg, "Auto-Submitted").strip().lower().startswith("auto-replied") or vacation(msg)


def vacation(msg: Message) -> bool:
    """The marks of a vacation or out-of-office responder, which a bounce never carries."""
    return (any(msg.get(name) is not None for name in AUTO_REPLY_HEADERS)
            or header(msg, "Precedence").strip().lower() == "auto_reply")


def from_daemon(msg: Message) -> bool:
    """Sent by a mail system: a daemon's name, or the null return path of RFC 5321 (4.5.5)."""
    senders = " ".join(header(msg, name) for name in ("From", "Sender", "Return-Path"))
    return bool(DAEMON.search(senders)) or header(msg, "Return-Path").strip() == "<>"


def part_of(msg: Message, content_type: str) -> Message | None:
    for part in msg.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def report_fields(part: Message) -> dict[str, list[str]]:
    """Name: value fields of a report part, names lower-cased, every value kept."""
    return _fields(_part_string(part))


def status_blocks(part: Message) -> list[dict[str, list[str]]]:
    """The per-message block and each per-recipient block of a message/delivery-status part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [_fields(block.as_string()) for block in payload]
    return [_fields(block) for block in re.split(r"\n\s*\n", _part_string(part))]


def _fields(text: str) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for match in re.finditer(r"^([A-Za-z][A-Za-z0-9-]*):[ \t]*(.*(?:\n[ \t]+.*)*)", text, re.MULTILINE):
        fields.setdefault(match.group(1).lower(), []).append(match.group(2).strip())
    return fields


def _part_string(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(p.as_string() for p in payload)
    return decoded(part)


def decoded(part: Message) -> str:
    """A leaf part's text, whatever its transfer encoding and declared charset."""
    data = part.get_payload(decode=True)
    if data is None:
        return str(part.get_payload() or "")
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return data.decode("latin-1")


def body_text(msg: Message) -> str:
    """The bounce's own text parts (not the returned message's), HTML tags stripped."""
    texts = []
    stack = [msg]
    while stack:
        part = stack.pop(0)
        if part.get_content_maintype() == "message":
            continue
        if part.is_multipart():
            stack[:0] = [p for p in part.get_payload() if isinstance(p, Message)]
        elif part.get_content_maintype() == "text" and part.get_content_type() != "text/rfc822-headers":
            text = decoded(part)
            if part.get_content_subtype() == "html":
                text = re.sub(r"<[^>]*>", " ", text)
            texts.append(text)
    return "\n".join(texts)


RECIPIENT_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "X-Delivered-To",
                     "X-Rcpt-To", "Received")


def envelope_recipients(msg: Message) -> str:
    """The headers that say where the bounce itself was delivered: the return path it came back to."""
    return "\n".join(str(value) for name in RECIPIENT_HEADERS for value in msg.get_all(name, []))


def returned_headers(msg: Message) -> str:
    """The headers of the returned message of a report (message/rfc822 or text/rfc822-headers), not deeper."""
    if not msg.is_multipart():
        return ""
    for part in msg.get_payload():
        if not isinstance(part, Message):
            continue
        if part.get_content_type() == "message/rfc822" and isinstance(part.get_payload(), list):
            inner = part.get_payload()[0]
            return "\n".join(f"{name}: {value}" for name, value in inner.items())
        if part.get_content_type() == "text/rfc822-headers":
            return re.split(r"\r?\n\r?\n", decoded(part), maxsplit=1)[0]
    return ""


def simplify(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u00a0", " ").lower()
    return re.sub(r"[ \t]+", " ", text)
