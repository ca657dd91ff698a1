"""The offline HTML page: :func:`write_html`, :func:`html_page`, :func:`notebook_html`."""

from attncli.html.page import html_page, notebook_html, write_html

__all__ = ["html_page", "notebook_html", "write_html"]
