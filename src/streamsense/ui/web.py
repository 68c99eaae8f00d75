"""The UI's web app (Starlette, mounted at ``/ui`` by ``streamsense serve`` and served alone
by ``streamsense ui``): pages rendered on the server with Jinja2, their live parts polled by
htmx, charts drawn by uPlot from JSON (both vendored in static/ with their licences).

    GET  /ui/                        → /ui/overview
    GET  /ui/{page}                  overview, streams, decisions, features, models
    GET  /ui/{page}/live             the page's live part (htmx swaps it every 2 s)
    GET  /ui/api/chart/{name}        a chart's series as JSON
    GET  /ui/confirm/{action}        the confirmation page of a state-changing action
    POST /ui/actions/{action}        do it (CSRF token + confirm=yes), logged
    GET|POST /ui/login, POST /ui/logout
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from streamsense.errors import StreamsenseError
from streamsense.ui import formats
from streamsense.ui.actions import ACTIONS, ActionError, perform
from streamsense.ui.auth import COOKIE, UiAuth
from streamsense.ui.charts import CHARTS
from streamsense.ui.context import UiContext
from streamsense.ui.page_data import PAGES
from streamsense.ui.sampler import Sampler

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
MAX_FORM_BYTES = 16 * 1024
# Browsers keep a Secure cookie from plain HTTP only on these hosts.
LOOPBACK = ("localhost", "127.0.0.1", "::1", "[::1]")


def create_ui(
    context: UiContext, *, root: str = "/ui", sampler: Sampler | None = None
) -> Starlette:
    """The UI of ``context``; ``root`` is where it is mounted (links are built on it)."""
    templates = _templates()
    auth = UiAuth(context.api_key)
    sampled = sampler or Sampler(context)
    ui = _Ui(context, sampled, auth, templates, root.rstrip("/"))
    routes = [
        Route("/", ui.home),
        Route("/login", ui.login, methods=["GET", "POST"]),
        Route("/logout", ui.logout, methods=["POST"]),
        Route("/api/chart/{name}", ui.chart),
        Route("/confirm/{action}", ui.confirm),
        Route("/actions/{action}", ui.act, methods=["POST"]),
        Route("/{page}", ui.page),
        Route("/{page}/live", ui.live),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    app = Starlette(routes=routes)  # the sampler is a daemon thread: no shutdown hook
    app.state.sampler = sampled
    return app


@cache
def _templates() -> Environment:
    """One environment per process: templates are compiled once, whatever the UIs."""
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
    )
    templates.filters.update(formats.FILTERS)
    for name in templates.list_templates():  # compiled now, not on a page's first visit
        templates.get_template(name)
    return templates


class _Ui:
    def __init__(
        self, context: UiContext, sampler: Sampler, auth: UiAuth, templates: Environment, root: str
    ) -> None:
        self.context, self.sampler, self.auth = context, sampler, auth
        self.templates, self.root = templates, root

    # -- pages ------------------------------------------------------------------------------

    async def home(self, request: Request) -> Response:
        return RedirectResponse(f"{self.root}/overview", 303)

    # Pages and charts read the broker (blocking calls): plain functions, which Starlette
    # runs in its thread pool, so a page never holds up the API's event loop.
    def page(self, request: Request) -> Response:
        return self._render_page(request, live=False)

    def live(self, request: Request) -> Response:
        return self._render_page(request, live=True)

    def _render_page(self, request: Request, *, live: bool) -> Response:
        name = request.path_params["page"]
        if name not in PAGES:
            return HTMLResponse("no such page", 404)
        refused = self._refusal(request, page=not live)
        if refused is not None:
            return refused
        try:
            data = PAGES[name](self.context, self.sampler, dict(request.query_params))
        except StreamsenseError as error:
            data = {"error": str(error)}
        self.sampler.touch()  # after the page's own reads: its first sample is not waited for
        template = f"{name}_live.html" if live else f"{name}.html"
        return self._html(request, template, page=name, **data)

    def chart(self, request: Request) -> Response:
        refused = self._refusal(request, page=False)
        if refused is not None:
            return refused
        draw = CHARTS.get(request.path_params["name"])
        if draw is None:
            return JSONResponse({"error": "no such chart"}, 404)
        drawn = draw(self.context, self.sampler).as_json()
        self.sampler.touch()
        return JSONResponse(drawn)

    # -- actions ----------------------------------------------------------------------------

    async def confirm(self, request: Request) -> Response:
        refused = self._refusal(request, page=True)
        if refused is not None:
            return refused
        action = ACTIONS.get(request.path_params["action"])
        if action is None:
            return HTMLResponse("no such action", 404)
        form = {f: request.query_params.get(f, "") for f in action.fields}
        return self._html(
            request, "confirm.html", page="", action=request.path_params["action"],
            title=action.title, description=action.describe(form), form=form,
        )  # fmt: skip

    async def act(self, request: Request) -> Response:
        refused = self._refusal(request, page=False)
        if refused is not None:
            return refused
        form = await _form(request)
        cookie = request.cookies.get(COOKIE, "")
        if not self.auth.csrf_ok(cookie, form.get("csrf", "")):
            return HTMLResponse("stale or missing form token: open the page again", 403)
        if form.get("confirm") != "yes":
            return HTMLResponse("not confirmed", 400)
        who = "bearer" if request.headers.get("authorization") else "session"
        try:
            done = perform(self.context, request.path_params["action"], form, who)
        except (ActionError, StreamsenseError, ValueError) as error:
            return self._html(request, "done.html", page="", message=str(error), failed=True)
        return self._html(request, "done.html", page="", message=done, failed=False)

    # -- login ------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        wanted = _local(request.query_params.get("next", ""), f"{self.root}/overview")
        plain = request.url.scheme == "http" and request.url.hostname not in LOOPBACK
        if request.method == "GET":
            return self._html(
                request, "login.html", page="", next=wanted, failed=False, plain=plain
            )
        form = await _form(request)
        wanted = _local(form.get("next", ""), wanted)
        if not self.auth.key_matches(form.get("key", "")):
            log.warning("UI login refused from %s", request.client.host if request.client else "?")
            return self._html(
                request, "login.html", page="", next=wanted, failed=True, plain=plain, status=401
            )
        answer = RedirectResponse(wanted, 303)
        answer.set_cookie(
            COOKIE, self.auth.new_session(), max_age=self.auth.session_s, httponly=True,
            secure=True, samesite="strict", path=self.root or "/",
        )  # fmt: skip
        return answer

    async def logout(self, request: Request) -> Response:
        answer = RedirectResponse(f"{self.root}/login", 303)
        answer.delete_cookie(COOKIE, path=self.root or "/")
        return answer

    # -- helpers ----------------------------------------------------------------------------

    def _refusal(self, request: Request, *, page: bool) -> Response | None:
        """None if the request may see data; else the login page (pages) or a 401."""
        authorization = request.headers.get("authorization", "")
        if self.auth.allowed(authorization, request.cookies.get(COOKIE, "")):
            return None
        if page:
            wanted = quote(
                request.url.path + (f"?{request.url.query}" if request.url.query else "")
            )
            return RedirectResponse(f"{self.root}/login?next={wanted}", 303)
        return JSONResponse({"error": "log in or send Authorization: Bearer <key>"}, 401)

    def _html(self, request: Request, template: str, *, status: int = 200, **data: Any) -> Response:
        cookie = request.cookies.get(COOKIE, "")
        body = self.templates.get_template(template).render(
            root=self.root, name=self.context.name, csrf=self.auth.csrf_token(cookie),
            keyed=not self.auth.open, **data,
        )  # fmt: skip
        return HTMLResponse(body, status)


async def _form(request: Request) -> dict[str, str]:
    """A url-encoded form body, bounded (no multipart parser needed)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            break
    return dict(parse_qsl(body[:MAX_FORM_BYTES].decode(errors="replace")))


def _local(wanted: str, default: str) -> str:
    """Only a path on this site (no open redirect to another)."""
    return wanted if wanted.startswith("/") and not wanted.startswith("//") else default
