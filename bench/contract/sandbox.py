"""What a method may not touch while it is built, trains or predicts: files other than code, and the network.

A method gets its data from the harness, batch by batch, and its labels only in training: one that opens the
dataset's files itself (or any file: saved answers, a cache of the test set) or reaches the network can answer the
test by lookup. The check uses Python's audit hooks (PEP 578, ``sys.addaudithook``), the standard way to watch what
Python code opens: every ``open`` (``io.open``, ``os.open``, ``torch.load``, ``numpy.load``, torchvision's readers all
raise it), ``mmap`` and socket connection is seen, whichever library makes it. Reading code is allowed (imports open
``.py``/``.pyc`` files and extension modules, ``importlib.metadata`` reads distribution metadata), and so are the
kernel's own files (``/proc``, ``/sys``, ``/dev``). Native code that opens files without Python (a C library's
``fopen``) is not seen: the check guards against Python cheats, not against a determined adversary.

An audit hook cannot be removed once added, so one hook is installed on first use and does nothing outside
``watched()``.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

_CODE = (".py", ".pyc", ".so", ".pyd", ".pth")
_METADATA = (".dist-info", ".egg-info")
_SYSTEM = ("/proc/", "/sys/", "/dev/")
_NETWORK = {"socket.connect", "socket.getaddrinfo", "urllib.Request", "http.client.connect"}
_SEEN: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("noprop_contract_seen", default=None)
_installed = False


def allowed(path: Any) -> bool:
    """Whether opening ``path`` is reading code, package metadata or the kernel's own files."""
    if isinstance(path, int):  # a file descriptor already open (os.fdopen): its opening was seen, if ever
        return True
    text = str(path)
    parts = PurePath(text).parts
    return (text.endswith(_CODE) or "__pycache__" in parts or any(p.endswith(_METADATA) for p in parts)
            or text.startswith(_SYSTEM))


def _hook(event: str, args: tuple[Any, ...]) -> None:
    seen = _SEEN.get()
    if seen is None:
        return
    if event == "open" and args and not allowed(args[0]):
        seen.append(f"opened {args[0]}")
    elif event == "mmap.__new__":
        seen.append("mapped a file into memory (mmap)")
    elif event in _NETWORK:
        seen.append(f"reached the network ({event} {args[0] if args else ''})".rstrip())


@contextlib.contextmanager
def watched() -> Iterator[list[str]]:
    """What the code inside opens or reaches that a method may not (one line each, in order); nothing is stopped."""
    global _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    seen: list[str] = []
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)
