"""How every command builds the site: Pelican in this process, staged beside output/, moved in on success.

`tasks.py` (make build, make publish) and the dev server (make serve) share
this; it sits above the plugins and the newsletter and may import both.
"""
