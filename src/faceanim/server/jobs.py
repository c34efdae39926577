"""File jobs for the server: one temp directory per job, a small worker pool, progress, cancel, retention."""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from faceanim.errors import FaceAnimError
from faceanim.pipeline.run import JobOptions

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int | None], None]


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (JobState.QUEUED, JobState.RUNNING)


class Busy(FaceAnimError):
    """Too many jobs are queued or running."""


@dataclass(frozen=True)
class JobSpec:
    """What to render; every path is inside the job's directory and chosen by the server."""

    source: Path
    driving: str  # a stored upload's absolute path, or ``template:NAME`` for a validated bundled name
    output: Path
    options: JobOptions
    speech: bool = False  # the driver is an audio file (``faceanim.pipeline.speak``)
    max_seconds: float | None = None  # speech: the longest audio to animate


@dataclass(frozen=True)
class JobStatus:
    id: str
    state: JobState
    frames_done: int
    frames_total: int | None
    error: str | None
    created: float  # Unix time
    finished: float | None
    result: str | None  # the result's file name once done (result.mp4 or result.png)


class _Job:
    """Mutable job record; only touched under the manager's lock."""

    def __init__(self, job_id: str, directory: Path) -> None:
        self.id = job_id
        self.dir = directory
        self.state = JobState.QUEUED
        self.done = 0
        self.total: int | None = None
        self.error: str | None = None
        self.created = time.time()
        self.finished: float | None = None
        self.output: Path | None = None
        self.cancel = threading.Event()
        self.future: Future | None = None

    def status(self) -> JobStatus:
        done = self.state == JobState.DONE and self.output is not None
        return JobStatus(
            self.id,
            self.state,
            self.done,
            self.total,
            self.error,
            self.created,
            self.finished,
            self.output.name if done and self.output else None,
        )


def run_job(spec: JobSpec, on_progress: ProgressFn, cancel: threading.Event) -> None:
    """Render one job with the pipeline (``speak_file`` for an audio driver, else ``animate_file``)."""
    o = spec.options
    if spec.speech:
        from faceanim.pipeline.speak import SpeakOptions, speak_file

        speak = SpeakOptions(animator=o.animator, face_index=o.face_index if isinstance(o.face_index, int) else 0,
                             provenance=o.provenance, max_seconds=spec.max_seconds, progress=False)
        speak_file(str(spec.source), spec.driving, str(spec.output), speak, on_progress=on_progress, cancel=cancel)
        return
    from faceanim.pipeline.run import animate_file

    animate_file(str(spec.source), spec.driving, str(spec.output), o, on_progress=on_progress, cancel=cancel)


def public_error(exc: FaceAnimError, job_dir: Path) -> str:
    """The error for the client: a job file by its name (``driving.mp4``), any other server path left out."""
    path = Path(exc.path) if exc.path else None
    if path is None or not path.is_relative_to(job_dir):
        return exc.message.replace(f"{job_dir}/", "")
    where = str(path.relative_to(job_dir)) + (f" (frame {exc.frame})" if exc.frame is not None else "")
    return f"{where}: {exc.message}"


def _is_cancelled_error(exc: BaseException) -> bool:
    from faceanim import errors

    cancelled = getattr(errors, "Cancelled", None)
    return cancelled is not None and isinstance(exc, cancelled)


class JobManager:
    """Owns the job directories under one root; finished jobs are deleted ``retention`` seconds after they end."""

    def __init__(
        self,
        root: str | Path | None,
        workers: int,
        retention: float,
        max_active: int,
        runner: Callable[[JobSpec, ProgressFn, threading.Event], None] = run_job,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="faceanim-serve-", dir=root))
        self.retention = retention
        self.max_active = max_active
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="faceanim-job")
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep_loop, name="faceanim-job-sweeper", daemon=True)
        self._sweeper.start()

    # ------------------------------------------------------------------------------------------ lifecycle

    def reserve(self) -> tuple[str, Path]:
        """A new job id and its empty directory (uploads are stored here before :meth:`submit`)."""
        with self._lock:
            active = sum(j.state in ACTIVE for j in self._jobs.values())
            if active >= self.max_active:
                raise Busy(f"{active} jobs are already queued or running; try again later")
            job_id = secrets.token_hex(16)
            directory = self.root / job_id
            directory.mkdir()
            self._jobs[job_id] = _Job(job_id, directory)
            return job_id, directory

    def discard(self, job_id: str) -> None:
        """Forget a reserved job whose uploads were rejected, and remove its files."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is not None:
            shutil.rmtree(job.dir, ignore_errors=True)

    def submit(self, job_id: str, spec: JobSpec) -> JobStatus:
        with self._lock:
            job = self._jobs[job_id]
            job.future = self._pool.submit(self._run, job, spec)
            return job.status()

    def _run(self, job: _Job, spec: JobSpec) -> None:
        with self._lock:
            if job.cancel.is_set():
                return
            job.state = JobState.RUNNING

        def progress(done: int, total: int | None) -> None:
            with self._lock:
                job.done, job.total = done, total

        state, error = JobState.DONE, None
        try:
            self._runner(spec, progress, job.cancel)
        except Exception as exc:
            if job.cancel.is_set() or _is_cancelled_error(exc):
                state = JobState.CANCELLED
            elif isinstance(exc, FaceAnimError):
                state, error = JobState.FAILED, public_error(exc, job.dir)
            else:
                log.exception("job %s failed", job.id)
                state, error = JobState.FAILED, f"internal error ({exc.__class__.__name__})"
        with self._lock:
            if job.cancel.is_set():
                state = JobState.CANCELLED
            job.state, job.error, job.finished = state, error, time.time()
            if state == JobState.DONE:
                job.output = spec.output
                job.total = job.done  # the driver's length may be a bound (max_frames) rather than the count
            removed = job.id not in self._jobs
        if state == JobState.CANCELLED or removed:  # nothing of a cancelled job is kept
            shutil.rmtree(job.dir, ignore_errors=True)

    def status(self, job_id: str) -> JobStatus | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.status()

    def result(self, job_id: str) -> Path | None:
        """The finished result's path (None unless the job is done)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state != JobState.DONE or job.output is None:
                return None
            return job.output

    def cancel(self, job_id: str) -> JobStatus | None:
        """Stop a queued or running job (or delete a finished one) and remove its files; None if unknown."""
        with self._lock:
            job = self._jobs.pop(job_id, None)
            if job is None:
                return None
            job.cancel.set()
            running = job.state == JobState.RUNNING
            if job.state == JobState.QUEUED:
                if job.future is not None:
                    job.future.cancel()
                job.state, job.finished = JobState.CANCELLED, time.time()
            elif running:
                job.state = JobState.CANCELLED
            status = job.status()
        if not running:  # a running job removes its own directory when its worker returns
            shutil.rmtree(job.dir, ignore_errors=True)
        return status

    def sweep(self, now: float | None = None) -> int:
        """Delete finished jobs older than the retention time; returns how many were deleted."""
        now = time.time() if now is None else now
        with self._lock:
            old = [
                j
                for j in self._jobs.values()
                if j.state not in ACTIVE and j.finished is not None and now - j.finished >= self.retention
            ]
            for j in old:
                del self._jobs[j.id]
        for j in old:
            shutil.rmtree(j.dir, ignore_errors=True)
        return len(old)

    def _sweep_loop(self) -> None:
        interval = min(30.0, max(0.05, self.retention / 4))
        while not self._stop.wait(interval):
            with contextlib.suppress(Exception):
                self.sweep()

    def close(self) -> None:
        """Cancel everything, wait for the workers and remove every job directory."""
        self._stop.set()
        with self._lock:
            for job in self._jobs.values():
                job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._sweeper.join(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)
