"""The uploaded files the posts refer to: copied from a copy of wp-content/uploads into the site's
images folder, or listed as missing.

An upload is an address of the old site (or of its WordPress.com and Jetpack image hosts)
under /wp-content/uploads/, or on <blog>.files.wordpress.com. Its path under uploads/ is
kept: /wp-content/uploads/2019/05/photo.jpg becomes content/images/2019/05/photo.jpg, and
the link `{static}/images/2019/05/photo.jpg`, which Pelican checks and resolves. An upload
absent from UPLOADS keeps the link it will have (`/images/2019/05/photo.jpg`): the author
can drop the file there later. A resized copy (photo-300x200.jpg) that is absent is
replaced by its original when the original is there.

A path that climbs out of the folder (`..`) is refused: the export is untrusted, and must
not make the import copy a file from elsewhere on the disk.
"""
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

UPLOADS = re.compile(r"/wp-content/uploads/(?P<path>.+)$")
SIZED = re.compile(r"^(?P<stem>.+)-\d+x\d+(?P<ext>\.[A-Za-z0-9]+)$")
IMAGE_HOSTS = re.compile(r"^i\d\.wp\.com$")  # Jetpack's image CDN: i0.wp.com/<site>/wp-content/uploads/…


class Media:
    def __init__(self, site, uploads: Path | None, folder: str = "images"):
        self.site = site  # OldSite
        self.uploads = Path(uploads).resolve() if uploads else None
        self.folder = folder
        self.copies = {}  # path under the images folder -> file to copy
        self.missing = {}  # path under the images folder -> [where it is used]
        self.refused = {}  # address -> [where]
        self.originals = set()  # resized copies replaced by their original
        self._found = {}  # path under uploads/ -> file, or None: one look on the disk per path

    def upload_path(self, url: str) -> str | None:
        """The path under uploads/ of an address of an uploaded file, or None."""
        parts = urlsplit((url or "").strip())
        host = (parts.hostname or "").lower()
        path = unquote(parts.path)
        if IMAGE_HOSTS.match(host) and "/" in path.lstrip("/"):  # i0.wp.com/<host>/<path>: the file at <host>
            inner = urlsplit("https://" + parts.path.lstrip("/"))
            if inner.hostname and not inner.hostname.endswith(".files.wordpress.com") \
                    and not self.site.owns_host(inner.hostname):
                return None
            parts, host, path = inner, inner.hostname, unquote(inner.path)
        if host.endswith(".files.wordpress.com"):
            relative = path.lstrip("/")
        else:
            match = UPLOADS.search(path)
            if not match:
                return None
            if parts.netloc and not self.site.owns_host(host):
                return None
            if not parts.netloc and not parts.path.startswith("/"):
                return None
            relative = match["path"]
        return relative or None

    def link(self, url: str, where: str) -> str | None:
        """The site's link for an uploaded file, noting the copy to make or the file missing; None if not an upload."""
        relative = self.upload_path(url)
        if relative is None:
            return None
        pieces = relative.split("/")
        if any(piece in ("", ".", "..") or "\\" in piece or "\x00" in piece for piece in pieces):
            self.refused.setdefault(url, []).append(where)
            return ""  # the converter drops the image, or keeps the link text
        source = self._source(relative)
        if source is None:
            sized = SIZED.match(pieces[-1])
            original = "/".join(pieces[:-1] + [sized["stem"] + sized["ext"]]) if sized else None
            if original and self._source(original) is not None:
                self.originals.add(relative)
                relative, source = original, self._source(original)
        # Written as the file is named (Pelican looks the written path up first), only what would end a Markdown
        # link escaped: a percent-escaped name is found too, but Pelican's cache then warns about a missing file.
        public = f"/{self.folder}/{relative}".replace(" ", "%20").replace("(", "%28").replace(")", "%29")
        if source is None:
            self.note_missing(relative, where)
            return public
        self.copies[relative] = source
        return "{static}" + public

    def note_missing(self, path: str, where: str):
        """A file the posts show but the import cannot copy: listed in the summary."""
        places = self.missing.setdefault(path, [])
        if where not in places:
            places.append(where)

    def _source(self, relative: str) -> Path | None:
        if self.uploads is None:
            return None
        if relative not in self._found:
            path = (self.uploads / relative).resolve()
            self._found[relative] = path if path.is_relative_to(self.uploads) and path.is_file() else None
        return self._found[relative]
