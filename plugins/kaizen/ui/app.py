"""The Kaizen app on Airflow's API server, mounted at ``/kaizen`` by ``kaizen_plugin.py``
and shown inside the Airflow UI by its "Kaizen" nav entry (an external view: the UI
frames ``/kaizen/`` in an iframe of the same origin, so the UI's ``_token`` cookie
comes along).

- ``GET /kaizen/`` — the page (server-rendered HTML, no client code needed): the
  scorecard per grain, the latest review of each cadence with links to its documents,
  the quarantine count per day, coverage per source.
- ``GET /kaizen/api/page`` (everything), ``/kaizen/api/scorecard``, ``/api/reports``,
  ``/api/quarantine``, ``/api/coverage`` — the same as JSON.
- ``GET /kaizen/reports/<report>/<period_key>/`` — a review's outbox copy, when this
  server can read the outbox (a local stack): ``review.html``, or the daily review's
  Markdown rendered. Served in a CSP sandbox: nothing in a document runs as Airflow's
  origin.

Every route requires an authenticated Airflow user, checked by Airflow's own
dependency (``requires_authenticated``: the Bearer token or the ``_token`` cookie,
validated by the auth manager): without one, 401 (no token) or 403 (a bad one) — as
HTML with a sign-in link on the page, as JSON elsewhere. The warehouse is read with
:func:`kaizen.warehouse.get_engine`; when it cannot be read the answer is 503 saying why.
"""

# no ``from __future__ import annotations``: FastAPI reads the route handlers' annotations,
# and their types (Request) are imported inside create_app
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_TEMPLATE = "kaizen.html.j2"
DOCUMENT_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


@lru_cache(maxsize=1)
def templates():
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def create_app(engine_factory: Callable | None = None):
    """The FastAPI app; ``engine_factory`` (default :func:`kaizen.warehouse.get_engine`)
    gives the warehouse engine on each request."""
    import sqlalchemy as sa
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.responses import HTMLResponse, JSONResponse

    from kaizen import warehouse
    from kaizen.ui import queries

    engine_of = engine_factory or (lambda: warehouse.get_engine())  # looked up per request
    app = FastAPI(title="Kaizen", dependencies=[Depends(requires_authenticated())],
                  docs_url=None, redoc_url=None, openapi_url=None)

    def is_page(request: Request) -> bool:
        return "/api/" not in request.url.path

    def outbox_href(request: Request):
        root = request.scope.get("root_path", "").rstrip("/")
        return lambda report, key: f"{root}/reports/{report}/{key}/"

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException):
        if exc.status_code in (401, 403) and is_page(request):
            # Airflow's own login route, which hands over to the auth manager's login page
            api_root = request.scope.get("root_path", "").rstrip("/").removesuffix("/kaizen")
            login = f"{api_root}/api/v2/auth/login?{urlencode({'next': str(request.url)})}"
            html = templates().get_template(PAGE_TEMPLATE).render(
                data=None, refused={"status": exc.status_code, "detail": exc.detail, "login": login},
                unavailable=None)
            return HTMLResponse(html, status_code=exc.status_code)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(sa.exc.SQLAlchemyError)
    async def unavailable(request: Request, exc: sa.exc.SQLAlchemyError):
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        detail = (f"The Kaizen warehouse ({warehouse.warehouse_url(hide_password=True)}) cannot be read: {reason}. "
                  "If it is new, run a Kaizen DAG first (every run applies the DDL).")
        if is_page(request):
            html = templates().get_template(PAGE_TEMPLATE).render(data=None, refused=None, unavailable=detail)
            return HTMLResponse(html, status_code=503)
        return JSONResponse({"detail": detail}, status_code=503)

    def read(fn):
        with engine_of().connect() as conn:
            return fn(conn)

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request):
        data = read(lambda c: queries.page(c, outbox_href(request)))
        return templates().get_template(PAGE_TEMPLATE).render(data=data, refused=None, unavailable=None)

    @app.get("/api/page")
    def api_page(request: Request) -> dict:
        return read(lambda c: queries.page(c, outbox_href(request)))

    @app.get("/api/scorecard")
    def api_scorecard() -> list:
        return read(queries.scorecard)

    @app.get("/api/reports")
    def api_reports(request: Request) -> list:
        return read(lambda c: queries.latest_reports(c, outbox_href(request)))

    @app.get("/api/quarantine")
    def api_quarantine(days: int = queries.QUARANTINE_DAYS) -> dict:
        if not 1 <= days <= 366:
            raise HTTPException(422, f"days: {days} is not between 1 and 366")
        return read(lambda c: queries.quarantine_by_day(c, days))

    @app.get("/api/coverage")
    def api_coverage() -> list:
        def both(conn):
            return queries.coverage(conn, {c["grain"]: c["period_start"] for c in queries.scorecard(conn)})

        return read(both)

    @app.get("/reports/{report}/{period_key}/", response_class=HTMLResponse)
    def document(report: str, period_key: str):
        from kaizen.delivery import outbox
        from kaizen.period import Period

        try:
            if report not in queries.REVIEWS or Period.parse(period_key).grain != queries.REVIEWS[report]:
                raise ValueError
        except ValueError:
            raise HTTPException(404, f"no review {report!r} of period {period_key!r}") from None
        folder = outbox.folder(report, period_key)
        html = folder / "review.html"
        markdown = folder / f"{report}.md"
        if html.is_file():
            body = html.read_text(encoding="utf-8")
        elif markdown.is_file():
            from markdown_it import MarkdownIt

            rendered = MarkdownIt("commonmark", {"html": False}).enable("table").render(
                markdown.read_text(encoding="utf-8"))
            body = templates().get_template("document.html.j2").render(title=f"{report} {period_key}",
                                                                       body=rendered)
        else:
            raise HTTPException(404, f"no outbox copy of {report} {period_key} on this server: open the "
                                     "published document or the Slack thread instead")
        return HTMLResponse(body, headers={"Content-Security-Policy": DOCUMENT_CSP,
                                           "X-Content-Type-Options": "nosniff"})

    return app


class LazyApp:
    """An ASGI app that builds :func:`create_app` on its first request: the plugin module
    is imported by every Airflow process (scheduler, workers, DAG processor), and only
    the API server serves requests."""

    def __init__(self, factory: Callable = create_app):
        self._factory = factory
        self._app = None

    async def __call__(self, scope, receive, send):
        if self._app is None:
            self._app = self._factory()
        await self._app(scope, receive, send)
