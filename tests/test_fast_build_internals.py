"""plugins/fast_build relies on a few Pelican internals, all named in pelican_internals.py: a Pelican that changes
one fails here, in CI, and a Pelican or a plugin the accelerator does not know makes it step aside, not guess."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

from fast_build import pelican_internals  # noqa: E402


@pytest.mark.parametrize("name", sorted(pelican_internals.MIRRORED))
def test_mirrored_pelican_code_is_the_code_the_accelerator_was_written_against(name):
    """A new digest means Pelican changed code fast_build copies or relies on: read the change, adapt the module
    pelican_internals' docstring names for it, then update MIRRORED (and TESTED_VERSIONS)."""
    assert pelican_internals.digest(name) == pelican_internals.MIRRORED[name], (
        f"Pelican changed {name}: see plugins/fast_build/pelican_internals.py")


def test_this_pelican_passes_the_run_time_checks():
    assert pelican_internals.problems() == []


def test_an_untested_pelican_is_refused(monkeypatch):
    import pelican

    monkeypatch.setattr(pelican, "__version__", "99.0.0")
    (problem,) = pelican_internals.problems()
    assert "Pelican 99.0.0 is not a version it was tested with" in problem


def build(content: Path, output: Path, cache: Path, plugins_path: Path, extra=()):
    """A Pelican build in its own process (plugins register signals per process), on the project's settings."""
    command = [sys.executable, "-m", "pelican", str(content), "-s", str(ROOT / "pelicanconf.py"), "-o", str(output),
               "--fatal", "errors", "-e", f'CACHE_PATH="{cache}"', f'MAIL_POSTS_PATH="{output}-mail"',
               f'PLUGIN_PATHS=["{ROOT / "plugins"}", "{plugins_path}"]', *extra]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_unknown_plugin_makes_the_accelerator_step_aside_with_one_warning(tmp_path):
    """A plugin the accelerator was not tested with (it rewrites every summary): the accelerator steps aside,
    says so once, and the build is Pelican's own."""
    plugin = tmp_path / "plugins" / "stamper"
    plugin.mkdir(parents=True)
    (plugin / "__init__.py").write_text(
        "from pelican import signals\n"
        "def stamp(content):\n"
        "    content.metadata['summary'] = f'Un titre de {len(content.title)} caractères'\n"
        "    content._summary = content.metadata['summary']\n"
        "def register():\n"
        "    signals.content_object_init.connect(stamp)\n", encoding="utf-8")
    plugins = ["content_checks", "french_typography", "theme_extras", "sitemap", "feeds", "mail_posts", "stamper",
               "fast_build"]
    setting = "PLUGINS=" + str(plugins).replace("'", '"')
    accelerated = build(ROOT / "content", tmp_path / "on", tmp_path / "cache", tmp_path / "plugins", [setting])
    build(ROOT / "content", tmp_path / "off", tmp_path / "cache-off", tmp_path / "plugins", [setting, "FAST_BUILD=false"])
    assert accelerated.count("building without the accelerator") == 1, accelerated
    assert "stamper" in accelerated
    assert tree(tmp_path / "on") == tree(tmp_path / "off")


def test_a_post_dated_in_the_future_goes_live_without_being_touched(tmp_path):
    """WITH_FUTURE_DATES = False: a post dated later is a draft now, and must be public after its date at the next
    build, with its file untouched. So the cache never keeps a post dated after the build time: every build
    reads it again, and the first one after its date publishes it."""
    import shutil

    content = tmp_path / "content"
    shutil.copytree(ROOT / "content", content)
    post = content / "posts" / "zz-programme.md"
    post.write_text("Title: Programmé\nDate: 2999-01-01 10:00\nCategory: Humeurs Marketing\nSlug: programme\n"
                    "Summary: Plus tard.\n\nUn billet programmé.\n", encoding="utf-8")
    extra = ["WITH_FUTURE_DATES=false"]
    build(content, tmp_path / "out", tmp_path / "cache", tmp_path, extra)
    assert not (tmp_path / "out" / "2999" / "01" / "programme" / "index.html").exists()
    assert not (tmp_path / "out" / "drafts").exists()  # a draft today, and drafts are written nowhere (publication)
    # What the cache keeps of the run: nothing for a post dated after the build time.
    import pickle

    (folder,) = [p for p in (tmp_path / "cache").iterdir() if (p / "FastBuild-ArticlesGenerator").is_file()]
    with open(folder / "FastBuild-ArticlesGenerator", "rb") as file:
        cached = pickle.load(file)
    assert str(post) not in cached and len(cached) >= 5


def test_on_an_untested_pelican_the_build_is_pelicans_own(tmp_path):
    """The version check at work in a real build: one warning, and the bytes of a FAST_BUILD = False build."""
    script = (
        "import sys, pelican\n"
        "pelican.__version__ = '99.0.0'\n"
        "from pelican.settings import read_settings\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"settings = read_settings({str(ROOT / 'pelicanconf.py')!r}, override=dict(\n"
        f"    OUTPUT_PATH={str(tmp_path / 'on')!r}, CACHE_PATH={str(tmp_path / 'cache')!r},\n"
        f"    MAIL_POSTS_PATH={str(tmp_path / 'on-mail')!r}))\n"
        "pelican.Pelican(settings).run()\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert output.count("building without the accelerator") == 1 and "Pelican 99.0.0" in output, output
    build(ROOT / "content", tmp_path / "off", tmp_path / "cache-off", tmp_path, ["FAST_BUILD=false"])
    assert tree(tmp_path / "on") == tree(tmp_path / "off")
    assert not list((tmp_path / "cache").rglob("FastBuild-*")), "the accelerator's cache was written"
