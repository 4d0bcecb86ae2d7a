"""make import-wordpress: WordPress exports (WXR) into posts, pages, images and redirects, and the site built from them.

Fixtures (tests/fixtures/wordpress/): constructs.xml holds every block-editor and classic-editor
construct, every status and post type we know of, comments, a UTF-8 byte-order mark and CDATA
split around "]]>"; seeds.xml is the five seeds as the old blog's WordPress (classic editor,
/%postname%/ permalinks) would have exported them; uploads/ is a copy of wp-content/uploads
with some files missing on purpose. Pelican's own test export, shipped inside the pinned
Pelican package, is a real export nobody here wrote.

The imported content is built by the project's real build (python -m sitebuild, as make build),
checked by the Nu HTML checker, and its redirects are served by a real nginx on 127.0.0.1.
"""
import hashlib
import http.client
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from blogcore.header import split_header
from tests.conftest import ROOT, missing
from tests.test_html_valid import vnu

FIXTURES = ROOT / "tests" / "fixtures" / "wordpress"
CONSTRUCTS = FIXTURES / "constructs.xml"
SEEDS = FIXTURES / "seeds.xml"
UPLOADS = FIXTURES / "uploads"
PELICAN_EXPORT = Path(__import__("pelican").__file__).parent / "tests" / "content" / "wordpressexport.xml"
SEED_POSTS = ["2009-08-infamie-du-fail", "2015-10-plan-paradise", "2015-11-le-cr-aime",
              "2017-01-fidele-par-anticipation", "2017-08-le-like-abondant"]

FORBIDDEN = re.compile(
    r"<!--\s*/?wp:|<!--\s*more|<!--\s*nextpage|\[/?(?:caption|wp_caption|gallery|embed|video|audio|playlist|code|"
    r"footnote|contact-form-7|toc|youtube)\b|wp-block-|wp-image-\d|wp-element|\balign(?:center|left|right|none)\b|"
    r"\bsize-(?:large|medium|full|thumbnail)\b|\bclass=|\bstyle=|&nbsp;|\u00a0|<p>|</p>|<iframe|<script|"
    r"javascript:|<span|<div")


# -- helpers ------------------------------------------------------------------------------------------------

def run_import(*args, content: Path, check=True):
    """`make import-wordpress`'s command (python -m wpimport) on a content folder."""
    result = subprocess.run([sys.executable, "-m", "wpimport", *map(str, args), "--content", str(content)],
                            cwd=ROOT, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, f"import failed:\n{result.stdout}\n{result.stderr}"
    return result


def build(content: Path, output: Path) -> subprocess.CompletedProcess:
    """`make build`'s command, staged as the author's builds are."""
    result = subprocess.run([sys.executable, "-m", "sitebuild", "--content", str(content), "--output", str(output),
                             "-e", f'CACHE_PATH="{output.parent / "cache"}"',
                             f'MAIL_POSTS_PATH="{output.parent / "mail"}"'],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"build failed:\n{result.stdout}\n{result.stderr}"
    return result


def header(path: Path) -> dict:
    parsed, _ = split_header(path.read_text(encoding="utf-8"))
    return {entry.key: entry.value for entry in parsed.entries}


def body(path: Path) -> str:
    return split_header(path.read_text(encoding="utf-8"))[1]


def digest(folder: Path) -> str:
    sha = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        sha.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()


def content_copy(tmp: Path, without_seed_posts=False) -> Path:
    content = tmp / "content"
    shutil.copytree(ROOT / "content", content)
    if without_seed_posts:
        for name in SEED_POSTS:
            (content / "posts" / f"{name}.md").unlink()
    return content


def redirect_rows(content: Path) -> list[tuple[str, str]]:
    lines = (content / "redirects.csv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "old,new"
    import csv
    return [tuple(row) for row in csv.reader(lines[1:])]


def served_file(output: Path, url_path: str) -> Path:
    """The file a static server sends for a path of the site."""
    path = unquote(urlsplit(url_path).path)
    target = output / path.lstrip("/")
    return target / "index.html" if path.endswith("/") or target.is_dir() else target


def refresh_target(page: Path) -> str:
    found = re.search(r'<meta http-equiv="refresh" content="0; url=([^"]+)">', page.read_text(encoding="utf-8"))
    assert found, f"{page} is not a redirect page"
    return found[1]


# -- fixtures: one import and one build per export, for the module ------------------------------------------

@pytest.fixture(scope="module")
def constructs(tmp_path_factory):
    """constructs.xml imported into a copy of the project's content, with UPLOADS."""
    work = tmp_path_factory.mktemp("constructs")
    content = content_copy(work, without_seed_posts=True)  # a smaller site to build and check
    started = time.perf_counter()
    result = run_import(CONSTRUCTS, "--uploads", UPLOADS, content=content)
    return content, result.stdout, time.perf_counter() - started


@pytest.fixture(scope="module")
def constructs_site(constructs):
    content, _, _ = constructs
    output = content.parent / "output"
    result = build(content, output)
    return output, " ".join((result.stdout + result.stderr).split())


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """seeds.xml imported in place of the five hand-made posts, and built."""
    work = tmp_path_factory.mktemp("seeds")
    content = content_copy(work, without_seed_posts=True)
    run_import(SEEDS, "--uploads", UPLOADS, content=content)
    output = work / "output"
    build(content, output)
    return content, output


@pytest.fixture(scope="module")
def pelican_export(tmp_path_factory):
    """The WordPress export Pelican's own tests use (written by others, shipped in the pinned package), built."""
    if not PELICAN_EXPORT.is_file():
        pytest.fail(f"{PELICAN_EXPORT} is not in the installed Pelican")
    work = tmp_path_factory.mktemp("pelican-export")
    content = content_copy(work, without_seed_posts=True)
    result = run_import(PELICAN_EXPORT, content=content)
    output = work / "output"
    build(content, output)
    return content, output, result.stdout


# -- what is written ---------------------------------------------------------------------------------------

def test_posts_and_pages_are_written_with_the_projects_header(constructs):
    content, _, _ = constructs
    posts, pages = content / "posts", content / "pages"
    assert header(posts / "2019-05-tous-les-blocs.md") == {
        "Title": "Tous les blocs de l’éditeur", "Date": "2019-05-12 09:30", "Modified": "2019-06-01 10:00",
        "Category": "Humeurs Marketing", "Tags": "éthique.biz, CRM, e-réputation", "Author": "François",
        "Slug": "tous-les-blocs",
        "Summary": "Un inventaire des blocs : paragraphes, titres, listes, citations & images."}
    assert header(posts / "2015-11-editeur-classique.md") == {
        "Title": "L’éditeur classique, ses paragraphes et ses shortcodes", "Date": "2015-11-15 09:00",
        "Category": "Relation client", "Tags": "fidélité, réseaux sociaux", "Author": "François",
        "Slug": "editeur-classique"}
    assert header(posts / "2016-03-balises-html.md")["Title"] == "Balises &lt;html&gt; & entités"
    assert header(posts / "2020-08-été-indien.md")["Slug"] == "été-indien"
    assert header(posts / "2020-08-été-indien.md")["Category"] == "Données & vie privée"
    draft = header(posts / "2021-02-brouillon-en-cours.md")
    assert draft["Status"] == "draft" and draft["Slug"] == "brouillon-en-cours"  # no slug in the export
    assert header(posts / "2021-02-en-relecture.md")["Status"] == "draft"  # pending review
    scheduled = header(posts / "2031-01-billet-programme.md")
    assert scheduled["Date"] == "2031-01-15 08:00" and "Status" not in scheduled
    assert header(pages / "a-propos-ancien.md") == {"Title": "À propos de l’ancien blog", "Slug": "a-propos-ancien",
                                                     "Summary": "L’histoire de l’ancien blog."}
    assert header(pages / "contact.md") == {"Title": "Contact", "Slug": "contact"}
    assert header(pages / "archives-2.md")["Slug"] == "archives-2"  # /archives/ is the site's archive page
    assert header(pages / "page-en-brouillon.md")["Status"] == "draft"
    assert header(pages / "newsletter-2.md")["Slug"] == "newsletter-2"  # /newsletter/ is the signup service
    written = {p.relative_to(content).as_posix() for p in content.rglob("*.md")} - {
        p.relative_to(ROOT / "content").as_posix() for p in (ROOT / "content").rglob("*.md")}
    assert written == {
        "posts/2019-05-tous-les-blocs.md", "posts/2015-11-editeur-classique.md", "posts/2016-03-balises-html.md",
        "posts/2020-08-été-indien.md", "posts/2016-04-balisage-html.md", "posts/2021-02-brouillon-en-cours.md", "posts/2021-02-en-relecture.md",
        "posts/2031-01-billet-programme.md", "pages/a-propos-ancien.md", "pages/contact.md", "pages/archives-2.md",
        "pages/page-en-brouillon.md", "pages/newsletter-2.md"}


def test_what_was_not_public_is_not_imported(constructs):
    content, _, _ = constructs
    everything = "\n".join(p.read_text(encoding="utf-8") for p in content.rglob("*.md"))
    for secret in ("dans des cookies", "Ce que personne ne doit lire", "Un texte protégé par un mot de passe", "Jeté.",
                   "Une ancienne version", "Un mug", "vous vendez des mugs", "Bravo pour l’inventaire", "Premier !"):
        assert secret not in everything


@pytest.mark.parametrize("name", ["posts/2019-05-tous-les-blocs.md", "posts/2015-11-editeur-classique.md",
                                  "posts/2016-03-balises-html.md", "posts/2020-08-été-indien.md",
                                  "posts/2016-04-balisage-html.md", "pages/a-propos-ancien.md", "pages/contact.md"])
def test_no_wordpress_leftovers_in_the_markdown(constructs, name):
    text = body(constructs[0] / name)
    leftovers = [m[0] for m in FORBIDDEN.finditer(text)]
    assert not leftovers, leftovers
    assert "\n\n\n" not in text and not re.search(r"\n[ \t]+\n", text), "empty paragraphs left"


def test_block_editor_constructs_become_markdown(constructs):
    text = body(constructs[0] / "posts" / "2019-05-tous-les-blocs.md")
    expected = [
        "Un paragraphe avec du **gras**, de l’*italique*, un [lien vers un autre billet]"
        "({filename}/posts/2015-11-editeur-classique.md), un [lien par identifiant]({filename}/posts/2020-08-été-indien.md),"
        " du `code` et une note[^1] !",
        "## Les listes", "- Premier point\n- Deuxième point, avec une sous-liste\n    1. sous-point un\n"
        "    2. sous-point deux", "<!-- -->\n\n3. troisième\n4. quatrième",  # a list after a list stays apart
        "### Citations", "> Le client n’est pas roi : il est otage.\n>\n> — Un client excédé",
        "> Dialoguer. Humaniser. Souvent ça calme.\n>\n> — François",
        '<figure><a href="{static}/images/2019/05/vitrine.png"><img src="{static}/images/2019/05/vitrine.png" '
        'alt="Une vitrine"></a><figcaption>Une vitrine, <em>un soir</em> de soldes</figcaption></figure>',
        "![Une image perdue](/images/2019/05/absente.png)",
        '<figure><img src="{static}/images/2019/05/galerie-1.png" alt="Galerie, première">'
        "<figcaption>Première image</figcaption></figure>",
        "![Galerie, seconde]({static}/images/2019/05/galerie-2.png)", "*Une galerie de deux images*",
        "[Une vidéo](https://www.youtube.com/watch?v=dQw4w9WgXcQ)",
        "Twitter : <https://twitter.com/egoblog/status/1234567890>",
        '```python\nif prix < 10 and stock > 0:\n    print("Soldes & promotions")\n```',
        "```\nTexte   préformaté\n    avec ses espaces\n```",
        "Le client est roi,  \nla marque est sa proie.",
        "| Canal | Usage |\n| --- | --- |\n| E-mail | Lettre \\| relances |\n| Réseaux | **Dialogue** |",
        "*Les canaux*", "\n---\n", "[En savoir plus]({filename}/pages/a-propos-ancien.md)",
        "Colonne de gauche.\n\nColonne de droite.", "Un groupe centré.", "Texte sur l’image",
        "[Le document]({static}/images/2019/05/document.pdf)",
        '<video controls src="{static}/images/2019/05/clip.mp4">',
        "Son : <https://podcasts.example.org/episode-12.mp3>", "**Pour aller plus loin**\n\nLe détail caché.",
        "Google : <https://www.google.com/maps/embed?pb=!1m18!1m12>",
        "Abonnez-vous à la lettre !",  # the reusable block, inlined
        "\\#hashtag en début de paragraphe, et 1984. Une année. 😉 Une image d’ailleurs : "
        "[Un chat](https://images.example.com/chat.jpg)",
        "Seconde page du billet, avec <del>une rature</del> et un surlignage.",
        "[^1]: Une note de bas de page, avec un [lien](https://www.cnil.fr/).",
    ]
    missing_parts = [part for part in expected if part not in text]
    assert not missing_parts, f"{missing_parts}\n---\n{text}"


def test_classic_editor_constructs_become_markdown(constructs):
    text = body(constructs[0] / "posts" / "2015-11-editeur-classique.md")
    expected = [
        "Le premier paragraphe de l’éditeur classique, avec un retour  \nà la ligne simple et un "
        "[lien vers le billet des blocs]({filename}/posts/2019-05-tous-les-blocs.md).\n\n"
        "Un deuxième paragraphe, après un paragraphe vide.\n\n## Un titre de niveau deux",
        "- un point\n    - un sous-point\n- un autre point", "1. d’abord\n2. ensuite",
        "> Une citation de l’éditeur classique.",
        '<figure><a href="{static}/images/2019/05/vitrine.png"><img src="{static}/images/2019/05/vitrine.png" '
        'alt="Une légende avec un lien"></a><figcaption>Une légende avec un <a href="https://www.cnil.fr/">lien</a>'
        "</figcaption></figure>",
        '<figure><img src="{static}/images/2019/05/galerie-1.png" alt="Miniature"><figcaption>Une légende à '
        "l'ancienne</figcaption></figure>",
        '<figure><img src="{static}/images/2019/05/galerie-1.png" alt="Galerie, première"><figcaption>'
        "Première image de la galerie</figcaption></figure>\n\n![galerie-2]({static}/images/2019/05/galerie-2.png)",
        "YouTube : <https://www.youtube.com/watch?v=abcdefghijk>",
        "Vimeo : <https://vimeo.com/76979871>",  # the bare URL WordPress embedded, and the iframe
        '<video controls src="{static}/images/2019/05/clip.mp4">', '<audio controls src="/images/2019/05/son.mp3">',
        "- [Un court extrait]({static}/images/2019/05/clip.mp4)",  # [playlist]
        "YouTube : <https://www.youtube.com/watch?v=zyxwvutsrqp>",  # Jetpack's [youtube]
        '```php\n<?php echo "Bonjour & bienvenue"; ?>\n```',
        "Une phrase avec une note[^1] et un mot [sic] entre crochets.",
        "\\- Un tiret qui n’est pas une liste.", "1\\. Pas une liste non plus.",
        "Texte centré en rouge", "Une boîte alignée à droite",
        "![Été]({static}/images/2019/05/été.png)Un paragraphe qui commence par une image au chemin relatif.",
        "| Case 1 | Case 2 |\n| --- | --- |\n| Case 3 | Case 4 |",
        "```\nligne 1\nligne 2\n    ligne indentée\n```",
        "Voir la rubrique [Humeurs Marketing]({category}Humeurs Marketing) et l'étiquette [CRM]({tag}CRM), ou "
        "[le document]({static}/images/2019/05/document.pdf).",
        "> Un tweet cité\n>\n> — égoBlog (@egoblog) [1 mai 2019](https://twitter.com/egoblog/status/1)",
        "Un lien piégé désarmé.", "[^1]: Le texte de la note, en *italique*.",
    ]
    missing_parts = [part for part in expected if part not in text]
    assert not missing_parts, f"{missing_parts}\n---\n{text}"


def test_html_tags_of_the_classic_editor(constructs):
    path = constructs[0] / "posts" / "2016-04-balisage-html.md"
    assert header(path)["Author"] == "Invitée spéciale"
    text = body(path)
    expected = [
        "**Titres**\n\n## Titre un\n\n### Titre quatre\n\n#### Titre six",  # from h2, no level skipped
        "> La **relation client** (*ou `<relation>`*) est l’ensemble des interactions.",
        "Plusieurs contributeurs - Wikipédia",  # a dash inside a line is not escaped
        "| Client | Panier | |\n| --- | --- | --- |\n| [Jeanne](https://example.org/) | 1 € | Parce que c’est tout. |"
        "\n| Total | 1 € | |\n\n",  # the footer row joins the body, under the one header
        "Fidélité\n: Le fait de revenir.\n\nChurn\n: Le fait de partir.  \n    Sur deux lignes.",
        "- Niveau un\n    1. Niveau deux\n        - Niveau trois\n    2. Niveau deux, bis\n- Niveau un, bis",
        "1, rue du Commerce  \n75015 Paris  \nFrance",
        "L’abréviation GRC, l’acronyme PLV, un gros mot, inséré, souligné, `Ctrl+C`, x, télétype, H<sub>2</sub>O "
        "et E = MC<sup>2</sup>, « Le client est roi » --Anonyme, barré.",
        "```\nUn poète\n  Deux chemins divergeaient\n    dans un bois jaune.\n```",
    ]
    missing_parts = [part for part in expected if part not in text]
    assert not missing_parts, f"{missing_parts}\n---\n{text}"


def test_entities_cdata_and_accents(constructs):
    text = body(constructs[0] / "posts" / "2016-03-balises-html.md")
    assert text == ("« Des guillemets », des points de suspension… et l’apostrophe. Le mot été, AT&T, et le texte "
                    "&lt;script> affiché. Le texte &amp;nbsp; écrit tel quel. Une étoile \\*seule\\* et un "
                    "tiret\\_bas. 5 000 euros.\n\nLe texte « ]]> » survit à la fin des CDATA.\n")


def test_summary_lists_what_was_imported_skipped_and_missing(constructs):
    _, summary, _ = constructs
    for line in [
        "posts: 8 in", "(5 published, 2 drafts, 1 scheduled)", "pages: 5 in",
        "« Billet programmé » on 2031-01-15 08:00",
        "« Notes privées » (line 698): private", "« Réservé aux abonnés » (line 723): protected by a password",
        "« Mug égoBlog » (line 1355): post type 'product'", "7 attachments", "2 menu items", "1 revisions",
        "1 trashed items", "1 auto-drafts", "comments: 3 not imported",
        "images and files: 8 used, 6 copied", "(3 resized copies replaced by their original)",
        "2019/05/absente.png (in « Tous les blocs de l’éditeur »)",
        "2019/05/son.mp3 (in « L’éditeur classique, ses paragraphes et ses shortcodes »)",
        "redirects: 33 old addresses", "shortcode [contact-form-7] removed",
        "dynamic block wp:latest-posts dropped", "image from another site turned into a link",
        "slug 'archives' already used: 'archives-2'", "slug 'newsletter' already used: 'newsletter-2'",
        "« Politique de confidentialité » (line 922): WordPress's privacy policy",
    ]:
        assert line in summary, f"{line!r} not in:\n{summary}"


def test_uploads_are_copied_and_missing_ones_are_not_invented(constructs):
    images = constructs[0] / "images"
    copied = sorted(p.relative_to(images).as_posix() for p in images.rglob("*") if p.is_file())
    assert copied == ["2019/05/clip.mp4", "2019/05/document.pdf", "2019/05/galerie-1.png", "2019/05/galerie-2.png",
                      "2019/05/vitrine.png", "2019/05/été.png"]
    for name in copied:
        assert (images / name).read_bytes() == (UPLOADS / name).read_bytes()


# -- the site built from it -------------------------------------------------------------------------------

CONSTRUCT_PAGES = ["2019/05/tous-les-blocs/", "2015/11/editeur-classique/", "2016/03/balises-html/",
                   "2016/04/balisage-html/",
                   "2020/08/été-indien/", "a-propos-ancien/", "contact/", "archives-2/"]
CONSTRUCT_TERMS = ["categorie/humeurs-marketing/", "categorie/relation-client/", "categorie/non-classe/",
                   "categorie/donnees-vie-privee/", "etiquette/ethiquebiz/", "etiquette/crm/",
                   "etiquette/e-reputation/", "etiquette/fidelite/", "etiquette/reseaux-sociaux/"]


@pytest.mark.parametrize("url", CONSTRUCT_PAGES + CONSTRUCT_TERMS)
def test_every_published_post_page_category_and_tag_is_built(constructs_site, url):
    output, _ = constructs_site
    assert served_file(output, "/" + url).is_file(), url


def test_drafts_have_no_public_page(constructs_site):
    output, _ = constructs_site
    assert not served_file(output, "/2021/02/brouillon-en-cours/").exists()
    assert not served_file(output, "/page-en-brouillon/").exists()


def test_images_are_in_the_site_and_linked(constructs_site):
    output, _ = constructs_site
    page = served_file(output, "/2019/05/tous-les-blocs/").read_text(encoding="utf-8")
    assert '<img src="/images/2019/05/vitrine.png" alt="Une vitrine">' in page
    assert (output / "images" / "2019" / "05" / "vitrine.png").is_file()
    assert "images.example.com/chat.jpg" not in re.findall(r'src="([^"]+)"', page), "a third-party image loads"
    assert not re.search(r'<(?:img|iframe|video|audio|script)[^>]+src="https?://', page)


def test_every_old_address_leads_to_its_new_page(constructs, constructs_site):
    """Each old path has a redirect page (or is the new page itself); each address with a query is in the map."""
    content, _, _ = constructs
    output, log = constructs_site
    rows = redirect_rows(content)
    nginx_map = (output / "redirects.nginx.map").read_text(encoding="utf-8")
    for old, new in rows:
        if old == "/archives/":  # the site's own archive page: it stays, with a warning
            assert "/archives/ is a page of this site" in " ".join(log.split())
            assert f'"{old}"' not in nginx_map
            continue
        if new.endswith("billet-programme.md"):
            continue  # scheduled: its page exists only once its date has passed
        page = served_file(output, old)
        if "?" not in old and page.is_file() and "déménagé" not in page.read_text(encoding="utf-8"):
            continue  # the page kept its address (/a-propos-ancien/): nothing to redirect
        assert re.search(rf'^"{re.escape(old)}" "(/[^"]*)";$', nginx_map, re.M), f"{old} not in the nginx map"
        if "?" in old:
            continue
        assert page.is_file(), f"no page at {old}"
        target = refresh_target(page)
        assert served_file(output, target).is_file(), f"{old} leads to {target}, which is not in the site"
        text = page.read_text(encoding="utf-8")
        assert '<link rel="canonical" href="http://127.0.0.1:8000' + target + '">' in text
        assert "Cette page a déménagé\u202f:" in text and '<meta name="robots" content="noindex">' in text
    assert refresh_target(served_file(output, "/2019/05/12/tous-les-blocs/")) == "/2019/05/tous-les-blocs/"
    assert refresh_target(served_file(output, "/category/humeurs-marketing/relation-client/")) == \
        "/categorie/relation-client/"
    assert refresh_target(served_file(output, "/category/ethique-biz/")) == "/etiquette/ethiquebiz/"
    assert refresh_target(served_file(output, "/feed/")) == "/atom.xml"
    assert '"/?p=13" "/2020/08/%C3%A9t%C3%A9-indien/";' in nginx_map


def test_sites_built_from_imports_are_valid_html(constructs_site, pelican_export):
    """The site of every construct, and of an export written by others (the seeds' posts are the project's own)."""
    folders = [constructs_site[0], pelican_export[1]]
    errors = vnu("--skip-non-html", *folders)
    assert not errors, "\n".join(f"{m.get('url', '')}:{m.get('lastLine', '')}: {m['message']}" for m in errors)


def test_redirect_pages_keep_their_time_when_nothing_changed(seeds):
    """A rebuild rewrites nothing that did not change: a deploy comparing times sends no redirect page again."""
    content, output = seeds
    page, nginx_map = served_file(output, "/le-cr-aime/"), output / "redirects.nginx.map"
    before = page.stat().st_mtime_ns, nginx_map.stat().st_mtime_ns
    build(content, output)
    assert (page.stat().st_mtime_ns, nginx_map.stat().st_mtime_ns) == before


def test_a_redirect_to_nothing_warns_and_a_malformed_line_stops_the_build(tmp_path):
    content = content_copy(tmp_path)
    (content / "redirects.csv").write_text("old,new\n/ancien/,{filename}/posts/disparu.md\n"
                                           "/cr/,{filename}/posts/2015-11-le-cr-aime.md\n", encoding="utf-8")
    output = tmp_path / "output"
    result = build(content, output)
    log = " ".join((result.stdout + result.stderr).split())
    assert "is not in this build (a draft, a removed post, a typo?): /ancien/ not redirected" in log, log
    assert not (output / "ancien").exists()
    assert refresh_target(output / "cr" / "index.html") == "/2015/11/le-cr-aime/"
    (content / "redirects.csv").write_text("old,new\nsans-barre,{index}\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "sitebuild", "--content", str(content), "--output", str(output)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "redirects.csv:2: expected `old,new`" in result.stderr


# -- nginx serves the map ------------------------------------------------------------------------------------

def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)
    if not found:
        missing("`nginx` not found (apt-get install nginx; .ci/run installs it)")
    return found


@pytest.fixture(scope="module")
def nginx(constructs_site, tmp_path_factory):
    """A real nginx on 127.0.0.1 serving the built site with redirects.nginx.map, as the README says to."""
    binary = nginx_binary()
    output, _ = constructs_site
    work = tmp_path_factory.mktemp("nginx")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    temp = {name: work / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    config = work / "nginx.conf"
    config.write_text(f"""
daemon off;
master_process off;
error_log {work}/error.log warn;
pid {work}/nginx.pid;
events {{ worker_connections 32; }}
http {{
    access_log off;
    client_body_temp_path {temp['body']}; proxy_temp_path {temp['proxy']}; fastcgi_temp_path {temp['fastcgi']};
    uwsgi_temp_path {temp['uwsgi']}; scgi_temp_path {temp['scgi']};
    types {{ text/html html; }}
    map $request_uri $redirect {{ include {output}/redirects.nginx.map; }}
    server {{
        listen 127.0.0.1:{port};
        root {output};
        if ($redirect) {{ return 301 $redirect; }}
        location / {{ try_files $uri $uri/ =404; }}
    }}
}}
""", encoding="utf-8")
    process = subprocess.Popen([binary, "-e", str(work / "early.log"), "-p", str(work), "-c", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:  # a probe, not a sleep: ready once it accepts a connection
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                logs = [(work / name).read_text() for name in ("early.log", "error.log") if (work / name).exists()]
                pytest.fail(f"nginx did not start: {' '.join(logs)}")
            try:
                process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                pass
    yield port
    process.terminate()
    process.wait(timeout=10)


def get(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    connection.close()
    return response.status, response.getheader("Location", "")


@pytest.mark.parametrize("old, new", [
    ("/?p=10", "/2019/05/tous-les-blocs/"), ("/?p=11", "/2015/11/editeur-classique/"),
    ("/?page_id=30", "/a-propos-ancien/"), ("/2019/05/12/tous-les-blocs/", "/2019/05/tous-les-blocs/"),
    ("/2019/05/12/tous-les-blocs", "/2019/05/tous-les-blocs/"),
    ("/2020/08/31/%C3%A9t%C3%A9-indien/", "/2020/08/%C3%A9t%C3%A9-indien/"),
    ("/2020/08/31/%c3%a9t%c3%a9-indien/", "/2020/08/%C3%A9t%C3%A9-indien/"),
    ("/a-propos-ancien/contact/", "/contact/"), ("/tag/e-reputation/", "/etiquette/e-reputation/"),
    ("/category/humeurs-marketing/", "/categorie/humeurs-marketing/"), ("/feed/", "/atom.xml"),
])
def test_nginx_answers_old_addresses_with_301_to_pages_it_serves(nginx, old, new):
    status, location = get(nginx, old)
    assert status == 301 and urlsplit(location).path == new, (status, location)
    assert get(nginx, new)[0] == 200


def test_nginx_still_serves_the_new_addresses(nginx):
    assert get(nginx, "/archives/")[0] == 200  # an old address that is a page of the site is not redirected
    assert get(nginx, "/?p=99999")[0] == 200  # unknown: the home page, not the 404 page
    assert get(nginx, "/nulle-part/")[0] == 404


# -- the seeds, as the old blog exported them ----------------------------------------------------------------

@pytest.mark.parametrize("name", SEED_POSTS)
def test_seed_posts_import_as_the_author_rebuilt_them(seeds, name):
    content, _ = seeds
    imported, hand_made = content / "posts" / f"{name}.md", ROOT / "content" / "posts" / f"{name}.md"
    wanted = {k: v for k, v in header(hand_made).items() if k not in ("Date", "Date_Source")}
    got = header(imported)
    assert {k: v for k, v in got.items() if k != "Date"} == wanted
    assert got["Date"].startswith(header(hand_made)["Date"])
    text, reference = body(imported), body(hand_made)
    assert [l for l in text.split("\n") if l.startswith("#")] == [l for l in reference.split("\n") if l.startswith("#")]
    paragraphs = [p for p in text.split("\n\n") if p.strip() and not p.startswith("![")]
    reference_paragraphs = [p for p in reference.split("\n\n") if p.strip()]
    assert paragraphs[0][:60] == reference_paragraphs[0][:60] and paragraphs[-1] == reference_paragraphs[-1]
    assert abs(len(paragraphs) - len(reference_paragraphs)) <= 1  # the author split one long paragraph
    assert not FORBIDDEN.search(text)


def test_seed_specifics(seeds):
    content, output = seeds
    assert "\\#oupas ! Plus le temps passe" in body(content / "posts" / "2017-08-le-like-abondant.md")
    assert body(content / "posts" / "2017-08-le-like-abondant.md").rstrip().endswith("d’inspiration… 😉")
    assert "\\*au moment de mettre sous presse" in body(content / "posts" / "2009-08-infamie-du-fail.md")
    assert body(content / "posts" / "2015-11-le-cr-aime.md").startswith("![Coeur]({static}/images/2015/11/coeur.jpg)")
    assert "[Décourager ses clients fidèles – Nouvelle stratégie commerciale d’Air France]" \
           "(https://www.linkedin.com/pulse/decourager-ses-clients-fideles)" in \
           body(content / "posts" / "2017-01-fidele-par-anticipation.md")
    for slug, new in [("le-cr-aime", "/2015/11/le-cr-aime/"), ("infamie-du-fail", "/2009/08/infamie-du-fail/")]:
        assert refresh_target(served_file(output, f"/{slug}/")) == new
    assert refresh_target(served_file(output, "/category/ethique-biz/")) == "/categorie/ethiquebiz/"


# -- an export nobody here wrote -----------------------------------------------------------------------------

def test_pelicans_own_test_export_imports_and_builds(pelican_export):
    content, output, summary = pelican_export
    assert "posts: 11 in" in summary and "(7 published, 4 drafts, 0 scheduled)" in summary
    assert "post type 'custom1'" in summary and "comments: 4 not imported" in summary
    assert "its language is 'en', the site's 'fr'" in summary
    for old, new in redirect_rows(content):
        if "?" in old:
            assert f'"{old}"' in (output / "redirects.nginx.map").read_text(encoding="utf-8")
            continue
        page = served_file(output, old)
        target = refresh_target(page) if "déménagé" in page.read_text(encoding="utf-8") else old
        assert served_file(output, target).is_file(), f"{old} -> {target}"
    text = body(content / "posts" / "2012-02-code-in-list-test.md")
    assert "- This is a code sample\n\n          a = [1, 2, 3]" in text and "\n\n- List Item Four!" in text
    html = served_file(output, "/code-in-list-test-en.html").read_text(encoding="utf-8")
    assert "<li>\n<p>List Item Four!</p>\n</li>" in html, "the item after the code block left its list"
    assert header(content / "posts" / "2012-02-html-entity-test.md")["Title"] == \
        "A normal post with some &lt;html&gt; entities in the title. You can't miss them."


# -- refusals: malformed exports, existing files, taken slugs ---------------------------------------------

def broken(tmp_path: Path, text: str, name="export.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_a_malformed_export_is_refused_with_its_line_and_nothing_is_written(tmp_path):
    content = content_copy(tmp_path)
    before = digest(content)
    lines = CONSTRUCTS.read_text(encoding="utf-8-sig").split("\n")
    number = next(i for i, line in enumerate(lines, start=1) if "<wp:post_name><![CDATA[editeur-classique" in line)
    lines[number - 1] = lines[number - 1].replace("</wp:post_name>", "</wp:post_nam>")
    result = run_import(broken(tmp_path, "\n".join(lines)), content=content, check=False)
    assert result.returncode == 1
    assert f"export.xml:{number}: malformed XML (mismatched tag" in result.stderr
    assert "Nothing was imported." in result.stderr and not result.stdout
    assert digest(content) == before


@pytest.mark.parametrize("text, line, message", [
    ('<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY a "hahahahahahaha">\n<!ENTITY b "&a;&a;&a;&a;&a;">\n]>\n'
     "<rss><channel><wp:wxr_version>1.2</wp:wxr_version></channel></rss>", 3, "declares entity 'a'"),
    ('\n\n<?xml version="1.0"?>\n<rss version="2.0"><channel>\n<title>x</title>\n<item><title>a</item>\n</channel></rss>',
     6, "malformed XML (mismatched tag"),
    ('<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Un flux</title></channel></rss>', 1,
     "not a WordPress export"),
    ("Ceci n’est pas du XML.", 1, "malformed XML (syntax error"),
])
def test_unsafe_or_foreign_files_are_refused(tmp_path, text, line, message):
    content = content_copy(tmp_path)
    before = digest(content)
    result = run_import(broken(tmp_path, text), content=content, check=False)
    assert result.returncode == 1 and f"export.xml:{line}: " in result.stderr and message in result.stderr, \
        result.stderr
    assert digest(content) == before


def test_existing_files_are_not_overwritten_without_force(tmp_path):
    content = content_copy(tmp_path)
    run_import(CONSTRUCTS, "--uploads", UPLOADS, content=content)
    post = content / "posts" / "2019-05-tous-les-blocs.md"
    post.write_text(post.read_text(encoding="utf-8") + "\nUne retouche de l’auteur.\n", encoding="utf-8")
    with open(content / "redirects.csv", "a", encoding="utf-8") as csv_file:
        csv_file.write("/ajout-a-la-main/,/a-propos/\n")
    before = digest(content)
    again = run_import(CONSTRUCTS, "--uploads", UPLOADS, content=content, check=False)
    assert again.returncode == 1 and "Nothing was imported:" in again.stderr
    assert "posts/2019-05-tous-les-blocs.md exists (FORCE=1 overwrites it)" in again.stderr
    assert "redirects.csv exists" in again.stderr
    assert "images/" not in again.stderr, "identical images are not conflicts"
    assert digest(content) == before
    run_import(CONSTRUCTS, "--uploads", UPLOADS, "--force", content=content)
    assert "Une retouche" not in post.read_text(encoding="utf-8")
    rows = redirect_rows(content)
    assert ("/ajout-a-la-main/", "/a-propos/") in rows, "a line added by hand survives a forced import"
    assert len([r for r in rows if r[0] == "/?p=10"]) == 1


def test_an_image_with_other_bytes_is_a_conflict(tmp_path):
    content = content_copy(tmp_path)
    (content / "images" / "2019" / "05").mkdir(parents=True)
    (content / "images" / "2019" / "05" / "vitrine.png").write_bytes(b"another picture")
    result = run_import(CONSTRUCTS, "--uploads", UPLOADS, content=content, check=False)
    assert result.returncode == 1 and "images/2019/05/vitrine.png exists with other bytes" in result.stderr
    assert not (content / "posts" / "2019-05-tous-les-blocs.md").exists()


def test_a_slug_taken_by_another_file_is_refused_even_with_force(tmp_path):
    content = content_copy(tmp_path)
    (content / "posts" / "2015-11-le-cr-aime.md").rename(content / "posts" / "le-cr-aime-a-la-main.md")
    before = digest(content)
    lines = SEEDS.read_text(encoding="utf-8").split("\n")
    title = next(i for i, line in enumerate(lines) if "<title><![CDATA[Le CR « aime »]]></title>" in line)
    item_line = max(i for i in range(title) if lines[i].strip() == "<item>") + 1
    result = run_import(SEEDS, "--force", content=content, check=False)
    assert result.returncode == 1
    assert (f"the slug 'le-cr-aime' of « Le CR « aime » » (line {item_line}) is already used by "
            f"{content}/posts/le-cr-aime-a-la-main.md" in result.stderr), result.stderr
    assert digest(content) == before


def test_without_uploads_every_image_is_listed_missing(tmp_path):
    content = content_copy(tmp_path, without_seed_posts=True)
    result = run_import(SEEDS, content=content)
    assert "images and files: 1 used, 0 copied" in result.stdout and "2015/11/coeur.jpg (in « Le CR « aime » »)" \
        in result.stdout
    assert "![Coeur](/images/2015/11/coeur.jpg)" in body(content / "posts" / "2015-11-le-cr-aime.md")
    assert not (content / "images" / "2015").exists()


def test_make_passes_file_uploads_and_force():
    # --no-print-directory: under `make test`, a sub-make prints "Entering directory" lines around the recipe.
    result = subprocess.run(["make", "-n", "--no-print-directory", "import-wordpress", "FILE=export.xml",
                             "UPLOADS=copie/uploads", "FORCE=1"], cwd=ROOT, capture_output=True, text=True)
    assert 'import-wordpress --file "export.xml" --uploads "copie/uploads" --force' in result.stdout, result.stdout
    plain = subprocess.run(["make", "-n", "--no-print-directory", "import-wordpress", "FILE=export.xml"], cwd=ROOT,
                           capture_output=True, text=True)
    assert plain.stdout.rstrip().endswith('import-wordpress --file "export.xml"'), plain.stdout


# -- the pieces, on small inputs --------------------------------------------------------------------------

@pytest.mark.parametrize("levels, expected", [
    ([1, 4, 6, 4, 2], [2, 3, 4, 3, 3]), ([3, 3, 4, 2, 5], [2, 2, 3, 2, 3]), ([2, 3, 2], [2, 3, 2]),
])
def test_heading_levels_start_at_two_and_skip_none(levels, expected):
    from bs4 import BeautifulSoup

    from wpimport.body import _heading_levels
    soup = BeautifulSoup("".join(f"<h{n}>t</h{n}>" for n in levels), "html.parser")
    _heading_levels(soup)
    assert [int(h.name[1]) for h in soup.find_all(re.compile("^h[1-6]$"))] == expected


def test_wpautop_makes_the_paragraphs_wordpress_showed():
    from wpimport.autop import autop
    assert autop("Un\ndeux\n\n<h2>T</h2>\nTrois\n<pre>a\n\nb</pre>\n&nbsp;") == (
        "<p>Un<br />\ndeux</p>\n<h2>T</h2>\n<p>Trois</p>\n<pre>a\n\nb</pre>\n<p>&nbsp;</p>\n")


@pytest.mark.parametrize("text, expected", [
    ("[[gallery]] est un shortcode", "[gallery] est un shortcode"),
    ("[sic] et [1] et [Mise à jour : oui]", "[sic] et [1] et [Mise à jour : oui]"),
    ('[caption id=”attachment_1″ align=”alignnone”]<img src="a.png" alt="x"> Légende[/caption]',
     '<figure><img src="a.png" alt="x"><figcaption>Légende</figcaption></figure>'),
    ('[inconnu attr="1"]', ""), ("[encadre]Texte gardé[/encadre]", "Texte gardé"),
    ("[vimeo 123456]", '<p><a href="https://vimeo.com/123456" data-wpimport-embed>https://vimeo.com/123456</a></p>'),
])
def test_shortcodes(text, expected):
    from wpimport.shortcodes import Context, expand
    assert expand(text, Context(1, {}, {})) == expected


def test_an_upload_path_leaving_the_folder_is_refused(tmp_path):
    from wpimport.media import Media
    from wpimport.oldsite import OldSite
    secret = tmp_path / "secret.txt"
    secret.write_text("non")
    (tmp_path / "uploads").mkdir()
    media = Media(OldSite("https://blog.example", ""), tmp_path / "uploads")
    assert media.link("https://blog.example/wp-content/uploads/../secret.txt", "ici") == ""
    assert media.link("https://blog.example/wp-content/uploads/2019/%2E%2E/%2E%2E/secret.txt", "ici") == ""
    assert media.link("https://blog.example/wp-content/uploads/2019/a%00.png", "ici") == ""
    assert not media.copies and len(media.refused) == 3
    assert media.link("https://ailleurs.example/wp-content/uploads/2019/05/a.png", "ici") is None


@pytest.mark.parametrize("old, keys", [
    ("/2020/08/%c3%a9t%c3%a9/", ["/2020/08/%c3%a9t%c3%a9/", "/2020/08/%c3%a9t%c3%a9"]),
    ("/?p=12", ["/?p=12"]), ("/", ["/"]),
])
def test_nginx_keys_cover_the_spellings_of_an_old_address(old, keys):
    sys.path.insert(0, str(ROOT / "plugins"))
    try:
        from redirects import nginx_keys
    finally:
        sys.path.remove(str(ROOT / "plugins"))
    assert nginx_keys(old) == keys


FRAGMENTS = ["<p>", "</p>", "<div class='wp-block-group'>", "</div>", "<ul>", "</ul>", "<ol>", "<li>", "</li>",
             "<figure class='wp-block-image'>", "</figure>", "<img src='https://b.example/wp-content/uploads/a.png'>",
             "<img>", "<a>", "<a href=''>", "</a>", "<a href='https://b.example/?p=1'>", "<figcaption>", "</figcaption>",
             "[caption]", "[/caption]", "[gallery]", "[gallery ids='1,9']", "[embed]", "[/embed]", "https://youtu.be/x",
             "\n", "\n\n", "&nbsp;", "<!-- wp:paragraph -->", "<!-- /wp:paragraph -->", "<!--more-->", "<blockquote>",
             "</blockquote>", "<cite>", "</cite>", "<pre>", "</pre>", "<table>", "<tr>", "<td>", "</td>", "</tr>",
             "</table>", "<h2>", "</h2>", "<h5>", "</h5>", "*", "_", "#", "- ", "1. ", "> ", "<", ">", "&", "[", "]",
             "(", ")", "`", "\\", "texte", "Été", "[footnote]", "[/footnote]", "<sup data-fn='x'>1</sup>",
             "<iframe src='https://www.youtube.com/embed/abc'></iframe>", "<video src='v.mp4'></video>", "<audio>",
             "</audio>", "<script>x</script>", "[audio mp3='https://b.example/wp-content/uploads/s.mp3']", "<br>",
             "<hr>", "<dl><dt>t</dt><dd>d</dd></dl>", "<details><summary>s</summary>", "</details>",
             '<!-- wp:block {"ref":1} /-->', "<!-- wp:latest-posts /-->", "<q>", "</q>", "<s>", "</s>", "<h1>", "</h1>"]


def test_any_mix_of_wordpress_fragments_converts_without_error():
    """Broken HTML, unclosed shortcodes, stray comments: the converter always returns Markdown (fixed seed)."""
    import random

    from wpimport.body import Converter
    from wpimport.media import Media
    from wpimport.oldsite import OldSite
    from wpimport.shortcodes import Attachment
    site = OldSite("https://b.example", "")
    converter = Converter(Media(site, None), site, {1: Attachment("https://b.example/wp-content/uploads/a.png")},
                          {}, {1: "<p>r</p>"}, lambda old: None)
    chance = random.Random(14)
    for _ in range(150):
        text = "".join(chance.choice(FRAGMENTS) for _ in range(chance.randint(1, 40)))
        markdown = converter.convert(text, 1, "ici").markdown
        assert "<!-- wp:" not in markdown and "<!--more" not in markdown and "<script" not in markdown, text
