"""Author commands on the subscriber store (NEWSLETTER_DB):

    python -m newsletter import FILE     add addresses that already consented (CSV with an
                                         `email` column, or one address a line); all or nothing
    python -m newsletter export          the addresses as CSV on stdout
    python -m newsletter remove EMAIL    erase one address
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

from .addresses import InvalidAddress, normalize_address
from .config import DEFAULT_DB, ROOT
from .store import Erasure, StoreError, open_store

REMOVE_WAIT = 60  # seconds make remove waits for a reader of the store to let go


def store_path() -> str:
    return os.environ.get("NEWSLETTER_DB") or str(ROOT / DEFAULT_DB)


EMAIL_COLUMNS = ("email", "e-mail", "courriel")


class NoEmailColumn(ValueError):
    """A CSV header without an email column: say so, rather than refuse every line as an address."""


def read_addresses(text: str) -> list[tuple[int, str]]:
    """(line number, raw address) from a CSV with an `email` column (comma, semicolon or tab: French
    spreadsheets write semicolons), or from one address a line."""
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    delimiter = next((d for d in ";\t," if d in first), ",")
    header = [h.strip().lower() for h in next(csv.reader([first], delimiter=delimiter), [])]
    if len(header) > 1 and not any(name in header for name in EMAIL_COLUMNS):
        raise NoEmailColumn(f"ligne 1 : pas de colonne « email » dans l’en-tête {first.strip()!r}")
    if any(name in header for name in EMAIL_COLUMNS):
        column = next(header.index(name) for name in EMAIL_COLUMNS if name in header)
        rows = []
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        for row in reader:
            if row and [c.strip().lower() for c in row] == header:
                continue
            if not any(c.strip() for c in row):
                continue
            rows.append((reader.line_num, row[column] if column < len(row) else ""))
        return rows
    return [(n, line) for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")]


def cmd_import(path: str) -> int:
    if not path:
        print("Indiquez le fichier : make import FILE=abonnes.csv", file=sys.stderr)
        return 2
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"Impossible de lire {path} : {exc}", file=sys.stderr)
        return 2
    try:
        addresses = read_addresses(text)
    except NoEmailColumn as exc:
        print(f"{path}, {exc} : rien n’a été importé.", file=sys.stderr)
        return 1
    valid, invalid, seen = [], [], set()
    for line, raw in addresses:
        try:
            email = normalize_address(raw)
        except InvalidAddress as exc:
            invalid.append((line, raw, exc.message))
            continue
        if email.lower() not in seen:
            seen.add(email.lower())
            valid.append(email)
    if invalid:
        for line, raw, message in invalid:
            print(f"ligne {line} : {raw.strip()!r} refusée — {message}", file=sys.stderr)
        print(f"{len(invalid)} adresse(s) invalide(s) : rien n’a été importé. Corrigez le fichier et relancez.",
              file=sys.stderr)
        return 1
    with open_store(store_path()) as store:
        added, present = store.add_many(valid)
    print(f"{len(added)} adresse(s) ajoutée(s), {len(present)} déjà présente(s), 0 invalide.")
    return 0


def cmd_export() -> int:
    with open_store(store_path()) as store:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["email"])
        for email in store.emails():
            writer.writerow([email])
    return 0


def cmd_remove(raw: str) -> int:
    if not raw.strip():
        print("Indiquez l’adresse : make remove EMAIL=lecteur@exemple.fr", file=sys.stderr)
        return 2
    try:
        email = normalize_address(raw)
    except InvalidAddress:
        email = raw.strip()  # remove what is there, even if it would not be accepted today
    with open_store(store_path()) as store:
        erasure = store.remove(email)
        if erasure is Erasure.PENDING:
            print("Adresse retirée de la liste ; un autre programme lit la base (un envoi, une sauvegarde) : "
                  f"effacement du disque dès qu’il a fini (attente jusqu’à {REMOVE_WAIT} s)…", file=sys.stderr)
            if not store.wait_erased(REMOVE_WAIT):
                print(f"Pas encore effacée du disque : le programme qui lit {store.path} ne s’est pas arrêté. "
                      "L’effacement se terminera à la prochaine ouverture de la base (make send, le service) ; "
                      "ou relancez cette commande quand il aura fini.", file=sys.stderr)
                return 1
    print("Cette adresse n’était pas inscrite." if erasure is Erasure.ABSENT else "Adresse effacée.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m newsletter", description="Abonnés de la lettre (NEWSLETTER_DB).")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("import", help="ajouter des adresses (CSV avec une colonne email, ou une adresse par ligne)") \
        .add_argument("file")
    sub.add_parser("export", help="les adresses en CSV sur la sortie standard")
    sub.add_parser("remove", help="effacer une adresse").add_argument("email")
    args = parser.parse_args(argv)
    try:
        if args.command == "import":
            return cmd_import(args.file)
        if args.command == "export":
            return cmd_export()
        return cmd_remove(args.email)
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
