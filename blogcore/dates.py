"""Dates as readers see them: in the site's time zone, in the post's language.

One rule for the time zone, the one Pelican follows: the settings' TIMEZONE, else UTC;
a naive date is a date in that zone. Dates are formatted by hand, never through the
system locale, so a build on any machine reads « 17 octobre 2015 ».

An English post gets « 17 October 2015 »: day, month, year as in French (so the
archives' year-less form still reads « 17 October »), unambiguous on both sides of
the Atlantic.

"Now" is the build's clock read in the same zone (build_now): a post dated later is
in the future. Tests give a fixed instant instead of waiting for the clock.
"""
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from .language import is_french

DEFAULT_TIMEZONE = "UTC"  # Pelican's own default when TIMEZONE is unset
MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")
ENGLISH_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")


def site_zone(settings) -> ZoneInfo:
    """The zone dates are shown in: TIMEZONE, else UTC (an unknown name raises ZoneInfoNotFoundError)."""
    return ZoneInfo(settings.get("TIMEZONE") or DEFAULT_TIMEZONE)


def localized(date: datetime, zone: tzinfo) -> datetime:
    """The date in `zone`; a naive date is taken as already in `zone`."""
    return date.replace(tzinfo=zone) if date.tzinfo is None else date.astimezone(zone)


def fr_date(date: datetime, zone: tzinfo, year: bool = True) -> str:
    """« 17 octobre 2015 », « 1er janvier 2017 »; without the year for archives grouped by year."""
    date = localized(date, zone)
    day = "1er" if date.day == 1 else str(date.day)
    text = f"{day} {MONTHS[date.month - 1]}"
    return f"{text} {date.year}" if year else text


def en_date(date: datetime, zone: tzinfo, year: bool = True) -> str:
    """« 17 October 2015 »; « 17 October » without the year."""
    date = localized(date, zone)
    text = f"{date.day} {ENGLISH_MONTHS[date.month - 1]}"
    return f"{text} {date.year}" if year else text


def local_date(date: datetime, lang, zone: tzinfo, year: bool = True) -> str:
    """The date in the post's language: French for a French post, English otherwise."""
    return (fr_date if is_french(lang) else en_date)(date, zone, year)


def fr_month(date: datetime, zone: tzinfo) -> str:
    """« octobre 2015 »."""
    date = localized(date, zone)
    return f"{MONTHS[date.month - 1]} {date.year}"


def fr_datetime(date: datetime, zone: tzinfo) -> str:
    """« 3 décembre 2027 à 9 h 00 », no-break spaces around the « h »."""
    date = localized(date, zone)
    return f"{fr_date(date, zone)} à {date.hour}\u00a0h\u00a0{date.minute:02d}"


def build_now(zone: tzinfo, fixed: str | None = None) -> datetime:
    """Now, in `zone`; `fixed` (ISO 8601, a time without offset is in `zone`) stands for the clock in tests.

    A bad `fixed` raises ValueError naming it."""
    if fixed is None or fixed == "":
        return datetime.now(zone)
    try:
        return localized(datetime.fromisoformat(str(fixed)), zone)
    except ValueError:
        raise ValueError(f"{fixed!r} is not an ISO 8601 date and time (e.g. 2027-12-03T09:00)") from None


def is_future(date: datetime, now: datetime, zone: tzinfo) -> bool:
    """True if `date` (a naive one is in `zone`) comes after `now`."""
    return localized(date, zone) > now


def iso_date(date: datetime, zone: tzinfo) -> str:
    """ISO 8601 with the zone's offset, for <time datetime> and structured data."""
    return localized(date, zone).isoformat()
