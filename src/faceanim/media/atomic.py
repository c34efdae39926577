"""Atomic file output: write to a temp file beside the target, rename on success."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from faceanim.errors import MediaError


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_path_for(final_path: str | Path) -> Path:
    """A fresh temp path beside ``final_path`` keeping its suffix (``out.tmp-1a2b3c4d.mp4``)."""
    final = Path(final_path)
    return final.with_name(f"{final.stem}.tmp-{secrets.token_hex(4)}{final.suffix}")


@contextlib.contextmanager
def atomic_output(final_path: str | Path) -> Iterator[Path]:
    """Yield a temp path to write to; on success it is fsynced and renamed onto ``final_path``.

    The file gets the permissions a plain ``open()`` gives (0666 minus the umask), even when the writer made
    its temp file private (``mkstemp`` makes 0600). Parent directories are created. On any exception
    (including KeyboardInterrupt) the temp file is deleted and ``final_path`` is left untouched, so a
    half-written file never appears under the final name.
    """
    final = Path(final_path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MediaError(f"cannot create output folder: {e.strerror or e}", path=final) from e
    tmp = temp_path_for(final)
    try:
        yield tmp
        if not tmp.is_file():
            raise MediaError("nothing was written", path=final)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
