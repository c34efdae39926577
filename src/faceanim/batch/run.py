"""Run a batch: skip finished outputs, render the rest on a process pool (or as Ray tasks), list the failures.

Every job is one :func:`faceanim.pipeline.run.animate_file` call, whose atomic write means an output that
exists is complete: rerunning an interrupted batch resumes it.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path

from tqdm import tqdm

from faceanim.batch.plan import BatchItem
from faceanim.errors import FaceAnimError
from faceanim.pipeline.run import JobOptions


@dataclass(frozen=True)
class ItemResult:
    item: BatchItem
    frames: int = 0
    error: str | None = None  # one line; None when the output was written


@dataclass(frozen=True)
class BatchReport:
    total: int
    done: int
    skipped: int  # already finished before this run
    failed: tuple[ItemResult, ...]


def _animate(item: BatchItem, options: JobOptions) -> int:
    """One job with the pipeline: ``speak_file`` for an audio driver, else ``animate_file``; returns its frames."""
    from faceanim.media.kinds import is_audio_path

    if is_audio_path(item.driving):
        from faceanim.pipeline.speak import SpeakOptions, speak_file

        face = options.face_index if isinstance(options.face_index, int) else 0
        seconds = options.max_frames / 25 if options.max_frames else None  # speech runs at 25 fps
        speak = SpeakOptions(animator=options.animator, face_index=face, provenance=options.provenance,
                             max_seconds=seconds, progress=False)
        return speak_file(item.source, item.driving, item.output, speak).frames
    from faceanim.pipeline.run import animate_file

    return animate_file(item.source, item.driving, item.output, replace(options, progress=False)).frames


def run_item(item: BatchItem, options: JobOptions) -> ItemResult:
    """Render one job; any error becomes the result's message (a batch never stops for one bad pair)."""
    try:
        frames = _animate(item, options)
    except FaceAnimError as e:
        return ItemResult(item, error=" ".join(str(e).split()))
    except OSError as e:
        return ItemResult(item, error=f"{e.filename or item.output}: {e.strerror or e}")
    except Exception as e:  # a bug, not the user's input: still reported, never fatal to the batch
        return ItemResult(item, error=f"internal error: {e.__class__.__name__}: {' '.join(str(e).split())}")
    return ItemResult(item, frames=frames)


def _finished(item: BatchItem) -> bool:
    p = Path(item.output)
    return p.is_file() and p.stat().st_size > 0


def remove_stale_temps(items: Sequence[BatchItem]) -> int:
    """Delete temp files an interrupted run left beside planned outputs (``name.tmp-1a2b3c4d.mp4``)."""
    removed = 0
    for item in items:
        out = Path(item.output)
        if not out.parent.is_dir():
            continue
        pattern = re.compile(re.escape(out.stem) + r"\.tmp-[0-9a-f]{8}" + re.escape(out.suffix) + "$")
        for f in out.parent.glob(f"{out.stem}.tmp-*{out.suffix}"):
            if pattern.match(f.name):
                f.unlink(missing_ok=True)
                removed += 1
    return removed


def _init_worker() -> None:
    """Workers leave ^C to the parent (it terminates the pool) and keep third-party warnings quiet."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"google\.protobuf.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _local(pending: list[BatchItem], options: JobOptions, workers: int) -> Iterator[ItemResult]:
    if workers == 1:
        for item in pending:
            yield run_item(item, options)
        return
    context = multiprocessing.get_context("spawn")  # no fork of a process that already runs threads
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
        futures = {pool.submit(run_item, item, options): item for item in pending}
        try:
            for future in as_completed(futures):
                try:
                    yield future.result()
                except BrokenProcessPool:  # a worker was killed (out of memory, a crash): the rest can rerun
                    yield ItemResult(futures[future], error="a worker process died (out of memory or a crash); "
                                                            "run the batch again to retry")
        except BaseException:  # interrupted: stop the workers now; unfinished outputs were never renamed into place
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _ray_item(item: BatchItem, options: JobOptions) -> ItemResult:
    _init_worker()
    return run_item(item, options)


def _ray(pending: list[BatchItem], options: JobOptions, address: str) -> Iterator[ItemResult]:
    try:
        import ray
    except ImportError:
        raise FaceAnimError("--ray needs the ray extra: pip install 'faceanim[ray]'") from None
    if not ray.is_initialized():
        if address == "local":
            ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
        else:
            try:
                ray.init(address=address, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as e:
                raise FaceAnimError(f"cannot connect to the Ray cluster at {address}: {e}") from None
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_item)
    refs = [task.remote(item, options) for item in pending]
    try:
        while refs:
            ready, refs = ray.wait(refs, num_returns=1)
            yield ray.get(ready[0])
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise


def run_batch(
    items: Sequence[BatchItem],
    options: JobOptions = JobOptions(),
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    progress: bool = False,
    on_result: Callable[[ItemResult], None] | None = None,
) -> BatchReport:
    """Render every item whose output does not exist yet; returns what was done, skipped and failed.

    Locally a process pool of ``workers`` (default: the number of cores); with ``ray_address`` (``local`` for a
    runtime on this machine, or a cluster address) every job is a Ray task. Paths must be visible to the workers.
    """
    remove_stale_temps(items)
    pending = [item for item in items if not _finished(item)]
    skipped = len(items) - len(pending)
    failed: list[ItemResult] = []
    done = 0
    if ray_address is not None:
        results = _ray(pending, options, ray_address)
    else:
        n = workers or os.cpu_count() or 1
        results = _local(pending, options, max(1, min(n, len(pending) or 1)))
    with tqdm(total=len(items), initial=skipped, disable=not progress, unit="job", desc="batch") as bar:
        for result in results:
            if result.error is None:
                done += 1
            else:
                failed.append(result)
            bar.update(1)
            if on_result is not None:
                on_result(result)
    order = {item.output: i for i, item in enumerate(items)}
    failed.sort(key=lambda r: order[r.item.output])
    return BatchReport(len(items), done, skipped, tuple(failed))
