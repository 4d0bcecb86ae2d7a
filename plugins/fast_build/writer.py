"""Pelican's writer, except that a page whose inputs did not change is neither rendered nor written.

Pelican offers get_writer to replace its writer, but no hook between choosing a
page and rendering it: write_file below is Writer.write_file (Pelican 4.12,
pinned in pelican_internals) with one question asked before each page is
rendered: may the run keep it (incremental)? The local context is made only
for the pages that are rendered, without copying the shared context for the
others.
"""
import logging
import os

from pelican import signals
from pelican.paginator import Paginator
from pelican.utils import get_relative_path, path_to_url, sanitised_join
from pelican.writers import Writer

from . import pelican_internals
from .run import run_of

logger = logging.getLogger(__name__)


class FastWriter(Writer):
    def write_file(self, name, template, context, relative_urls=False, paginated=None, template_name=None,
                   override_output=False, url=None, **kwargs):
        """Same pages, names and local contexts as Writer.write_file; kept pages are not rendered."""
        if not name:
            return
        run = run_of(self.settings)
        pages = run.pages if run is not None else None

        def write(extras, save_as):
            target = sanitised_join(self.output_path, save_as)
            path = pelican_internals.claim(self, target, override_output)
            if path == os.devnull:
                logger.info('Skipping "%s", not overwriting', target)
            relative = pages.relative(path) if pages is not None else None
            if relative is not None and pages.keep(relative, template, extras, context):
                signals.content_written.send(pages.live_path(relative), context={**context, **extras})
                return
            localcontext = {**context, **extras}
            if localcontext["localsiteurl"]:
                context["localsiteurl"] = localcontext["localsiteurl"]
            output = template.render(localcontext)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(path, "w", encoding="utf-8") as file:
                file.write(output)
            logger.info('Writing "%s"', path)
            signals.content_written.send(path, context=localcontext)

        def local(save_as, extra):
            """What Writer.write_file puts in a copy of the context, without the copy."""
            extras = {"localsiteurl": context.get("localsiteurl", None)}
            if relative_urls:
                relative_url = path_to_url(get_relative_path(save_as))
                extras["SITEURL"] = relative_url
                extras["localsiteurl"] = relative_url
            extras["output_file"] = save_as
            extras.update(extra)
            return extras

        if paginated is None:
            paginated = {key: val for key, val in kwargs.items() if key in {"articles", "dates"}}
        if paginated and template_name in self.settings["PAGINATED_TEMPLATES"]:
            per_page = self.settings["PAGINATED_TEMPLATES"][template_name] or self.settings["DEFAULT_PAGINATION"]
            paginators = {key: Paginator(name, url, val, self.settings, per_page) for key, val in paginated.items()}
            for page_num in range(next(iter(paginators.values())).num_pages):
                paginated_kwargs = kwargs.copy()
                for key, paginator in paginators.items():
                    previous_page = paginator.page(page_num) if page_num > 0 else None
                    page = paginator.page(page_num + 1)
                    next_page = paginator.page(page_num + 2) if page_num + 1 < paginator.num_pages else None
                    paginated_kwargs.update({f"{key}_paginator": paginator, f"{key}_page": page,
                                             f"{key}_previous_page": previous_page,
                                             f"{key}_next_page": next_page})
                write(local(page.save_as, paginated_kwargs), page.save_as)
        else:
            write(local(name, kwargs), name)
