"""The core the build and the newsletter share: pure Python, no Pelican, no Starlette, no Jinja.

One concept a module, each with one rule that both sides follow:

    typography   French typographic rules (fix_text, fix_html)
    language     which language tags are French
    dates        dates in the site's time zone, in French (or English for an English post)
    urls         the public base URL, and links made absolute against it
    htmltext     HTML as one line of plain text (titles, summaries)
    header       the Markdown metadata header, exactly as Pelican's Markdown reader reads it
    records      the post records the build writes and `make send` reads

Nothing here is imported by this file: `import blogcore.typography` costs only what it uses.
"""
