"""Small HTML pages for people in a browser (the install flow): escaped, uncached, no referrer.

Every value is escaped here; callers pass plain text. A page never holds a token, a code or a
``state``: the callback's URL carries the latter two, so pages also ask the browser not to send
it on as a ``Referer`` (``Referrer-Policy: no-referrer``) and not to keep them (``no-store``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from starlette.responses import HTMLResponse

#: Sent with every page and redirect of the install flow.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}

_STYLE = ("body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;"
          "line-height:1.5}code{background:#f3f3f3;padding:0 .2em}")


def page(status: int, title: str, paragraphs: Sequence[str], *,
         link: tuple[str, str] | None = None, items: Sequence[str] = ()) -> HTMLResponse:
    """A page: ``title`` as heading, ``paragraphs`` of text, an optional list of ``items`` and
    an optional ``(text, href)`` link; everything escaped."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    body += [f"<p>{html.escape(text)}</p>" for text in paragraphs]
    if items:
        body.append("<ul>" + "".join(f"<li><code>{html.escape(item)}</code></li>"
                                     for item in items) + "</ul>")
    if link is not None:
        text, href = link
        body.append(f'<p><a href="{html.escape(href, quote=True)}">{html.escape(text)}</a></p>')
    document = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
                f"<body>{''.join(body)}</body></html>")
    return HTMLResponse(document, status_code=status, headers=PAGE_HEADERS)
