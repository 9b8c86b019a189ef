"""The status page: `GET /` on every agent, a plain HTML page that polls this agent's `/api/v1/status`.

Role: serve the three files of `agent/ui/` (HTML, CSS, JavaScript; packaged with the agent, no build step,
no external asset) with headers that keep the page self-contained: a Content-Security-Policy allowing
only this origin, no caching (a new agent version serves its own page), no MIME sniffing, no referrer.
The page renders whatever the status document holds (docs/api.md); a non-leader's agent forwards the
status request to the leader as the API does, so any agent shows the leader's view.

Must never: offer an action (the page is read-only: GET requests only; actions stay in the CLI and the
token-protected API), embed data or a token in the page (it fetches the data; the token, when
HA_STATUS_AUTH=token, is typed by the user and kept in the browser's sessionStorage), or read the files
on every request.
"""

from __future__ import annotations

from importlib.resources import files

import flask

PAGES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/ui/status.css": ("status.css", "text/css; charset=utf-8"),
    "/ui/status.js": ("status.js", "text/javascript; charset=utf-8"),
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _load() -> dict[str, tuple[bytes, str]]:
    ui = files("agent") / "ui"
    return {path: (ui.joinpath(name).read_bytes(), mime) for path, (name, mime) in PAGES.items()}


def install(app: flask.Flask) -> None:
    """Add the page's routes to `app` (GET only; Flask answers HEAD and OPTIONS, others get 405)."""
    content = _load()

    def serve(path: str) -> flask.Response:
        body, mime = content[path]
        resp = flask.Response(body, content_type=mime)
        resp.headers.update(HEADERS)
        return resp

    for path in PAGES:
        endpoint = "page_" + (path.strip("/").replace("/", "_").replace(".", "_") or "index")
        app.add_url_rule(path, endpoint, lambda p=path: serve(p), methods=["GET"])
