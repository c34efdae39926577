"""User-facing errors: one clear line naming the file (and frame), never a traceback."""

from __future__ import annotations

from pathlib import Path


class FaceAnimError(Exception):
    """An error caused by the user's input or request; the CLI prints it as one line and exits 2."""

    def __init__(self, message: str, path: str | Path | None = None, frame: int | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.frame = frame
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{self.path}"
            if self.frame is not None:
                where += f" (frame {self.frame})"
            where += ": "
        return f"{where}{self.message}"


class NoFaceError(FaceAnimError):
    """No face was found where one is required."""


class MediaError(FaceAnimError):
    """A file is missing, unreadable, corrupt, empty or of an unsupported type."""


class Cancelled(FaceAnimError):
    """The job was cancelled (by a callback, a client or ^C); nothing was written."""
