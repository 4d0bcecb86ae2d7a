"""make migrate-store FROM=… TO=…: copy a store to another backend (SQLite ↔ PostgreSQL), all or nothing.

The subscribers keep their ids and the identity goes on after the source's highest, so the sends'
positions stay valid; the lists each reader is on (memberships) and the send state (with a parallel
send's ranges) are copied as they are. The target must be empty and is written in
one transaction: a refusal, an error or a kill leaves it empty. The source is only read; its send
lock is held meanwhile (no `make send` runs on it), but the service should be stopped: a signup
confirmed during the copy would be in the source only.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from .store import SendBusy, StoreError, open_store

PAGE = 5000


def _sqlite_file(target: str) -> Path | None:
    if "://" not in target:
        return Path(target)
    return Path(target[len("sqlite:///"):]) if target.startswith("sqlite:///") else None


def pages(store) -> Iterator[tuple[int, str]]:
    """Every subscriber, (id, email) in id order, a page at a time."""
    position = 0
    while page := store.subscribers_after(position, PAGE):
        yield from page
        position = page[-1][0]


def migrate(source: str, target: str) -> tuple[int, int]:
    """Copy; returns (subscribers, sends) copied. StoreError (in French) on refusal."""
    if source == target:
        raise StoreError("FROM et TO désignent la même base : rien n’a été copié")
    source_file, target_file = _sqlite_file(source), _sqlite_file(target)
    if source_file is not None and not source_file.is_file():
        raise StoreError(f"FROM : {source_file} n’existe pas : rien n’a été copié")
    created = target_file is not None and not target_file.exists()
    try:
        with open_store(source) as src, open_store(target) as dst, src.sending(), dst.sending():
            sends = src.send_states()
            ranges = {post_id: src.send_ranges(post_id) for post_id, (_, done) in sends.items() if not done}
            count = dst.load_copy(src.high_water(), pages(src), sends, src.membership_rows(), ranges)
    except BaseException:
        if created:  # a file this command made, empty: not left behind
            for leftover in target_file.parent.glob(target_file.name + "*"):
                leftover.unlink()
        raise
    return count, len(sends)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newsletter.migrate",
                                     description="Copier les abonnés et l’état des envois d’une base à une autre.")
    parser.add_argument("source", help="FROM : chemin SQLite ou URL postgresql://")
    parser.add_argument("target", help="TO : chemin SQLite ou URL postgresql:// (base vide)")
    args = parser.parse_args(argv)
    if not args.source.strip() or not args.target.strip():
        print("Indiquez les deux bases : make migrate-store FROM=var/subscribers.sqlite3 "
              "TO=postgresql://lettre@localhost/lettre", file=sys.stderr)
        return 2
    try:
        subscribers, sends = migrate(args.source.strip(), args.target.strip())
    except SendBusy:
        print("Un envoi (make send) est en cours sur l’une des deux bases : attendez qu’il finisse, "
              "puis relancez. Rien n’a été copié.", file=sys.stderr)
        return 1
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1
    except Exception as exc:  # the server gone, a row the target refuses: the transaction rolled back
        print(f"Copie interrompue ({type(exc).__name__} : {exc}) : rien n’a été copié.", file=sys.stderr)
        return 1
    print(f"{subscribers} abonné(s) et {sends} envoi(s) copiés ; la base d’origine n’a pas été modifiée.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
