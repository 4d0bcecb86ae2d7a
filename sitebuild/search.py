"""The search index: Pagefind reads the published site and writes output/pagefind/, searched in the browser.

Pagefind (PyPI `pagefind-bin`, a Rust binary inside the wheel: nothing is
fetched at build time) indexes the HTML files once the build has moved them into
output/: the staging folder holds only the pages this build rendered again
(sitebuild.staging), so the index is made from the whole live site. Only the
elements marked `data-pagefind-body` are indexed (the text of published posts
and pages: theme/templates/article.html, page.html), so navigation, forms, lists
and the drafts of a dev build stay out. Each page's `<html lang>` picks the
stemmer: French for this blog.

The bundle is written beside output/ and swapped in whole. A build that left
every HTML file's text as it was (a warm build that changed nothing) does not
index again: the bundle records a digest of the files it was made from.
"""
import hashlib
import os
import shutil
import subprocess
import tempfile

BUNDLE = "pagefind"  # output/pagefind/: a top-level name the staged build must not delete
SOURCES = "sources.sha256"  # in the bundle: the digest of the HTML files it was made from


class IndexFailed(Exception):
    """Pagefind is missing or refused the site; output/pagefind/ was left as it was."""


def pagefind_binary() -> str:
    """The pagefind executable shipped in the pagefind-bin wheel (requirements.txt)."""
    try:
        from pagefind_bin import get_executable
    except ImportError as error:
        raise IndexFailed("the search index needs the pagefind-bin package: pip install -r requirements.txt") from error
    return str(get_executable())


def sources_digest(site: str, version: str) -> str:
    """A digest of the path and text of every HTML file of the site, and of Pagefind's version.

    The text, not the modification time: the accelerator writes some pages again unchanged on every build.
    """
    digest = hashlib.sha256(version.encode())
    for folder, folders, names in os.walk(site):
        if folder == site and BUNDLE in folders:
            folders.remove(BUNDLE)
        folders.sort()
        for name in sorted(names):
            if name.endswith(".html"):
                path = os.path.join(folder, name)
                with open(path, "rb") as page:
                    text = hashlib.file_digest(page, "sha256").hexdigest()
                digest.update(f"{os.path.relpath(path, site)}\0{text}\n".encode())
    return digest.hexdigest()


def index_site(site: str) -> bool:
    """Write site/pagefind/ from the site's HTML files, unless it was made from these very files; True if written."""
    binary = pagefind_binary()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    digest = sources_digest(site, version)
    bundle = os.path.join(site, BUNDLE)
    try:
        with open(os.path.join(bundle, SOURCES), encoding="ascii") as recorded:
            if recorded.read().strip() == digest:
                return False
    except OSError:
        pass
    parent = os.path.dirname(os.path.abspath(site))
    fresh = tempfile.mkdtemp(prefix=".search-", dir=parent)  # same disk as the site: the swap is two renames
    try:
        result = subprocess.run([binary, "--site", site, "--output-path", fresh, "--quiet"],
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode:
            raise IndexFailed(f"pagefind failed on {site} (exit {result.returncode}):\n{result.stdout}{result.stderr}")
        with open(os.path.join(fresh, SOURCES), "w", encoding="ascii") as record:
            record.write(digest + "\n")
        os.chmod(fresh, 0o755)  # mkdtemp makes it 0700: a web server could not read it
        old = None
        if os.path.lexists(bundle):
            old = tempfile.mkdtemp(prefix=".search-old-", dir=parent)
            os.rename(bundle, os.path.join(old, BUNDLE))
        os.rename(fresh, bundle)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return True
