"""The studio's web app: a small Starlette application over :class:`Studio` and the tab table.

Routes::

    GET  /                          the page (static/index.html; no build step, no CDN)
    GET  /static/...                its script and style sheet
    GET  /api/tabs                  every tab, whether it is available, its forms
    GET  /api/models?family=a,b     runs with a checkpoint and shipped models
    GET  /api/runs, /api/runs/ID    the run browser (and the augmentation studies in the runs folder)
    POST /api/tabs/TAB/ACTION       multipart form -> {"images": [...], "metrics": {...}}, or for a
                                    background action {"job": ID} (202)
    GET  /api/jobs/ID               a background job: state, progress, note, and its result
    GET  /files/runs/RUN/...        pictures inside run and study folders (nothing else)
    GET  /files/out/NAME            the studio's own outputs

Every error is a JSON ``{"error": "one line"}`` with a 4xx/5xx status that the page shows as
a message; inference runs in a worker thread, one request at a time, except background actions
(web/jobs.py), which run outside that lock while the page polls them.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.formparsers import MultiPartException
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles
except ImportError as e:  # pragma: no cover - depends on the installation
    from ..errors import PixelforgeError

    raise PixelforgeError(f"the studio needs the web extra: pip install 'pixelforge[web]' ({e.name} is missing)") from None
from anyio import to_thread

from .. import dryrun
from ..errors import PixelforgeError
from .jobs import JobLimit
from .studio import Busy, Studio
from .tabs import TABS, Field, Result, get_tab

log = logging.getLogger("pixelforge.web")
STATIC = Path(__file__).parent / "static"


def error(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _result_json(result: Result) -> dict:
    return {"images": [{"title": t, "url": f"/files/out/{n}"} for t, n in result.images],
            "metrics": result.metrics, "message": result.message, "layout": result.layout}


def _convert(f: Field, raw):
    """A form value -> the type the handler expects; PixelforgeError names the field."""
    f = f.resolved()
    label = f.label
    if f.type in ("image", "mask"):
        if raw is None or isinstance(raw, str):
            if f.required:
                raise PixelforgeError(f"{label}: choose an image file" if f.type == "image"
                                      else f"{label}: draw the region first")
            return None
        return raw  # bytes, decoded below (after the size check)
    raw = (raw or "").strip() if isinstance(raw, str) else ""
    if f.type == "bool":
        return raw.lower() in ("1", "true", "on", "yes")
    if raw == "":
        if f.default is not None and f.type not in ("run", "class", "text"):
            return f.default
        if f.required:
            raise PixelforgeError(f"{label}: a value is needed")
        return None
    if f.type in ("int", "float"):
        try:
            value = int(raw) if f.type == "int" else float(raw)
        except ValueError:
            raise PixelforgeError(f"{label}: {raw!r} is not a {'whole ' if f.type == 'int' else ''}number") from None
        if f.type == "float" and not math.isfinite(value):
            raise PixelforgeError(f"{label}: {raw!r} is not a finite number")
        if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
            raise PixelforgeError(f"{label}: {raw} is outside {f.min:g}..{f.max:g}")
        return value
    if f.type == "select" and raw not in f.options:
        raise PixelforgeError(f"{label}: choose one of {', '.join(f.options)}")
    if len(raw) > 200:
        raise PixelforgeError(f"{label}: too long")
    return raw


def create_app(studio: Studio | None = None, **options) -> Starlette:
    """The ASGI app; ``options`` go to :class:`Studio` when none is given."""
    studio = studio or Studio(**options)

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def tabs(request: Request) -> Response:
        specs = await to_thread.run_sync(lambda: [t.spec() for t in TABS])
        return JSONResponse({"tabs": specs, "limits": {"upload_mb": studio.max_upload_bytes / 2**20,
                                                        "megapixels": studio.max_pixels / 1e6}})

    async def models(request: Request) -> Response:
        families = [f for f in request.query_params.get("family", "").split(",") if f]
        return JSONResponse({"models": await to_thread.run_sync(studio.list_models, families or None)})

    async def runs(request: Request) -> Response:
        return JSONResponse({"runs": await to_thread.run_sync(studio.list_runs),
                             "studies": await to_thread.run_sync(studio.list_studies),
                             "runs_dir": studio.runs_dir.name})

    async def run_details(request: Request) -> Response:
        try:
            return JSONResponse(await to_thread.run_sync(studio.run_details, request.path_params["run"]))
        except PixelforgeError as e:
            return error(str(e), 404)

    async def act(request: Request) -> Response:
        tab = get_tab(request.path_params["tab"])
        if tab is None:
            return error(f"no tab {request.path_params['tab']!r}", 404)
        ok, message = tab.status()
        if not ok:
            return error(message, 501)
        origin = request.headers.get("origin")
        if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
            return error("cross-site request refused: use the studio's own page", 403)
        action = tab.action(request.path_params["action"])
        if action is None:
            return error(f"{tab.title} has no action {request.path_params['action']!r}", 404)
        length = request.headers.get("content-length", "")
        limit = studio.max_upload_bytes + 64 * 1024  # the images plus the form's other fields
        too_big = f"the upload is over the {studio.max_upload_bytes / 2**20:g} MB limit"
        if not length.isdigit():
            return error("a form upload needs a Content-Length", 411)
        if int(length) > limit:
            return error(too_big, 413)
        try:
            form = await request.form(max_files=4, max_fields=64, max_part_size=64 * 1024)
        except MultiPartException as e:
            return error(f"bad form: {e.message}", 400)
        except HTTPException as e:
            return error(f"bad form: {e.detail}", 400)
        except Exception as e:  # a malformed body
            return error(f"bad form: {type(e).__name__}", 400)
        try:
            values = {}
            try:
                for f in action.fields:
                    raw = form.get(f.name)
                    if hasattr(raw, "read"):  # an UploadFile
                        data = await raw.read(studio.max_upload_bytes + 1)
                        if len(data) > studio.max_upload_bytes:
                            return error(f"{f.label}: {too_big}", 413)
                        raw = data if data else None
                    values[f.name] = _convert(f, raw)
            finally:
                await form.close()

            def decode():
                for f in action.fields:
                    if f.type in ("image", "mask") and values[f.name] is not None:
                        values[f.name] = studio.decode_upload(values[f.name], f.label)

            if action.background:
                await to_thread.run_sync(decode)
                job = studio.jobs.start(lambda report: action.handler(studio, values, report), _result_json)
                return JSONResponse({"job": job}, status_code=202)

            def work():
                decode()
                return studio.exclusive(lambda: action.handler(studio, values))

            result = await to_thread.run_sync(work)
        except PixelforgeError as e:
            return error(str(e), 400)
        except (Busy, JobLimit) as e:
            return error(str(e), 503)
        except Exception as e:  # a bug: log the traceback on the server, a message in the page
            log.exception("studio: %s/%s failed", tab.name, action.name)
            return error(f"internal error in {tab.title}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
                         500)
        return JSONResponse(_result_json(result))

    async def job(request: Request) -> Response:
        status = studio.jobs.status(request.path_params["job"])
        return error("no such job", 404) if status is None else JSONResponse(status)

    async def run_file(request: Request) -> Response:
        try:
            path = studio.run_file(request.path_params["path"])
        except (FileNotFoundError, OSError, ValueError):
            return error("not found", 404)
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    async def out_file(request: Request) -> Response:
        try:
            path = studio.output_file(request.path_params["name"])
        except FileNotFoundError:
            return error("not found", 404)
        download = request.query_params.get("download")
        headers = {"Content-Disposition": f'attachment; filename="pixelforge-{path.name}"'} if download else {}
        return FileResponse(path, headers=headers)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.detail if isinstance(exc.detail, str) else "error", exc.status_code)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("studio: unhandled error on %s", request.url.path)
        return error("internal error; see the server log", 500)

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    routes = [
        Route("/", index),
        Route("/favicon.ico", favicon),
        Route("/api/tabs", tabs),
        Route("/api/models", models),
        Route("/api/runs", runs),
        Route("/api/runs/{run:path}", run_details),
        Route("/api/tabs/{tab}/{action}", act, methods=["POST"]),
        Route("/api/jobs/{job}", job),
        Route("/files/runs/{path:path}", run_file),
        Route("/files/out/{name}", out_file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error})
    app.state.studio = studio
    return app


def serve(runs_dir: str | os.PathLike = "runs", host: str = "127.0.0.1", port: int = 7860, **options) -> None:
    """Run the studio until interrupted (uvicorn)."""
    import uvicorn

    studio = Studio(runs_dir, **options)
    app = create_app(studio)
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    print(f"pixelforge studio: {where} (runs from {Path(runs_dir).resolve()}; Ctrl+C stops)", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"pixelforge studio: warning: listening on {host}: other machines can reach it", flush=True)
    if dryrun.active():
        print("pixelforge studio: dry run: the studio is built; not listening", flush=True)
        if studio.temporary_output:
            shutil.rmtree(studio.output_dir, ignore_errors=True)
        return
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        if studio.temporary_output:
            shutil.rmtree(studio.output_dir, ignore_errors=True)
