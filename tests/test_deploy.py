"""make deploy: releases uploaded by rsync over a real sshd on 127.0.0.1, or into a folder, and switched at once.

The sites are real `make publish` builds of the project's content, made one after
the other in one output/ as the author makes them: as it is (v1), after a sentence
added to one post (v2), after another post is deleted (v3). The oracle for "only the
changed files move" is the sites themselves: the files whose bytes differ.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sitebuild.deploy import DeployError, Target, deploy, main, parse_target, to_prune
from tests.conftest import ROOT
from tests.fixtures.nginx import CERT, KEY, LOG, SHIPPED as NGINX_CONF, nginx, nginx_binary, running_nginx, \
    self_signed, wrap
from tests.fixtures.sshd import free_port, running_sshd

SITEURL = "https://blog.example.fr"
PUBLISH_ENV = {"SITEURL": SITEURL, "NEWSLETTER_SECRET": "deploy-tests-secret-0123456789abcdef",
               "NEWSLETTER_FROM": "égoBlog <lettre@blog.exemple.fr>"}
EDITED = "2015-11-le-cr-aime.md"
EDITED_PAGE = "2015/11/le-cr-aime/index.html"
DELETED = "2009-08-infamie-du-fail.md"
DELETED_PAGE = "2009/08/infamie-du-fail/index.html"


def publish(content: Path, output: Path):
    """make publish's command (publishconf.py, staged by sitebuild), with a cache of its own."""
    result = subprocess.run(
        [sys.executable, "-m", "sitebuild", "--settings", "publishconf.py", "--content", str(content),
         "--output", str(output), "-e", f'CACHE_PATH="{output.parent / "cache"}"'],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, **PUBLISH_ENV})
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="session")
def sites(tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("sites")
    content, output = work / "content", work / "output"
    shutil.copytree(ROOT / "content", content)
    publish(content, output)
    shutil.copytree(output, work / "v1", symlinks=True)
    post = content / "posts" / EDITED
    post.write_text(post.read_text(encoding="utf-8") + "\nUne phrase ajoutée après coup.\n", encoding="utf-8")
    publish(content, output)
    shutil.copytree(output, work / "v2", symlinks=True)
    (content / "posts" / DELETED).unlink()
    publish(content, output)
    shutil.copytree(output, work / "v3", symlinks=True)
    return {name: work / name for name in ("v1", "v2", "v3")}


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(params=["ssh", "folder"])
def target(request, tmp_path) -> tuple[Target, Path]:
    """A fresh deploy target, over SSH or a folder, and the folder it is on this machine."""
    folder = tmp_path / "srv" / "egoblog"
    if request.param == "folder":
        return parse_target(str(folder), {}), folder
    sshd = request.getfixturevalue("sshd")
    return parse_target(sshd.target(folder), sshd.env()), folder


def files(folder: Path) -> dict[str, bytes]:
    """Every file under folder (a link to a release is followed) and its bytes."""
    root = folder.resolve()
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def live(folder: Path) -> Path:
    """The release the web server serves: where `current` points."""
    assert (folder / "current").is_symlink()
    return (folder / "current").resolve()


def test_first_deploy_copies_the_site(sites, target):
    where, folder = target
    report = deploy(sites["v1"], where, environ={"SITEURL": SITEURL})
    assert files(folder / "current") == files(sites["v1"])
    assert live(folder) == folder / "releases" / report.release
    assert sorted(report.sent) == sorted(files(sites["v1"])) and report.files == len(report.sent)
    assert report.previous is None and "Deployed to" in report.summary()
    assert oct((live(folder) / "index.html").stat().st_mode & 0o777) == "0o644"  # readable by the web server


def test_a_one_post_edit_moves_only_the_files_that_changed(sites, target):
    where, folder = target
    first = deploy(sites["v1"], where)
    second = deploy(sites["v2"], where)
    old, new = files(sites["v1"]), files(sites["v2"])
    changed = {path for path in new if old.get(path) != new[path]}
    assert EDITED_PAGE in changed and "atom.xml" in changed
    assert 0 < len(changed) <= 20, sorted(changed)  # the post, its feeds; not the site
    assert set(second.sent) == changed
    assert second.bytes_sent < sum(len(new[path]) for path in changed) + 10_000  # not a byte of the others
    assert files(folder / "current") == new
    # The files that did not change were not sent: they are the previous release's own files (hard links).
    previous, current = folder / "releases" / first.release, live(folder)
    for path in set(new) - changed:
        assert (current / path).stat().st_ino == (previous / path).stat().st_ino, path
    assert files(previous) == old and second.previous == first.release  # kept for rollback


def test_a_deleted_page_disappears(sites, target):
    where, folder = target
    deploy(sites["v2"], where)
    deploy(sites["v3"], where)
    assert not (folder / "current" / DELETED_PAGE).exists()
    assert (folder / "previous" / DELETED_PAGE).is_file()
    assert files(folder / "current") == files(sites["v3"])


def test_a_failed_upload_leaves_the_live_site_as_it_was(sites, sshd, tmp_path):
    """The server's disk fills up in the middle of the upload (rsync there cannot write a file over 4 kB)."""
    folder = tmp_path / "srv"
    first = deploy(sites["v1"], parse_target(sshd.target(folder), sshd.env()))
    with pytest.raises(DeployError) as failure:
        deploy(sites["v2"], parse_target(sshd.target(folder), sshd.env(sshd.full_key)))
    assert "File too large" in str(failure.value)
    assert f"live site was not changed: current still points to releases/{first.release}" in str(failure.value)
    assert live(folder) == folder / "releases" / first.release
    assert files(folder / "current") == files(sites["v1"])
    partial, = (folder / "releases").glob("*.partial")
    assert any(p.is_file() for p in partial.rglob("*"))  # it did stop halfway
    # The next deploy, with room on the disk, goes through.
    deploy(sites["v2"], parse_target(sshd.target(folder), sshd.env()))
    assert files(folder / "current") == files(sites["v2"])


def test_a_failed_upload_to_a_folder_leaves_it_as_it_was(sites, tmp_path):
    """Same, for a folder: this disk fills up under the deploy command (a 4 kB file-size limit)."""
    folder = tmp_path / "www"
    first = deploy(sites["v1"], parse_target(str(folder), {}))
    result = subprocess.run(["sh", "-c", 'ulimit -f 8; exec "$@"', "sh", sys.executable, "-m", "sitebuild.deploy",
                             "--output", str(sites["v2"]), "--target", str(folder)],
                            cwd=ROOT, capture_output=True, text=True, env={**os.environ, "SITEURL": SITEURL})
    assert result.returncode == 1
    assert "File too large" in result.stderr and "The live site was not changed" in result.stderr
    assert live(folder) == folder / "releases" / first.release
    assert files(folder / "current") == files(sites["v1"])


def test_rollback_goes_back_and_forth(sites, tmp_path, capsys):
    """make deploy ROLLBACK=1 (its scripts run over SSH as here: the deploys above cover that path)."""
    folder = tmp_path / "www"
    where = parse_target(str(folder), {})
    first = deploy(sites["v1"], where)
    second = deploy(sites["v2"], where)
    arguments = ["--target", str(folder), "--rollback"]
    assert main(arguments, {}) == 0
    assert f"current -> releases/{first.release}" in capsys.readouterr().out
    assert files(folder / "current") == files(sites["v1"])
    assert main(arguments, {}) == 0
    assert live(folder) == folder / "releases" / second.release


def test_rollback_needs_a_previous_release(sites, tmp_path, capsys):
    folder = tmp_path / "www"
    deploy(sites["v1"], parse_target(str(folder), {}))
    assert main(["--target", str(folder), "--rollback"], {}) == 1
    assert "no previous release to go back to" in capsys.readouterr().err
    assert files(folder / "current") == files(sites["v1"])


def test_old_releases_are_pruned(sites, tmp_path):
    folder = tmp_path / "www"
    where = parse_target(str(folder), {})
    reports = [deploy(sites[name], where, keep=3) for name in ("v1", "v2", "v3", "v1")]
    made = [report.release for report in reports]
    assert sorted(p.name for p in (folder / "releases").iterdir()) == made[1:]
    assert live(folder).name == made[3] and (folder / "previous").resolve().name == made[2]
    assert f"Old releases removed: {made[0]}." in reports[3].summary()


@pytest.mark.parametrize(("releases", "keep", "live", "pruned"), [
    (["a1", "a2", "a3", "a4"], 3, "a4", ["a2", "a1"]),
    (["a1", "a2", "a3", "a4"], 2, "a4", ["a3", "a2", "a1"]),
    (["a1", "a2", "a3"], 3, "a1", ["a2"]),  # after a rollback the live one is kept, whatever its age
    ([], 3, None, []),
])
def test_which_releases_are_pruned(releases, keep, live, pruned):
    assert to_prune(releases, keep, "a9", live) == pruned


def test_a_development_build_is_refused(site, tmp_path, capsys):
    """make build's output (pelicanconf.py) points at http://127.0.0.1: it must not go online."""
    assert main(["--output", str(site), "--target", str(tmp_path / "www")], {}) == 1
    error = capsys.readouterr().err
    assert "built with pelicanconf.py" in error and "make publish" in error
    assert not (tmp_path / "www").exists()


@pytest.mark.parametrize(("arguments", "environ", "message"), [
    ([], {}, "DEPLOY_TARGET is not set"),
    ([], {"DEPLOY_TARGET": "  "}, "DEPLOY_TARGET is not set"),
    (["--output", "/nonexistent/output"], {"DEPLOY_TARGET": "/tmp/x"}, "/nonexistent/output does not exist"),
    ([], {"DEPLOY_TARGET": "ssh://blog.example.fr"}, "expected ssh://user@host[:port]/path"),
    ([], {"DEPLOY_TARGET": "ssh://blog.example.fr:ssh/srv"}, "the port is not a number"),
    ([], {"DEPLOY_TARGET": "blog.example.fr::module"}, "rsync daemon targets"),
    ([], {"DEPLOY_TARGET": "s3://bucket/blog"}, "only ssh:// URLs"),
    ([], {"DEPLOY_TARGET": "deploy@blog.example.fr:"}, "the folder is missing"),
    ([], {"DEPLOY_TARGET": "-oProxyCommand=touch:/srv"}, "is not a host name"),
    ([], {"DEPLOY_TARGET": "deploy@h:/srv", "DEPLOY_SSH_PORT": "99999"}, "DEPLOY_SSH_PORT=99999: not a port"),
    ([], {"DEPLOY_TARGET": "ssh://deploy@h:2222/srv", "DEPLOY_SSH_PORT": "22"}, "keep one"),
    ([], {"DEPLOY_TARGET": "deploy@h:/srv", "DEPLOY_SSH_KEY": "/nonexistent/key"}, "DEPLOY_SSH_KEY=/nonexistent/key"),
])
def test_bad_settings_are_refused_with_their_name(arguments, environ, message, capsys):
    assert main(arguments, environ) == 1
    assert message in capsys.readouterr().err


def test_a_site_built_for_another_address_is_refused(sites, tmp_path, capsys):
    arguments = ["--output", str(sites["v1"]), "--target", str(tmp_path / "www")]
    assert main(arguments, {"SITEURL": "https://ailleurs.example.fr"}) == 1
    assert "built for https://blog.example.fr but SITEURL is https://ailleurs.example.fr" in capsys.readouterr().err


def unreachable_cases(sshd, tmp_path):
    closed = sshd.env() | {"DEPLOY_SSH_PORT": str(free_port())}  # nothing listens there
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    return [
        (closed, "Connection refused"),
        (sshd.env() | {"DEPLOY_SSH_KNOWN_HOSTS": str(empty)}, "host key is not in"),
        (sshd.env(stranger), "Permission denied"),
    ]


def test_an_unreachable_server_is_named_with_the_reason(sites, sshd, tmp_path, capsys):
    for environ, reason in unreachable_cases(sshd, tmp_path):
        arguments = ["--output", str(sites["v1"]), "--target", sshd.target(tmp_path / "srv")]
        assert main(arguments, environ) == 1
        error = capsys.readouterr().err
        assert "cannot reach 127.0.0.1 over SSH" in error and reason in error, error
    assert not (tmp_path / "srv").exists()


def test_a_document_root_that_is_a_folder_is_not_replaced(sites, tmp_path):
    """A target whose `current` is a real folder (an old upload): refused, and left alone."""
    folder = tmp_path / "www"
    where = parse_target(str(folder), {})
    (folder / "current").mkdir(parents=True)
    (folder / "current" / "index.html").write_text("ancien site")
    with pytest.raises(DeployError, match="current is not a symbolic link"):
        deploy(sites["v1"], where)
    assert (folder / "current" / "index.html").read_text() == "ancien site"


def test_make_deploy_refuses_without_a_target():
    """The command behind `make deploy` (invoke deploy) exits non-zero with the message."""
    env = {k: v for k, v in os.environ.items() if k != "DEPLOY_TARGET"}
    result = subprocess.run([sys.executable, "-m", "invoke", "deploy"], cwd=ROOT, capture_output=True, text=True,
                            env=env)
    assert result.returncode == 1
    assert "DEPLOY_TARGET is not set" in result.stderr


# -- deploy/: nginx serving the live release ------------------------------------------------

def test_nginx_serves_the_live_release_and_proxies_the_service(sites, tmp_path):
    """deploy/nginx.conf on loopback: pages, the 404 page, the service, and each deploy live at once.
    (tests/test_nginx_instances.py runs it in front of two service instances.)"""
    import httpx

    from newsletter.app import create_app
    from newsletter.config import Config
    from newsletter.serving import serve_in_thread

    folder = tmp_path / "srv"
    where = parse_target(str(folder), {})
    deploy(sites["v1"], where)
    config = Config(public_url=SITEURL, newsletter_url=f"{SITEURL}/newsletter", mail_from="égoBlog <lettre@exemple.fr>",
                    reply_to="francois@exemple.fr", site_name="égoBlog", db=str(tmp_path / "abonnes.sqlite3"),
                    outbox=tmp_path / "outbox", secrets=["deploy-tests-secret-0123456789abcdef"])
    with serve_in_thread(create_app(config)) as service, \
            running_nginx(tmp_path / "nginx", folder / "current", [service.removeprefix("http://")]) as server, \
            httpx.Client(base_url=server.https, verify=server.tls()) as http:
        home = http.get("/")
        assert home.status_code == 200 and "égoBlog" in home.text
        assert home.headers["content-security-policy"].startswith("default-src 'self'")
        assert "Une phrase ajoutée" not in http.get(f"/{EDITED_PAGE}").text
        lost = http.get("/pas-une-page/")
        assert lost.status_code == 404 and "Page introuvable" in lost.text
        assert http.get("/newsletter/verifiez/").status_code == 200  # a static page of the signup flow
        refused = http.get("/newsletter/confirmer/pas-un-jeton")  # the service answers, through nginx
        assert refused.status_code == 400 and "Lien de confirmation" in refused.text
        assert len(refused.headers.get_list("content-security-policy")) == 1
        deploy(sites["v2"], where)
        assert "Une phrase ajoutée" in http.get(f"/{EDITED_PAGE}").text  # live at the next request
        deploy(sites["v3"], where)
        assert http.get(f"/{DELETED_PAGE}").status_code == 404


def test_the_nginx_file_passes_nginx_t(tmp_path):
    """deploy/nginx.conf as shipped (both server blocks, IPv6 listeners included), its certificate made
    for the test: only the files' paths change."""
    cert, key = self_signed(tmp_path)
    site = NGINX_CONF.read_text(encoding="utf-8")
    for old, new in ((CERT, str(cert)), (KEY, str(key)), (LOG, str(tmp_path / "error.log"))):
        assert old in site
        site = site.replace(old, new)
    checked = nginx(nginx_binary(), wrap(tmp_path, site), "-t")
    assert checked.returncode == 0, checked.stderr
