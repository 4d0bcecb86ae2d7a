"""The site in a real browser (Debian's Chromium through Playwright): accessible in light
and dark (axe-core), usable on a 375 px phone, readable at 1280 px, working without
JavaScript and from the keyboard, private (no other host, no cookie), and light.

Tap targets: every visible link, button, field and summary is at least 44×44 px, except
links inside sentences of the author's prose (`.content` paragraphs, list items, quotes)
and of the signup notice: WCAG 2.5.8's "inline" exception, since growing them would
change the line spacing of running text. Navigation, tags, categories, pagination,
meta links, footer links, buttons and fields are held to 44 px.
"""
from __future__ import annotations

import gzip
import json
import re
import statistics
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from newsletter.signing import Signer
from tests.conftest import require_file
from tests.fixtures.browser import ARTIFACTS, AXE, TEST_SECRET, record_requests

pytestmark = pytest.mark.browser

POST = "/2017/08/le-like-abondant/"
READER = "lectrice@egoblog.fr"  # example.org is refused as undeliverable; mail goes to a temp outbox
_signer = Signer([TEST_SECRET])
PAGES = {
    "accueil": "/",
    "billet": POST,
    "rubrique": "/categorie/humeurs-marketing/",
    "suivre": "/categorie/humeurs-marketing/suivre/",
    "archives": "/archives/",
    "confidentialite": "/confidentialite/",
    "404": "/cette-page-n-existe-pas/",
    "verifiez": "/newsletter/verifiez/",
    "confirme": "/newsletter/confirme/",
    "desinscrit": "/newsletter/desinscrit/",
    "confirmer": "/newsletter/confirmer/" + _signer.confirm_token(READER),
    "desinscription": "/newsletter/desinscription/" + _signer.unsubscribe_token(READER),
    "lien-invalide": "/newsletter/confirmer/lien-coupe",
}
STATUS = {"404": 404, "lien-invalide": 400}
# The service's confirm and unsubscribe pages carry their own one-button form instead of the signup box.
WITHOUT_SIGNUP = {"confirmer", "desinscription"}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21aa", "best-practice"]
FIGURES = ARTIFACTS / "browser-figures.json"


@pytest.fixture(scope="module")
def tab(browser, served_site):  # noqa: F811
    """One page, reused by every test of the module (CSP bypassed so axe can be injected)."""
    context = browser.new_context(bypass_csp=True, locale="fr-FR", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.base_url = served_site
    yield page
    context.close()


def visit(page, name, width=1280, scheme="light"):
    """Open one of PAGES at a width and colour scheme; check the HTTP status."""
    page.set_viewport_size({"width": width, "height": 800})
    page.emulate_media(color_scheme=scheme)
    response = page.goto(page.base_url + PAGES[name], wait_until="load")
    assert response.status == STATUS.get(name, 200), f"{name}: HTTP {response.status}"
    return response


def record_figure(key, value):
    """Keep a measured figure in test-artifacts/browser-figures.json for the report."""
    ARTIFACTS.mkdir(exist_ok=True)
    figures = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    figures[key] = value
    FIGURES.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")


def say(capsys, text):
    """Print a figure even without -s: the suite is where budgets are measured."""
    with capsys.disabled():
        print(f"\n    {text}", end="")


# -- accessibility ------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", PAGES)
def test_axe_finds_no_violation(tab, name, scheme):
    visit(tab, name, scheme=scheme)
    tab.add_script_tag(path=str(require_file(AXE, "run `npm ci`, as make test does")))
    result = tab.evaluate(
        """async (tags) => {
             const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
             const summary = list => list.map(v => ({
               rule: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' — ' + n.failureSummary)}));
             const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\\d+/g).map(Number);
             return {violations: summary(result.violations),
                     // contrast axe could not decide (text over images, gradients…) is not proof either
                     undecided: summary(result.incomplete.filter(v => v.id === 'color-contrast')),
                     luminance: (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255};
           }""",
        AXE_TAGS,
    )
    assert result["violations"] == [], f"{name} ({scheme}): " + json.dumps(result["violations"], indent=1, ensure_ascii=False)
    assert result["undecided"] == [], f"{name} ({scheme}): " + json.dumps(result["undecided"], indent=1, ensure_ascii=False)
    # The dark run really is dark: the theme answered prefers-color-scheme.
    assert (result["luminance"] < 0.3) if scheme == "dark" else (result["luminance"] > 0.7), result["luminance"]


# -- phone --------------------------------------------------------------------------------

OVERFLOW = """() => {
  const doc = document.documentElement, limit = doc.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > limit + 0.5)
    .slice(0, 5).map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                          + ' right=' + Math.round(el.getBoundingClientRect().right));
  return {scrollWidth: doc.scrollWidth, clientWidth: limit, wide};
}"""

TAP_TARGETS = """() => {
  const PROSE = '.content p, .content li, .content blockquote, .content dd, .content td, '
              + '.content figcaption, p.notice';
  const describe = el => {
    const holder = el.parentElement.closest('[class], [id], nav, header, footer, main, aside');
    const where = holder ? holder.tagName.toLowerCase() + (holder.id ? '#' + holder.id : '')
                           + (holder.classList.length ? '.' + [...holder.classList].join('.') : '') : '';
    const label = (el.textContent || el.value || el.name || el.type || '').trim().replace(/\\s+/g, ' ');
    return `${where} ${el.tagName.toLowerCase()} "${label.slice(0, 40)}"`;
  };
  const small = [];
  let checked = 0, exempt = 0;
  for (const el of document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary')) {
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden') continue;
    const rects = [...el.getClientRects()].filter(r => r.width > 0 && r.height > 0);
    if (!rects.length) continue;                              // not rendered (honeypot)
    const box = el.getBoundingClientRect();
    if (box.bottom <= 0 || box.right <= 0) continue;          // off-screen until focused (skip link)
    if (el.matches('a') && style.display === 'inline' && el.closest(PROSE)) { exempt++; continue; }
    checked++;
    const width = Math.max(...rects.map(r => r.width)), height = Math.min(...rects.map(r => r.height));
    if (width < 43.5 || height < 43.5)
      small.push(`${describe(el)}: ${width.toFixed(1)}×${height.toFixed(1)} px`);
  }
  return {checked, exempt, small};
}"""


@pytest.mark.parametrize("name", PAGES)
def test_phone_no_sideways_scroll_and_44px_targets(tab, name):
    visit(tab, name, width=375)
    overflow = tab.evaluate(OVERFLOW)
    assert overflow["scrollWidth"] <= overflow["clientWidth"], f"{name} scrolls sideways at 375 px: {overflow}"
    targets = tab.evaluate(TAP_TARGETS)
    assert targets["checked"] > 0
    assert targets["small"] == [], f"{name}: tap targets under 44×44 px at 375 px:\n" + "\n".join(targets["small"])


# -- reading width ------------------------------------------------------------------------

LINE_LENGTHS = """() => {
  // Characters on each rendered line of the post's paragraphs, from the boxes of single characters.
  const perLine = [];
  for (const p of document.querySelectorAll('article .content > p')) {
    const walker = document.createTreeWalker(p, NodeFilter.SHOW_TEXT);
    const lines = new Map();
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.length; i++) {
        const range = document.createRange();
        range.setStart(node, i); range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (!rect) continue;
        const top = Math.round(rect.top);
        const line = [...lines.keys()].find(t => Math.abs(t - top) < 4) ?? top;
        lines.set(line, (lines.get(line) || 0) + 1);
      }
    }
    const counts = [...lines.values()];
    perLine.push(...counts.slice(0, -1));  // the last line of a paragraph is short by nature
  }
  const p = document.querySelector('article .content > p');
  return {perLine, width: p.getBoundingClientRect().width, font: getComputedStyle(p).font};
}"""


def test_post_text_column_is_60_to_80_characters_at_1280(tab, capsys):
    visit(tab, "billet", width=1280)
    measured = tab.evaluate(LINE_LENGTHS)
    lines = measured["perLine"]
    assert len(lines) >= 10, "too few full lines to measure"
    median, low, high = statistics.median(lines), min(lines), max(lines)
    say(capsys, f"post text column at 1280 px: {measured['width']:.0f} px, {len(lines)} full lines, "
                f"median {median:.0f} characters a line (min {low}, max {high})")
    record_figure("line_length", {"median": median, "min": low, "max": high, "lines": len(lines),
                                  "column_px": round(measured["width"])})
    assert 60 <= median <= 80, f"median line length {median} characters, outside 60–80"


# -- without JavaScript -------------------------------------------------------------------

@pytest.fixture(scope="module")
def no_js(browser, served_site):  # noqa: F811
    context = browser.new_context(java_script_enabled=False, locale="fr-FR", viewport={"width": 375, "height": 800})
    page = context.new_page()
    page.base_url = served_site
    yield page
    context.close()


@pytest.mark.parametrize("name", PAGES)
def test_page_reads_and_its_form_submits_without_javascript(no_js, name):
    visit(no_js, name, width=375)
    heading = no_js.locator("main h1")
    assert heading.is_visible() and heading.inner_text().strip()
    assert len(no_js.locator("main").inner_text().strip()) > 80, f"{name}: main holds almost no text"
    form = no_js.locator("form.signup" if name not in WITHOUT_SIGNUP else "main form")
    assert form.count() == 1 and form.is_visible(), f"{name}: the form is missing or hidden"
    assert form.get_attribute("method").lower() == "post"
    assert form.locator("button[type=submit]").is_enabled()
    if name not in WITHOUT_SIGNUP:
        assert form.get_attribute("action").startswith("/newsletter/")
        assert no_js.locator("form.signup input[type=email][name=email]").is_visible()
        assert not no_js.locator(".signup-result").is_visible(), "the empty result box shows without JS"


def test_signup_form_posts_without_javascript(no_js):
    visit(no_js, "billet", width=375)
    no_js.fill("form.signup input[name=email]", READER)
    with no_js.expect_navigation():
        no_js.click("form.signup button[type=submit]")
    assert urlsplit(no_js.url).path == "/newsletter/verifiez/", no_js.locator("main").inner_text()
    assert no_js.locator("main h1").is_visible()


# -- keyboard -----------------------------------------------------------------------------

FOCUSED = """() => {
  const el = document.activeElement, style = getComputedStyle(el), box = el.getBoundingClientRect();
  const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
               || (style.boxShadow && style.boxShadow !== 'none');
  return {tag: el.tagName.toLowerCase(), id: el.id, cls: el.className,
          text: (el.textContent || el.name || '').trim().slice(0, 30), ring,
          outline: `${style.outlineStyle} ${style.outlineWidth} ${style.outlineColor}`,
          visible: box.bottom > 0 && box.right > 0 && box.width > 0 && box.height > 0,
          size: [box.width, box.height]};
}"""


@pytest.mark.parametrize("name", [n for n in PAGES if n not in WITHOUT_SIGNUP])
def test_keyboard_reaches_signup_field_with_visible_focus(tab, name, capsys):
    visit(tab, name, width=1280)
    steps = []
    for _ in range(150):
        tab.keyboard.press("Tab")
        focused = tab.evaluate(FOCUSED)
        steps.append(focused)
        if focused["id"] == "signup-email":
            break
    first = steps[0]
    assert first["cls"] == "skip", f"{name}: first Tab lands on {first}, not the skip link"
    assert first["visible"], f"{name}: the focused skip link stays off-screen"
    assert steps[-1]["id"] == "signup-email", f"{name}: 150 Tabs never reach the signup email field"
    unmarked = [s for s in steps if not s["ring"] or not s["visible"]]
    assert unmarked == [], f"{name}: focus without a visible ring: {unmarked}"
    if name == "accueil":
        say(capsys, f"keyboard: {len(steps)} Tabs from the top of the home page to the signup field")


def test_skip_link_moves_focus_to_main(tab):
    visit(tab, "billet")
    tab.keyboard.press("Tab")
    tab.keyboard.press("Enter")
    assert tab.evaluate("document.activeElement.id") == "contenu"


# -- privacy ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PAGES)
def test_no_request_to_another_host_and_no_cookie(tab, name):
    page = tab.context.new_page()
    page.base_url = tab.base_url
    recorded = record_requests(page)
    try:
        visit(page, name, width=375)
        page.mouse.wheel(0, 20000)  # anything lazy loads now
        page.wait_for_load_state("networkidle")
        assert recorded.requests, "nothing recorded"
        assert recorded.foreign(tab.base_url) == [], f"{name} asked another host"
        assert recorded.cookies_set() == [], f"{name} set a cookie"
        assert page.context.cookies() == []
        assert page.evaluate("document.cookie") == ""
    finally:
        page.close()


# -- budgets ------------------------------------------------------------------------------

def without_article_body(html: str) -> str:
    """The post's HTML minus its own text: the <div class="content"> of the article, emptied."""
    start = html.index('<div class="content">') + len('<div class="content">')
    depth = 1
    for tag in re.finditer(r"<(/?)div\b[^>]*>", html[start:]):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return html[:start] + html[start + tag.start():]
    raise AssertionError("unclosed article body")


BLOCKING = """() => ({
  stylesheets: [...document.head.querySelectorAll('link[rel~=stylesheet]')].map(l => l.getAttribute('href')),
  bodyStylesheets: document.body.querySelectorAll('link[rel~=stylesheet], style').length,
  blockingScripts: [...document.querySelectorAll('script[src]')]
    .filter(s => !s.defer && !s.async && s.type !== 'module').map(s => s.getAttribute('src')),
  renderBlocking: performance.getEntriesByType('resource')
    .filter(e => e.renderBlockingStatus === 'blocking').map(e => new URL(e.name).pathname),
})"""


def test_post_weighs_under_30_kb_compressed_with_one_blocking_stylesheet(tab, capsys, record_property):
    page = tab.context.new_page()
    page.base_url = tab.base_url
    recorded = record_requests(page)
    try:
        visit(page, "billet")
        page.wait_for_load_state("networkidle")
        sizes = {}
        for response in recorded.responses:
            request = response.request
            if urlsplit(response.url)[:2] != urlsplit(tab.base_url)[:2] or request.resource_type in ("image", "media"):
                continue
            body = response.body()
            if request.resource_type == "document":
                body = without_article_body(body.decode("utf-8")).encode("utf-8")
            sizes[urlsplit(response.url).path] = len(gzip.compress(body, compresslevel=6))
        blocking = page.evaluate(BLOCKING)
        css = page.evaluate("""async (href) => (await (await fetch(href)).text())""", blocking["stylesheets"][0]) \
            if blocking["stylesheets"] else ""
    finally:
        page.close()

    total = sum(sizes.values())
    detail = ", ".join(f"{path} {size / 1024:.1f}" for path, size in sizes.items())
    say(capsys, f"post budget: {total / 1024:.1f} KB gzip -6 of 30 KB ({detail}); "
                f"render-blocking: {blocking['renderBlocking']}")
    record_property("post_weight_gzip_bytes", total)
    record_figure("post_budget", {"total_kb": round(total / 1024, 2),
                                  "files_kb": {p: round(s / 1024, 2) for p, s in sizes.items()},
                                  "render_blocking": blocking["renderBlocking"]})
    assert any(path.endswith(".css") for path in sizes), "the stylesheet was not measured"
    assert total <= 30 * 1024, f"post page weighs {total} bytes compressed, over 30 KB"
    assert len(blocking["stylesheets"]) == 1, f"<head> links {blocking['stylesheets']}: want exactly one stylesheet"
    assert blocking["bodyStylesheets"] == 0, "stylesheet or <style> in <body>"
    assert blocking["blockingScripts"] == [], f"parser-blocking scripts: {blocking['blockingScripts']}"
    assert "@import" not in css, "the stylesheet @imports another one"
    assert blocking["renderBlocking"] == [urlsplit(blocking["stylesheets"][0]).path], \
        f"Chromium reports these render-blocking: {blocking['renderBlocking']}"


# -- screenshots --------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("name", ["accueil", "billet"])
def test_screenshot_for_review(tab, name, width, scheme):
    visit(tab, name, width=width, scheme=scheme)
    path = ARTIFACTS / "screenshots" / f"{name}-{width}-{scheme}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 5000



class _Tracker(BaseHTTPRequestHandler):
    """What the site must never do: set a cookie and pull in a third-party pixel."""

    def do_GET(self):
        body = b'<!DOCTYPE html><title>sonde</title><img src="http://tiers.invalid/pixel.gif" alt="">'
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "suivi=1; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_recorder_sees_another_host_and_a_cookie(browser):  # noqa: F811
    """The privacy checks can fail: a third-party image and a Set-Cookie are caught (nothing leaves the machine)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tracker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_port}"
    context = browser.new_context()
    page = context.new_page()
    recorded = record_requests(page)
    page.route("http://tiers.invalid/**", lambda route: route.abort())
    try:
        page.goto(base_url + "/")
        page.wait_for_load_state("networkidle")
        assert recorded.foreign(base_url) == ["http://tiers.invalid/pixel.gif"]
        assert recorded.cookies_set() == [f"{base_url}/: suivi=1; Path=/"]
        assert [cookie["name"] for cookie in context.cookies()] == ["suivi"]
    finally:
        context.close()
        server.shutdown()
        server.server_close()
