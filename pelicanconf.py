"""Every non-secret setting of the site. publishconf.py overrides what production needs."""
import os
import sys

# The plugins import the core package, blogcore/, which sits beside this file. `python -m pelican`
# from the project root (tasks.py, the tests) finds it already; `pelican` started elsewhere, or with
# another settings file that imports this one, would not: the project root goes on sys.path once.
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

AUTHOR = "François"
SITENAME = "égoBlog"
SITESUBTITLE = "Humeurs marketing : relation client, CRM et réseaux sociaux"
# Links stay root-relative so the dev site works on any port; PUBLIC_URL makes the
# absolute URLs (canonical, Open Graph, feeds, sitemap, mails).
SITEURL = ""
PORT = int(os.environ.get("PORT", "8000"))
PUBLIC_URL = os.environ.get("PUBLIC_URL", f"http://127.0.0.1:{PORT}")
RELATIVE_URLS = False

PATH = "content"
ARTICLE_PATHS = ["posts"]
PAGE_PATHS = ["pages"]
STATIC_PATHS = ["images"]
OUTPUT_PATH = "output"
THEME = "theme"
TIMEZONE = "Europe/Paris"
DEFAULT_LANG = "fr"
DEFAULT_PAGINATION = 10
# Only the home page is paginated; category, tag and author pages list every title on one page.
PAGINATED_TEMPLATES = {"index": None}
DEFAULT_CATEGORY = "Humeurs Marketing"
DEFAULT_METADATA = {}
SUMMARY_MAX_LENGTH = 50
TYPOGRIFY = False

ARTICLE_URL = "{date:%Y}/{date:%m}/{slug}/"
ARTICLE_SAVE_AS = ARTICLE_URL + "index.html"
PAGE_URL = "{slug}/"
PAGE_SAVE_AS = PAGE_URL + "index.html"
CATEGORY_URL = "categorie/{slug}/"
CATEGORY_SAVE_AS = CATEGORY_URL + "index.html"
CATEGORIES_SAVE_AS = "categories/index.html"
TAG_URL = "etiquette/{slug}/"
TAG_SAVE_AS = TAG_URL + "index.html"
TAGS_SAVE_AS = "etiquettes/index.html"
AUTHOR_URL = "auteur/{slug}/"
AUTHOR_SAVE_AS = AUTHOR_URL + "index.html"
AUTHORS_SAVE_AS = ""
ARCHIVES_SAVE_AS = "archives/index.html"
YEAR_ARCHIVE_SAVE_AS = ""
MONTH_ARCHIVE_SAVE_AS = ""
DAY_ARCHIVE_SAVE_AS = ""
PAGINATION_PATTERNS = (
    (1, "{url}", "{save_as}"),
    (2, "{base_name}/page/{number}/", "{base_name}/page/{number}/index.html"),
)
INDEX_SAVE_AS = "index.html"
DIRECT_TEMPLATES = ["index", "archives", "categories", "tags", "recherche"]
RECHERCHE_SAVE_AS = "recherche/index.html"
# make build/publish/serve index the published site for the search page with Pagefind (sitebuild/search.py):
# output/pagefind/, searched in the reader's browser. A plain `pelican` run writes no index.
SEARCH_INDEX = True

# One feed implementation: plugins/feeds (feedgen). Pelican's own feeds are off.
FEED_ALL_ATOM = None
FEED_ALL_RSS = None
CATEGORY_FEED_ATOM = None
CATEGORY_FEED_RSS = None
TAG_FEED_ATOM = None
TAG_FEED_RSS = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
TRANSLATION_FEED_ATOM = None
TRANSLATION_FEED_RSS = None
FEED_MAX_ITEMS = 20
# Authority of the feed entries' tag: ids. Never change it once the feeds are public, even with a new
# domain: readers and feed-to-mail services would see every old post as new.
FEEDS_ID_AUTHORITY = "egoblog.fr"

PLUGIN_PATHS = ["plugins"]
PLUGINS = [
    "content_checks",
    "publication",
    "french_typography",
    "theme_extras",
    "sitemap",
    "redirects",
    "feeds",
    "mail_posts",
    "share_cards",
    "fast_build",
]

# Drafts and posts dated in the future are published by no build (plugins/publication): a post goes out
# at the first build after its date, on the build's clock in TIMEZONE. Pelican's own rule stays off.
WITH_FUTURE_DATES = True
# True only in the builds of the dev server (make serve, sitebuild/devserver.py): drafts and scheduled posts
# are written for their author, marked and noindex, and pages reload themselves after a change.
DEV_BUILD = False

MARKDOWN = {
    "extension_configs": {
        "markdown.extensions.extra": {},
        "markdown.extensions.smarty": {"smart_quotes": False},
    },
    "output_format": "html5",
}

# Newsletter: where the signup form posts, and who the mails come from.
NEWSLETTER_URL = os.environ.get("NEWSLETTER_URL", "/newsletter")
NEWSLETTER_FROM = os.environ.get("NEWSLETTER_FROM", "égoBlog <lettre@egoblog.example>")
NEWSLETTER_REPLY_TO = os.environ.get("NEWSLETTER_REPLY_TO", "francois@egoblog.example")
CONTACT_EMAIL = NEWSLETTER_REPLY_TO
# The welcome mail a reader gets once they confirm (NEWSLETTER_WELCOME = False: none): what they will
# receive, in the author's words; blank lines separate paragraphs. French typography is applied.
NEWSLETTER_WELCOME_TEXT = """\
Vous recevrez un e-mail à chaque nouveau billet, le jour de sa publication : le billet en entier, \
lisible sans ouvrir le blog. Pas de publicité, pas de relance, aucun suivi de votre lecture.

Vous pouvez répondre à ces e-mails : vos réponses arrivent directement chez l’auteur.
"""

# Content cache (plugins/fast_build keeps one folder per site and settings under cache/,
# replaced atomically): a rebuild reads only the posts whose file changed, and renders
# only the pages whose inputs changed (`--ignore-cache` renders everything again).
# make build/publish/serve stage the build beside output/ and move it in at the end (sitebuild/);
# with DELETE_OUTPUT_DIRECTORY, files the build no longer makes are then removed from output/
# (OUTPUT_RETENTION's are kept). A plain `pelican` run, which cleans output/ first, renders every page.
CACHE_CONTENT = True
LOAD_CONTENT_CACHE = True
CHECK_MODIFIED_METHOD = "mtime"
CONTENT_CACHING_LAYER = "reader"
CACHE_PATH = "cache"
DELETE_OUTPUT_DIRECTORY = True
OUTPUT_RETENTION = []
