"""One Markdown parser per reader, reset between files, instead of a new one per file.

Pelican's MarkdownReader builds a markdown.Markdown for every file, and loading
the extensions costs a sixth of reading a post. Python-Markdown supports reusing
an instance: reset() between documents clears its state and every extension's.
The one thing Pelican changes on the instance is the metadata preprocessor, which
it removes to convert the Summary; it is put back before the next file.
"""
from markdown import Markdown
from pelican.readers import MarkdownReader
from pelican.utils import pelican_open


class ReusingMarkdownReader(MarkdownReader):
    """MarkdownReader.read (Pelican 4.12) on one reused Markdown instance."""

    _reused = None
    _meta = None  # (preprocessor, name, priority) as the meta extension registered it

    def read(self, source_path):
        self._source_path = source_path
        self._md = self._markdown()
        with pelican_open(source_path) as text:
            content = self._md.convert(text)
        metadata = self._parse_metadata(self._md.Meta) if hasattr(self._md, "Meta") else {}
        return content, metadata

    def _markdown(self) -> Markdown:
        md = self._reused
        if md is None or self._meta is None:
            md = Markdown(**self.settings["MARKDOWN"])
            priorities = [item.priority for item in getattr(md.preprocessors, "_priority", ()) if item.name == "meta"]
            if "meta" in md.preprocessors and priorities:  # else: a fresh instance every time, as Pelican does
                self._reused, self._meta = md, (md.preprocessors["meta"], "meta", priorities[0])
            return md
        if "meta" not in md.preprocessors:
            md.preprocessors.register(*self._meta)
        return md.reset()


def reuse_markdown(readers):
    """readers_init: Pelican's Markdown reader, wherever it is used, becomes the reusing one."""
    for extension, reader_class in list(readers.reader_classes.items()):
        if reader_class is MarkdownReader:
            readers.reader_classes[extension] = ReusingMarkdownReader
