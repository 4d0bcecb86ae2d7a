/* The search page (theme/templates/recherche.html): Pagefind's index of the site,
   output/pagefind/, searched in this browser as the reader types. Every file comes
   from this site; what is typed never leaves the page. Pagefind runs in this page's
   thread (noWorker): its WebAssembly then needs 'wasm-unsafe-eval' in the CSP of
   this one page only, not of the bundle's files. Without JavaScript the page says
   so (<noscript>) and links to the archives. */
(function () {
  "use strict";

  var PAGE = 10;                   // results shown at once; "Plus de résultats" shows the next ones
  var NBSP = "\u202f";             // espace fine insécable, as the site's French typography
  var form = document.querySelector("form.search");
  if (!form) { return; }
  var input = form.querySelector("input[type=search]");
  var status = document.getElementById("search-status");
  var list = document.getElementById("search-results");
  var more = document.querySelector(".search-more");
  var bundle = form.getAttribute("data-bundle");
  var engine = null;               // Pagefind, once its module is loaded
  var asked = 0;                   // each search's number: an answer to an older one is dropped
  var found = [];                  // the current search's results, not all shown yet
  var shown = 0;

  function quoted(term) { return "«" + NBSP + term + NBSP + "»"; }

  function say(text) { status.textContent = text; }

  /* Pagefind's excerpt is text with <mark> around the words found: only text and <mark> are copied. */
  function excerpt(html) {
    var p = document.createElement("p");
    var parsed = new DOMParser().parseFromString(html, "text/html").body;
    parsed.childNodes.forEach(function (node) {
      if (node.nodeName === "MARK") {
        var mark = document.createElement("mark");
        mark.textContent = node.textContent;
        p.appendChild(mark);
      } else {
        p.appendChild(document.createTextNode(node.textContent));
      }
    });
    return p;
  }

  function item(data) {
    var li = document.createElement("li");
    var title = document.createElement("h2");
    var link = document.createElement("a");
    link.href = data.url;
    link.textContent = (data.meta && data.meta.title) || data.url;
    title.appendChild(link);
    li.appendChild(title);
    li.appendChild(excerpt(data.excerpt || ""));
    return li;
  }

  async function showMore(number) {
    var next = found.slice(shown, shown + PAGE);
    var data = await Promise.all(next.map(function (result) { return result.data(); }));
    if (number !== asked) { return; }
    data.forEach(function (one) { list.appendChild(item(one)); });
    shown += next.length;
    more.hidden = shown >= found.length;
  }

  async function search() {
    var number = ++asked;
    var term = input.value.trim();
    if (!term) {
      found = []; shown = 0; list.replaceChildren(); more.hidden = true; say("");
      return;
    }
    var answer;
    try {
      answer = await engine.search(term);
    } catch (error) {
      failed();
      return;
    }
    if (number !== asked) { return; }
    found = answer.results; shown = 0;
    list.replaceChildren();
    await showMore(number);
    if (number !== asked) { return; }
    var count = found.length;  // said once the first results are on the page
    say(count === 0 ? "Aucun résultat pour " + quoted(term) + "."
      : count + (count > 1 ? " résultats" : " résultat") + " pour " + quoted(term) + NBSP + ":");
  }

  function failed() {
    form.hidden = true;
    say("La recherche n’a pas pu démarrer dans ce navigateur.");
    document.querySelector(".search-fallback").hidden = false;  // links to the archives, rubriques, étiquettes
  }

  async function start() {
    try {
      // The empty module: compiling it fails at once where WebAssembly is missing or refused by the CSP.
      new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
      engine = await import(bundle + "pagefind.js");
      await engine.options({ noWorker: true, excerptLength: 24 });
      await engine.init();
    } catch (error) {
      failed();
      return;
    }
    form.hidden = false;
    form.addEventListener("submit", function (event) { event.preventDefault(); search(); });
    input.addEventListener("input", search);
    more.querySelector("button").addEventListener("click", function () { showMore(asked); });
    var initial = new URLSearchParams(location.search).get("q");  // a link to /recherche/?q=mot
    if (initial) { input.value = initial; search(); }
  }

  start();
}());
