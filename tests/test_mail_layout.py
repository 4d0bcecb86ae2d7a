"""The mails hold together on a phone: in Chromium at 320, 375 and 600 px, light and dark, images on
and off, a post with a long URL, a long code line, a long word, a wide table and images (one local, one
remote and wide) keeps the page within the viewport, and the unsubscribe link in view. The same for the
confirmation and welcome mails. Local images carry their real width and height, scaled to the column."""
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from newsletter.config import Config
from newsletter.confirmation import ConfirmationMail
from newsletter.links import unsubscribe_url
from newsletter.mail_message import build_mail, load_posts
from newsletter.pages import mail_environment
from newsletter.signing import Signer
from newsletter.welcome import WelcomeMail
from tests.conftest import build
from tests.fixtures.mail.support import CONTENT, environ, write_settings
from tests.test_html_valid import vnu

READER = "lectrice@example.org"
LONG_URL = "https://example.org/archives/" + "0123456789abcdef" * 16 + "?source=lettre&id=" + "9" * 40
LONG_WORD = "anticonstitutionnellement" * 6
LONG_CODE = "resultat = " + " + ".join(f"valeur_numero_{n}" for n in range(20))
WIDE_TABLE = ("| " + " | ".join(f"Colonne {n}" for n in range(12)) + " |\n"
              + "|" + "---|" * 12 + "\n"
              + "| " + " | ".join(f"donnée-{n}-large" for n in range(12)) + " |\n")
POST = f"""Title: Une mise en page qui résiste
Date: 2020-05-06 10:00
Category: Essais
Slug: mise-en-page
Summary: Des contenus trop larges pour un téléphone.

Un lien trop long : <{LONG_URL}>. Et [un lien dans le texte]({LONG_URL}).

Un mot trop long : {LONG_WORD}.

    {LONG_CODE}

Du code dans la ligne : `{LONG_CODE.replace(" ", "")}`.

{WIDE_TABLE}
![Une grande photo locale](/images/grande.png)

![Une photo distante](https://images.example.org/large.png)

Fin du billet.
"""
WIDTHS = (320, 375, 600)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("layout")
    content = folder / "content"
    shutil.copytree(CONTENT, content)
    Image.new("RGB", (1200, 800), "#4a7").save(content / "images" / "grande.png")
    Image.new("RGB", (1600, 400), "#a47").save(folder / "distante.png")
    (content / "posts" / "mise-en-page.md").write_text(POST, encoding="utf-8")
    build(content, folder / "output", settings=str(write_settings(folder, content)))
    return folder


@pytest.fixture(scope="module")
def config(built):
    return Config.from_env(environ=environ(built))


@pytest.fixture(scope="module")
def mails(config):
    """The HTML of each mail as its reader gets it."""
    signer = Signer(config.secrets)
    env = mail_environment(config)
    link = unsubscribe_url(config, signer, READER)
    post, _ = build_mail(config, load_posts(config, ["mise-en-page"])).sample(link)
    digest, _ = build_mail(config, load_posts(config, ["mise-en-page", "lettre-test"])).sample(link)
    return {
        "billet": post,
        "sommaire": digest,
        "confirmation": ConfirmationMail(config, signer, env).message(READER)[0].get_payload()[1]
        .get_payload(decode=True).decode("utf-8"),
        "bienvenue": WelcomeMail(config, signer, env).message(READER)[0].get_payload()[1]
        .get_payload(decode=True).decode("utf-8"),
    }


def images(built: Path, on: bool):
    """A route handler: images served from the test's files (on), or refused (off); nothing else leaves."""
    files = {"/images/grande.png": built / "output" / "images" / "grande.png",
             "/images/graphique.png": built / "output" / "images" / "graphique.png",
             "/large.png": built / "distante.png", "/photo.jpg": built / "distante.png"}

    def handle(route):
        path = "/" + route.request.url.split("/", 3)[3]
        if on and path in files:
            return route.fulfill(path=str(files[path]), content_type="image/png")
        return route.abort()
    return handle


@pytest.fixture(scope="module")
def context(browser):
    context = browser.new_context(locale="fr-FR")
    yield context
    context.close()


UNSUBSCRIBE_LINK = "a[href*='/newsletter/desinscription/']"


def layout_problems(page, html: str, unsubscribe: bool = True) -> list[str]:
    """What a reader would notice, at each width and colour scheme: a page wider than the screen, an
    unsubscribe link out of view once scrolled to the bottom."""
    page.set_content(html, wait_until="load")
    problems = []
    for width in WIDTHS:
        for scheme in ("light", "dark"):
            page.set_viewport_size({"width": width, "height": 700})
            page.emulate_media(color_scheme=scheme)
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            if scroll_width > width:
                problems.append(f"{width}px {scheme}: the page is {scroll_width}px wide")
            if not unsubscribe:
                continue
            page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
            link = page.locator(UNSUBSCRIBE_LINK).last
            inside = page.evaluate("""(a) => {const r = a.getBoundingClientRect();
                return r.width > 0 && r.left >= 0 && r.right <= innerWidth && r.top >= 0 && r.bottom <= innerHeight}""",
                                   link.element_handle())
            if not (link.is_visible() and inside):
                problems.append(f"{width}px {scheme}: the unsubscribe link is out of view ({link.bounding_box()})")
    return problems


@pytest.mark.parametrize("name", ["billet", "sommaire", "confirmation", "bienvenue"])
@pytest.mark.parametrize("on", [True, False], ids=["images", "sans-images"])
def test_the_mail_fits_the_screen_and_keeps_its_footer_in_view(context, built, mails, name, on):
    page = context.new_page()
    try:
        page.route("**/*", images(built, on))
        # The confirmation mail comes before consent: nothing to unsubscribe from yet.
        assert not (problems := layout_problems(page, mails[name], unsubscribe=name != "confirmation")), problems
        if on and name == "billet":
            shown = page.evaluate("[...document.images].map(i => [i.naturalWidth, i.getBoundingClientRect().width])")
            assert len(shown) == 2 and all(natural > 0 for natural, _ in shown), shown  # the images did load
        if name == "billet":  # the table keeps its columns and scrolls in its own box (the page is 600 px now)
            page.set_viewport_size({"width": 320, "height": 700})
            box = page.evaluate("(d => [d.scrollWidth, d.clientWidth])(document.querySelector('.table-scroll'))")
            assert box[0] > box[1] and box[1] <= 320, box
    finally:
        page.close()


def test_the_check_sees_a_mail_that_does_not_fit(context):
    """A code line that does not wrap, in a fixed 600 px column, with the link at its right edge."""
    broken = ('<!DOCTYPE html><html lang="fr"><head><meta name="viewport" content="width=device-width">'
              '<title>x</title></head><body><table width="600"><tr><td><pre>' + LONG_CODE + '</pre>'
              '<p style="text-align:right"><a href="https://x/newsletter/desinscription/t">Se désinscrire</a></p>'
              '</td></tr></table></body></html>')
    page = context.new_page()
    try:
        problems = layout_problems(page, broken)
    finally:
        page.close()
    assert any("px wide" in p for p in problems) and any("out of view" in p for p in problems), problems


def test_local_images_carry_their_size_scaled_to_the_column(mails):
    html = mails["billet"]
    assert re.search(r'<img width="560" height="373" alt="Une grande photo locale" '
                     r'src="https://blog.example.fr/images/grande.png" style="max-width:100%;height:auto', html)
    remote = re.search(r'<img[^>]*src="https://images.example.org/large.png"[^>]*>', html).group(0)
    assert "width=" not in remote.replace("max-width", "") and "max-width:100%;height:auto" in remote
    assert html.count('<div class="table-scroll"') == 1


def test_an_image_of_the_column_width_or_less_keeps_its_own_size(config):
    html, _ = build_mail(config, load_posts(config, ["lettre-test"])).sample("https://x/d")
    with Image.open(CONTENT / "images" / "graphique.png") as image:
        width, height = image.size
    assert width <= 560
    assert f'<img width="{width}" height="{height}" alt="Un graphique des ventes"' in html


def test_the_reshaped_mails_are_valid_html(mails, tmp_path):
    for name in ("billet", "sommaire"):
        (tmp_path / f"{name}.html").write_text(mails[name], encoding="utf-8")
    # mso-hide is Outlook's own property, there on purpose (the preheader); any other error counts.
    errors = [m for m in vnu(tmp_path / "billet.html", tmp_path / "sommaire.html") if "“mso-" not in m["message"]]
    assert not errors, "\n".join(f"{m.get('url', '')}:{m.get('lastLine', '')}: {m['message']}" for m in errors)
