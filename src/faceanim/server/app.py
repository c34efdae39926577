"""The FastAPI application: job endpoints, the WebSocket stream, token auth and the request-size guard.

Routing only: uploads are checked by :mod:`faceanim.server.uploads`, jobs run in :mod:`faceanim.server.jobs`
(which calls the pipeline), streams in :mod:`faceanim.server.stream`.
"""

import contextlib
import importlib.util
import json
import math
import secrets
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, File, Form, HTTPException, Request, UploadFile, WebSocket
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from faceanim.errors import FaceAnimError
from faceanim.server.config import ServerConfig
from faceanim.server.jobs import Busy, JobManager, JobSpec, JobState, JobStatus
from faceanim.server.stream import CLOSE_BUSY, CLOSE_POLICY, parse_options, run_session
from faceanim.server.uploads import HEAD_BYTES, Checked, Kind, UploadError, check_upload, require_face, sniff

CHUNK = 1024 * 1024


# ------------------------------------------------------------------------------------------------ models


class ErrorBody(BaseModel):
    detail: str


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Names(BaseModel):
    names: list[str]


class JobInfo(BaseModel):
    id: str
    state: JobState
    frames_done: int
    frames_total: int | None
    error: str | None
    created: float
    finished: float | None
    result_url: str | None


def _info(s: JobStatus) -> JobInfo:
    url = f"/v1/jobs/{s.id}/result" if s.result else None
    return JobInfo(
        id=s.id,
        state=s.state,
        frames_done=s.frames_done,
        frames_total=s.frames_total,
        error=s.error,
        created=s.created,
        finished=s.finished,
        result_url=url,
    )


def speech_available() -> bool:
    """Audio drivers work when the speech pipeline, torch and the audio-to-motion weights are all installed."""
    try:
        if importlib.util.find_spec("faceanim.pipeline.speak") is None or importlib.util.find_spec("torch") is None:
            return False
        from faceanim.audio.weights import default_weights_path

        return default_weights_path().is_file()
    except (ImportError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------ request size


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413 before they are parsed or spooled to disk."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(send)
            return
        seen = 0
        over = False
        started = False

        async def limited_receive():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    over = True
                    raise _TooLarge
            return message

        async def guarded_send(message):
            nonlocal started
            if over:  # whatever the app answers to the aborted body, the client gets the 413
                return
            started = True
            await send(message)

        with contextlib.suppress(_TooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if over and not started:
            await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.limit // (1024 * 1024)} MB"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


# ------------------------------------------------------------------------------------------------ uploads


async def _store(upload: UploadFile, directory: Path, field: str, max_bytes: int) -> tuple[Path, Kind]:
    """Copy an upload into the job dir as ``<field><sniffed suffix>``; the client's file name is ignored."""
    head = await upload.read(HEAD_BYTES)
    if not head:
        raise UploadError(400, f"{field}: the upload is empty")
    kind = sniff(head)
    if kind is None:
        raise UploadError(415, f"{field}: not an image, video or audio file faceanim can read")
    path = directory / f"{field}{kind.suffix}"
    size = len(head)
    with open(path, "wb") as fh:
        fh.write(head)
        while chunk := await upload.read(CHUNK):
            size += len(chunk)
            if size > max_bytes:
                raise UploadError(413, f"{field}: larger than the {max_bytes // (1024 * 1024)} MB allowed")
            fh.write(chunk)
    return path, kind.kind


def _check_source(path: Path, kind: Kind, config: ServerConfig) -> Checked:
    if kind != "image":
        raise UploadError(415, "source: the portrait must be an image (JPEG, PNG, WebP, BMP or TIFF)")
    checked = check_upload(path, kind, "source", config.limits)
    from faceanim.media.image import read_image

    require_face(read_image(path), "source")
    return checked


def _check_driving(path: Path, kind: Kind, config: ServerConfig) -> Checked:
    checked = check_upload(path, kind, "driving", config.limits)
    if checked.kind == "audio" and not speech_available():
        raise UploadError(415, "driving: audio drivers need the speech pipeline and its weights, which this "
                               "server does not have")
    if kind == "image":
        from faceanim.media.image import read_image

        require_face(read_image(path), "driving")
    return checked


# ------------------------------------------------------------------------------------------------ the app


class Resources:
    """The job manager and the streams' thread pool: made on first use (or at startup), released at shutdown.

    Lazy, so an app whose lifespan runs more than once (test transports) or not at all still works.
    """

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._jobs: JobManager | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def jobs(self) -> JobManager:
        if self._jobs is None:
            c = self.config
            self._jobs = JobManager(c.jobs_dir, c.job_workers, c.retention_seconds, c.limits.active_jobs)
        return self._jobs

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            n = 2 * self.config.limits.sessions + 2
            self._executor = ThreadPoolExecutor(max_workers=n, thread_name_prefix="faceanim-ws")
        return self._executor

    def close(self) -> None:
        """Cancel the jobs, remove every job directory and stop the pool."""
        jobs, executor, self._jobs, self._executor = self._jobs, self._executor, None, None
        if jobs is not None:
            jobs.close()
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """The server's ASGI app; jobs and sessions are cleaned up when it shuts down."""
    from faceanim import __version__
    from faceanim.motion.templates import BUNDLED_TEMPLATES
    from faceanim.render.registry import available_renderers, default_renderer

    config = config or ServerConfig()
    limits = config.limits
    renderers = available_renderers()
    default_name = default_renderer()
    Template = Enum("Template", {n: n for n in BUNDLED_TEMPLATES}, type=str)
    Renderer = Enum("Renderer", {n: n for n in renderers}, type=str)
    resources = Resources(config)
    sessions = {"active": 0}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resources.jobs  # noqa: B018 - create the job directory root at startup
        yield
        resources.close()

    app = FastAPI(
        title="faceanim",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Animate a portrait from a driving video, image, template"
        + (" or audio" if speech_available() else "")
        + ", as jobs or as a WebSocket stream (ws://HOST:PORT/v1/stream: send the portrait, then JPEG frames, or "
        "16 kHz PCM with ?driver=audio; receive animated JPEGs). "
        "Every output is marked as synthetic media unless provenance=false.",
    )
    app.state.resources = resources
    bearer = HTTPBearer(auto_error=False)

    def authorised(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        if config.token is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(given.encode(), config.token.encode()):
            raise HTTPException(401, "missing or wrong token", headers={"WWW-Authenticate": "Bearer"})

    errors = {code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 415, 422, 503)}
    auth = [Depends(authorised)] if config.token else []  # the spec declares auth only when it is required

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, exc: UploadError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.get("/v1/health", response_model=Health, summary="the server is up")
    async def health() -> Health:
        return Health(status="ok", version=__version__)

    @app.get(
        "/v1/renderers",
        response_model=Names,
        dependencies=auth,
        responses=errors,
        summary="renderers a job or stream can use",
    )
    async def list_renderers() -> Names:
        return Names(names=renderers)

    @app.get(
        "/v1/templates",
        response_model=Names,
        dependencies=auth,
        responses=errors,
        summary="bundled motion templates (the template field of a job)",
    )
    async def list_templates() -> Names:
        return Names(names=list(BUNDLED_TEMPLATES))

    @app.post(
        "/v1/jobs",
        response_model=JobInfo,
        status_code=202,
        dependencies=auth,
        responses=errors,
        summary="create a job: a portrait plus a driving upload (video, image or audio) or a template",
    )
    async def create_job(
        source: Annotated[UploadFile, File(description="the portrait (image)")],
        driving: Annotated[UploadFile | None, File(description="driving video, image or audio")] = None,
        template: Annotated[Template | None, Form(description="a bundled motion template instead of driving")] = None,
        renderer: Annotated[Renderer, Form()] = Renderer(default_name),
        mode: Annotated[Literal["relative", "absolute"], Form()] = "relative",
        no_pose: Annotated[bool, Form()] = False,
        no_expression: Annotated[bool, Form()] = False,
        expression_scale: Annotated[float, Form(ge=0.0, le=3.0)] = 1.0,
        eyes_open: Annotated[float | None, Form(ge=0.0, le=1.0)] = None,
        lip_open: Annotated[float | None, Form(ge=0.0, le=1.0)] = None,
        smoothing: Annotated[float, Form(ge=0.0, le=10.0)] = 1.0,
        face: Annotated[int, Form(ge=0, le=7)] = 0,
        crop_only: Annotated[bool, Form()] = False,
        audio: Annotated[bool, Form(description="mux the driving video's audio")] = True,
        provenance: Annotated[bool, Form(description="mark the output as synthetic (recommended)")] = True,
        max_frames: Annotated[int | None, Form(ge=1, le=100_000)] = None,
    ) -> JSONResponse:
        if (driving is None) == (template is None):
            raise UploadError(400, "give exactly one of driving (an upload) or template (a bundled name)")
        try:
            job_id, directory = resources.jobs.reserve()
        except Busy as e:
            raise HTTPException(503, e.message) from None
        try:
            src_path, src_kind = await _store(source, directory, "source", limits.upload_bytes)
            await run_in_threadpool(_check_source, src_path, src_kind, config)
            speech = False
            if driving is not None:
                drv_path, drv_kind = await _store(driving, directory, "driving", limits.upload_bytes)
                checked = await run_in_threadpool(_check_driving, drv_path, drv_kind, config)
                spec_driving, speech = str(drv_path), checked.kind == "audio"
                output = directory / ("result.png" if checked.kind == "image" else "result.mp4")
            else:
                assert template is not None
                spec_driving, output = f"template:{template.value}", directory / "result.mp4"
            options = _job_options(
                renderer.value,
                mode,
                no_pose,
                no_expression,
                expression_scale,
                eyes_open,
                lip_open,
                smoothing,
                face,
                crop_only,
                audio,
                provenance,
                max_frames,
                cap=math.ceil(limits.seconds * 60),
            )
            speech_seconds = min(limits.seconds, max_frames / 25) if max_frames else limits.seconds  # speech: 25 fps
            spec = JobSpec(src_path, spec_driving, output, options, speech, speech_seconds if speech else None)
            status = resources.jobs.submit(job_id, spec)
        except BaseException:
            resources.jobs.discard(job_id)
            raise
        return JSONResponse(
            _info(status).model_dump(mode="json"), status_code=202, headers={"Location": f"/v1/jobs/{job_id}"}
        )

    def _known(job_id: str) -> JobStatus:
        status = resources.jobs.status(job_id)
        if status is None:
            raise HTTPException(404, "no such job (unknown id, or deleted after its retention time)")
        return status

    job_id_param = PathParam(max_length=64, description="the id returned when the job was created")

    @app.get(
        "/v1/jobs/{job_id}",
        response_model=JobInfo,
        dependencies=auth,
        responses=errors,
        summary="a job's state and progress",
    )
    async def get_job(job_id: Annotated[str, job_id_param]) -> JobInfo:
        return _info(_known(job_id))

    @app.get(
        "/v1/jobs/{job_id}/result",
        dependencies=auth,
        responses={
            **errors,
            200: {"content": {"video/mp4": {}, "image/png": {}}, "description": "the animated video or image"},
        },
        response_class=FileResponse,
        summary="download a finished job's result",
    )
    async def get_result(job_id: Annotated[str, job_id_param]) -> FileResponse:
        status = _known(job_id)
        path = resources.jobs.result(job_id)
        if path is None or not path.is_file():
            raise HTTPException(409, f"the job is {status.state.value}, there is no result to download")
        media = "image/png" if path.suffix == ".png" else "video/mp4"
        return FileResponse(path, media_type=media, filename=f"faceanim-{job_id}{path.suffix}")

    @app.delete(
        "/v1/jobs/{job_id}",
        response_model=JobInfo,
        dependencies=auth,
        responses=errors,
        summary="cancel a job (or delete a finished one) and remove its files",
    )
    async def delete_job(job_id: Annotated[str, job_id_param]) -> JobInfo:
        status = resources.jobs.cancel(job_id)
        if status is None:
            raise HTTPException(404, "no such job (unknown id, or deleted after its retention time)")
        return _info(status)

    @app.websocket("/v1/stream")
    async def stream(ws: WebSocket) -> None:
        if config.token is not None:
            header = ws.headers.get("authorization", "")
            given = ws.query_params.get("token") or (header[7:] if header.lower().startswith("bearer ") else "")
            if not secrets.compare_digest(given.encode(), config.token.encode()):
                await ws.close(CLOSE_POLICY)
                return
        try:
            options = parse_options(dict(ws.query_params), renderers)
        except FaceAnimError as e:
            await ws.accept()
            await ws.send_json({"type": "error", "message": str(e)})
            await ws.close(CLOSE_POLICY)
            return
        await ws.accept()
        if sessions["active"] >= limits.sessions:
            await ws.send_json({"type": "error", "message": f"{limits.sessions} sessions are running; try later"})
            await ws.close(CLOSE_BUSY)
            return
        sessions["active"] += 1
        try:
            await run_session(ws, options, limits, resources.executor)
        finally:
            sessions["active"] -= 1

    app.add_middleware(BodyLimit, limit=2 * limits.upload_bytes + CHUNK)
    return app


def _job_options(
    renderer: str,
    mode: str,
    no_pose: bool,
    no_expression: bool,
    expression_scale: float,
    eyes_open: float | None,
    lip_open: float | None,
    smoothing: float,
    face: int,
    crop_only: bool,
    audio: bool,
    provenance: bool,
    max_frames: int | None,
    cap: int,
):
    """The pipeline's job options from the form's fields (``max_frames`` capped at ``cap``)."""
    from faceanim.motion.transfer import TransferConfig
    from faceanim.pipeline.animator import AnimatorConfig
    from faceanim.pipeline.run import JobOptions
    from faceanim.pipeline.session import SessionConfig

    transfer = TransferConfig(
        mode=mode,
        pose=not no_pose,
        expression=not no_expression,  # type: ignore[arg-type]
        expression_scale=expression_scale,
        eyes_open=eyes_open,
        lip_open=lip_open,
    )
    return JobOptions(
        animator=AnimatorConfig(renderer=renderer, transfer=transfer, crop_only=crop_only),
        session=SessionConfig(smoothing=smoothing),
        face_index=face,
        audio=audio,
        provenance=provenance,
        max_frames=min(max_frames or cap, cap),
        progress=False,
    )
