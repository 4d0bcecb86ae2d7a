"""Author commands on the subscriber store (NEWSLETTER_DB):

    python -m newsletter import FILE [--list SLUG]   add addresses that already consented (CSV with an
                                                     `email` column, or one address a line) to the whole
                                                     blog's list, or to a rubrique's; all or nothing
    python -m newsletter export [--list SLUG]        the addresses as CSV on stdout: those of one list, or
                                                     every address with its lists (`listes`: « tout » for
                                                     the whole blog, else rubrique slugs, space-separated)
    python -m newsletter remove EMAIL                erase one address, from every list

A list is named as in the signup form: empty or « tout » for the whole blog, else a rubrique's slug,
checked against the rubriques of the last build (its post records).
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from pathlib import Path

from .addresses import InvalidAddress, normalize_address
from blogcore.records import RecordsError, read_rubriques, records_folder

from .config import DEFAULT_DB, ROOT, ConfigError, read_settings
from .lists import FORM_WHOLE_BLOG
from .store import WHOLE_BLOG, Erasure, StoreError, open_store

REMOVE_WAIT = 60  # seconds make remove waits for a reader of the store to let go


def store_path() -> str:
    return os.environ.get("NEWSLETTER_DB") or str(ROOT / DEFAULT_DB)


EMAIL_COLUMNS = ("email", "e-mail", "courriel")


class UnknownList(ValueError):
    """LIST= names no rubrique of the last build; the message says which exist."""


def list_key(name: str) -> str:
    """The store's key for LIST= (empty or « tout »: the whole blog); UnknownList if the build has no such rubrique."""
    name = name.strip()
    if name in ("", FORM_WHOLE_BLOG):
        return WHOLE_BLOG
    settings = read_settings(os.environ.get("NEWSLETTER_SETTINGS") or "pelicanconf.py")
    rubriques = read_rubriques(records_folder(settings))
    if rubriques is None:
        raise UnknownList(f"LIST={name} : aucune construction du site pour connaître les rubriques ; "
                          "lancez make build, puis recommencez")
    if name not in rubriques:
        known = ", ".join(sorted(rubriques)) or "aucune"
        raise UnknownList(f"LIST={name} : pas de rubrique de ce nom (rubriques : {known} ; "
                          f"LIST= vide ou « {FORM_WHOLE_BLOG} » pour tout le blog)")
    return name


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


def cmd_import(path: str, list_name: str = "") -> int:
    if not path:
        print("Indiquez le fichier : make import FILE=abonnes.csv (LIST=rubrique pour la liste d’une rubrique)",
              file=sys.stderr)
        return 2
    key = list_key(list_name)
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
        added, present = store.add_many(valid, [key])
    where = "tout le blog" if key == WHOLE_BLOG else f"la rubrique {key}"
    print(f"{len(added)} adresse(s) ajoutée(s), {len(present)} déjà présente(s), 0 invalide (liste : {where}).")
    return 0


def cmd_export(list_name: str | None = None) -> int:
    key = None if list_name is None else list_key(list_name)
    with open_store(store_path()) as store:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        if key is not None:
            writer.writerow(["email"])
            for email in store.emails(key):
                writer.writerow([email])
            return 0
        writer.writerow(["email", "listes"])
        for email, keys in store.memberships():
            writer.writerow([email, " ".join(FORM_WHOLE_BLOG if k == WHOLE_BLOG else k for k in keys)])
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
    importing = sub.add_parser("import", help="ajouter des adresses (CSV avec une colonne email, ou une adresse par ligne)")
    importing.add_argument("file")
    importing.add_argument("--list", default="", help="la liste : vide ou « tout » pour tout le blog, sinon une rubrique")
    exporting = sub.add_parser("export", help="les adresses en CSV sur la sortie standard")
    exporting.add_argument("--list", default=None, help="une seule liste (vide ou « tout » : tout le blog)")
    sub.add_parser("remove", help="effacer une adresse de toutes les listes").add_argument("email")
    args = parser.parse_args(argv)
    try:
        if args.command == "import":
            return cmd_import(args.file, args.list)
        if args.command == "export":
            return cmd_export(args.list)
        return cmd_remove(args.email)
    except (UnknownList, ConfigError, RecordsError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
