"""One way to write a results file safely: a temp file in the same folder, fsync, then ``os.replace``.

A rename within one filesystem is atomic, so a crash, a kill or a full disk at any point leaves either the old
file or the new one, never a truncated file. The CSV store, per-run artifacts and checkpoints all write through
``atomic_write``; an OSError becomes one ``ResultsError`` line that says what to do.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any


class ResultsError(Exception):
    """Results could not be written or read; the message is one line saying what to do."""


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Write a whole new version of ``path``: ``write(file)`` fills a temp file in its folder, then it is
    fsynced and renamed over ``path`` (the folder is created if needed).

    Any failure (OSError, KeyboardInterrupt, ...) removes the temp file and leaves ``path`` as it was; an OSError
    becomes a one-line ResultsError. Only a hard kill (SIGKILL, power loss) can leave a stray hidden
    ``.<name>.<pid>.<random>.tmp`` behind, never a damaged ``path``. A new file gets the umask's mode, a replaced
    one keeps its mode.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # 0o666: the umask decides, as usual
        try:
            with os.fdopen(fd, "wb") as out:
                if path.exists():
                    os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            _remove_quietly(tmp)
            raise
    except OSError as err:
        raise write_error(path, err) from err
    _fsync_folder(path.parent)


def write_json_atomic(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON (values JSON cannot encode are written with ``str``)."""
    data = (json.dumps(obj, indent=2, default=str) + "\n").encode("utf-8")
    atomic_write(path, lambda out: out.write(data))


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_folder(folder: Path) -> None:
    """Persist the rename itself (best effort: not every OS or filesystem allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_HINTS: Mapping[int, str] = {
    errno.ENOSPC: "free space or choose another --out",
    errno.EDQUOT: "free space (disk quota exceeded) or choose another --out",
    errno.EACCES: "check the folder's permissions or choose another --out",
    errno.EPERM: "check the folder's permissions or choose another --out",
    errno.EROFS: "the filesystem is read-only; choose another --out",
}


def write_error(path: Path, err: OSError) -> ResultsError:
    """One line for a failed write: what failed, why, and what to do."""
    reason = err.strerror or str(err) or type(err).__name__
    hint = _HINTS.get(err.errno or 0, "choose another --out")
    return ResultsError(f"could not write results to {path}: {reason}; {hint}")
