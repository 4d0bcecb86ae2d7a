"""Config.from_env and the author commands (import, export, remove)."""
import subprocess
import sys

import pytest

from newsletter.config import ROOT, Config, ConfigError


def test_dev_defaults_from_pelicanconf(tmp_path, monkeypatch):
    monkeypatch.setenv("PORT", "8000")
    env = {"NEWSLETTER_SECRET": "s" * 32}
    c = Config.from_env(environ=env)
    assert c.public_url == "http://127.0.0.1:8000"
    assert c.newsletter_url == "http://127.0.0.1:8000/newsletter" and c.newsletter_path == "/newsletter"
    assert c.site_name == "égoBlog" and "@" in c.mail_from and "@" in c.reply_to
    assert c.db == str(ROOT / "var/subscribers.sqlite3") and c.outbox == ROOT / "var/outbox"
    assert c.smtp_url is None and c.secrets == ["s" * 32]
    assert "s" * 32 not in repr(c)


def test_environment_values_and_rotation(tmp_path):
    env = {"NEWSLETTER_DB": str(tmp_path / "x.db"), "NEWSLETTER_OUTBOX": str(tmp_path / "o"),
           "SMTP_URL": "smtps://u:p@mail.exemple.fr", "NEWSLETTER_SECRET": "n" * 20,
           "NEWSLETTER_SECRET_PREVIOUS": "o" * 20}
    c = Config.from_env(environ=env)
    assert c.db == str(tmp_path / "x.db") and c.outbox == tmp_path / "o"
    assert c.smtp_url == "smtps://u:p@mail.exemple.fr" and c.secrets == ["n" * 20, "o" * 20]
    assert "u:p" not in repr(c)


@pytest.mark.parametrize("env, name", [
    ({"SMTP_URL": "http://mail.exemple.fr", "NEWSLETTER_SECRET": "s" * 32}, "SMTP_URL"),
    ({"SMTP_URL": "smtp://u:s3cr3t-pw@mail.exemple.fr:99999", "NEWSLETTER_SECRET": "s" * 32}, "SMTP_URL"),
    ({"NEWSLETTER_SECRET": "court"}, "NEWSLETTER_SECRET"),
    ({"NEWSLETTER_SECRET": "s" * 32, "NEWSLETTER_SECRET_PREVIOUS": "x"}, "NEWSLETTER_SECRET_PREVIOUS"),
    ({"NEWSLETTER_SETTINGS": "absent.py"}, "NEWSLETTER_SETTINGS"),
    ({"NEWSLETTER_INSTANCES": "127.0.0.1:8001 127.0.0.1"}, "NEWSLETTER_INSTANCES"),
    ({"NEWSLETTER_INSTANCES": "127.0.0.1:8001,:8002"}, "NEWSLETTER_INSTANCES"),
])
def test_bad_values_name_their_variable(env, name):
    with pytest.raises(ConfigError, match=name) as info:
        Config.from_env(environ=env)
    assert "s3cr3t-pw" not in str(info.value)


def test_an_instance_missing_from_newsletter_instances_is_named():
    """python -m newsletter.server --port 8003 with NEWSLETTER_INSTANCES listing 8001 and 8002: it would
    share its per-address limit with nobody (newsletter/peers.py)."""
    from newsletter.peers import instances_of

    config = Config.from_env(environ={"NEWSLETTER_INSTANCES": "127.0.0.1:8001, 127.0.0.1:8002"})
    assert config.instances == ("127.0.0.1:8001", "127.0.0.1:8002")
    assert instances_of(config, "127.0.0.1:8002") == ["127.0.0.1:8001"]
    assert instances_of(config, None) is None  # the dev server: no peers
    with pytest.raises(ConfigError, match="NEWSLETTER_INSTANCES ne nomme pas cette instance .127.0.0.1:8003."):
        instances_of(config, "127.0.0.1:8003")


def test_publishconf_needs_its_variables(monkeypatch):
    monkeypatch.delenv("SITEURL", raising=False)
    with pytest.raises(ConfigError, match="SITEURL"):
        Config.from_env(environ={"NEWSLETTER_SETTINGS": "publishconf.py", "NEWSLETTER_SECRET": "s" * 32})
    monkeypatch.setenv("SITEURL", "https://blog.exemple.fr")
    monkeypatch.setenv("NEWSLETTER_SECRET", "s" * 32)
    monkeypatch.setenv("NEWSLETTER_FROM", "Mon blog <lettre@exemple.fr>")
    c = Config.from_env(environ={"NEWSLETTER_SETTINGS": "publishconf.py", "NEWSLETTER_SECRET": "s" * 32})
    assert c.newsletter_url == "https://blog.exemple.fr/newsletter"
    assert c.mail_from == "Mon blog <lettre@exemple.fr>"


@pytest.mark.parametrize("mail_from, says", [
    (None, "set NEWSLETTER_FROM"),
    ("", "set NEWSLETTER_FROM"),
    ("Mon blog", "set NEWSLETTER_FROM"),
    ("égoBlog <lettre@egoblog.example>", "egoblog.example, which no mail can come from"),
    ("lettre@blog.invalid", "blog.invalid"),
    ("lettre@localhost", "set NEWSLETTER_FROM"),
    ("lettre@mail.localhost", "mail.localhost"),
    ("lettre@example.com", "example.com"),
])
def test_publishconf_refuses_a_missing_or_placeholder_from(monkeypatch, mail_from, says):
    monkeypatch.setenv("SITEURL", "https://blog.exemple.fr")
    monkeypatch.setenv("NEWSLETTER_SECRET", "s" * 32)
    if mail_from is None:
        monkeypatch.delenv("NEWSLETTER_FROM", raising=False)
    else:
        monkeypatch.setenv("NEWSLETTER_FROM", mail_from)
    with pytest.raises(ConfigError, match=says):
        Config.from_env(environ={"NEWSLETTER_SETTINGS": "publishconf.py", "NEWSLETTER_SECRET": "s" * 32})


def run(*args, env):
    return subprocess.run([sys.executable, "-m", "newsletter", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env)


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    import os
    return {**os.environ, "NEWSLETTER_DB": str(tmp_path / "abonnes.sqlite3")}


def test_import_export_remove(tmp_path, cli_env):
    csv_file = tmp_path / "liste.csv"
    csv_file.write_text("nom,email\nJean,Jean@Exämple.fr\nMarie,marie+lettre@exemple.fr\n", encoding="utf-8")
    r = run("import", str(csv_file), env=cli_env)
    assert r.returncode == 0 and "2 adresse(s) ajoutée(s), 0 déjà présente(s)" in r.stdout
    assert "(liste : tout le blog)" in r.stdout
    lines = tmp_path / "lignes.txt"
    lines.write_text("marie+lettre@exemple.fr\n\nnouveau@exemple.fr\n", encoding="utf-8")
    r = run("import", str(lines), env=cli_env)
    assert r.returncode == 0 and "1 adresse(s) ajoutée(s), 1 déjà présente(s)" in r.stdout
    r = run("export", env=cli_env)
    assert r.stdout == "email,listes\nJean@xn--exmple-cua.fr,tout\nmarie+lettre@exemple.fr,tout\nnouveau@exemple.fr,tout\n"
    r = run("remove", "jean@exämple.fr", env=cli_env)
    assert r.returncode == 0 and "effacée" in r.stdout
    assert b"Jean@" not in b"".join(p.read_bytes() for p in tmp_path.glob("abonnes.sqlite3*"))
    assert "pas inscrite" in run("remove", "jean@exämple.fr", env=cli_env).stdout


def test_import_is_all_or_nothing_with_line_numbers(tmp_path, cli_env):
    f = tmp_path / "liste.txt"
    f.write_text("bon@exemple.fr\nmauvais@localhost\nautre@exemple.fr\npas-une-adresse\n", encoding="utf-8")
    r = run("import", str(f), env=cli_env)
    assert r.returncode == 1
    assert "ligne 2" in r.stderr and "ligne 4" in r.stderr and "rien n’a été importé" in r.stderr
    assert run("export", env=cli_env).stdout == "email,listes\n"


def test_import_reads_french_spreadsheets_and_names_a_missing_column(tmp_path, cli_env):
    semicolons = tmp_path / "excel.csv"
    semicolons.write_text("nom;email\nJean;jean@exemple.fr\nMarie;marie@exemple.fr\n", encoding="utf-8-sig")
    r = run("import", str(semicolons), env=cli_env)
    assert r.returncode == 0 and "2 adresse(s) ajoutée(s)" in r.stdout
    wrong = tmp_path / "sans-colonne.csv"
    wrong.write_text("nom,mail\nPaul,paul@exemple.fr\n", encoding="utf-8")
    r = run("import", str(wrong), env=cli_env)
    assert r.returncode == 1 and "pas de colonne « email »" in r.stderr
    assert run("export", env=cli_env).stdout == "email,listes\njean@exemple.fr,tout\nmarie@exemple.fr,tout\n"


def test_remove_without_an_address_is_a_usage_error(cli_env):
    r = run("remove", "", env=cli_env)
    assert r.returncode == 2 and "make remove EMAIL=" in r.stderr


@pytest.fixture
def lists_env(tmp_path, cli_env):
    """The CLI with a settings file whose post records know two rubriques (what a build leaves)."""
    from blogcore.records import RecordsWriter
    records = RecordsWriter(tmp_path / "posts")
    records.put_rubriques({"ethique-biz": "éthique.biz", "humeurs-marketing": "Humeurs Marketing"})
    records.commit()
    (tmp_path / "reglages.py").write_text(f"MAIL_POSTS_PATH = {str(tmp_path / 'posts')!r}\n")
    return {**cli_env, "NEWSLETTER_SETTINGS": str(tmp_path / "reglages.py")}


def test_import_and_export_per_list_and_remove_from_every_list(tmp_path, lists_env):
    f = tmp_path / "ethique.txt"
    f.write_text("a@exemple.fr\nb@exemple.fr\n", encoding="utf-8")
    r = run("import", str(f), "--list", "ethique-biz", env=lists_env)
    assert r.returncode == 0 and "2 adresse(s) ajoutée(s)" in r.stdout and "la rubrique ethique-biz" in r.stdout
    tout = tmp_path / "tout.txt"
    tout.write_text("b@exemple.fr\nc@exemple.fr\n", encoding="utf-8")
    assert run("import", str(tout), "--list", "", env=lists_env).returncode == 0
    assert run("export", env=lists_env).stdout == \
        "email,listes\na@exemple.fr,ethique-biz\nb@exemple.fr,tout ethique-biz\nc@exemple.fr,tout\n"
    assert run("export", "--list", "ethique-biz", env=lists_env).stdout == "email\na@exemple.fr\nb@exemple.fr\n"
    assert run("export", "--list", "tout", env=lists_env).stdout == "email\nb@exemple.fr\nc@exemple.fr\n"
    assert run("export", "--list", "humeurs-marketing", env=lists_env).stdout == "email\n"
    assert "effacée" in run("remove", "b@exemple.fr", env=lists_env).stdout
    assert run("export", env=lists_env).stdout == "email,listes\na@exemple.fr,ethique-biz\nc@exemple.fr,tout\n"
    data = b"".join(p.read_bytes() for p in tmp_path.glob("abonnes.sqlite3*"))
    assert b"b@exemple.fr" not in data


def test_an_unknown_list_is_named_and_nothing_is_imported(tmp_path, lists_env):
    f = tmp_path / "liste.txt"
    f.write_text("a@exemple.fr\n", encoding="utf-8")
    r = run("import", str(f), "--list", "ethique", env=lists_env)
    assert r.returncode == 2 and "LIST=ethique : pas de rubrique de ce nom" in r.stderr
    assert "ethique-biz, humeurs-marketing" in r.stderr and "Traceback" not in r.stderr
    assert run("export", env=lists_env).stdout == "email,listes\n"
    r = run("export", "--list", "inconnue", env=lists_env)
    assert r.returncode == 2 and "LIST=inconnue" in r.stderr


def test_make_passes_list_to_import_and_export():
    def dry(*args):
        return subprocess.run(["make", "-n", "--no-print-directory", *args], cwd=ROOT, capture_output=True,
                              text=True).stdout
    assert 'import --file "a.csv" --list "ethique-biz"' in dry("import", "FILE=a.csv", "LIST=ethique-biz")
    assert 'export --list "ethique-biz"' in dry("export", "LIST=ethique-biz")
    assert "--list" not in dry("export")
