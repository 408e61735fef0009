"""Every file the CLI writes goes through here: never through a symbolic link, never half-written.

Each output is first written to a temporary file in its own folder (created with ``O_EXCL | O_NOFOLLOW`` and its
final mode from the first byte), and only when every temporary is complete are they moved into place: with
``os.link`` (which refuses any existing name, a dangling link included) or, when replacing is allowed,
``os.replace`` (which replaces a name, never the target of a link).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from certfleet.material.findings import MaterialError, error


@dataclass(frozen=True)
class Output:
    """One file to write. ``mode`` None: the usual 0666 less the umask; otherwise exactly that mode (0400 keys)."""

    path: Path
    data: bytes
    mode: int | None = None


def refuse_link_or_special(path: Path, *, replace: bool, fix: str) -> None:
    """Refuse a symbolic link or a non-regular file at ``path``, and an existing file unless ``replace``."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise MaterialError(error(
            "output-is-link", "this output path is a symbolic link, and certfleet never writes through one",
            "remove the link or choose another output path", str(path),
        ))
    if not stat.S_ISREG(st.st_mode):
        raise MaterialError(error(
            "output-not-a-file", "this output path exists and is not a regular file",
            "choose another output path", str(path),
        ))
    if not replace:
        raise MaterialError(error("file-exists", f"{path} already exists", fix, str(path)))


def write_outputs(outputs: Sequence[Output], *, replace: bool, fix: str = "choose another output path") -> None:
    """Write every output or none: all temporaries first, then each moved into place.

    ``replace`` False refuses any existing name (``fix`` says what to do instead); True replaces regular files.
    Symbolic links and special files are refused either way.
    """
    for output in outputs:
        refuse_link_or_special(output.path, replace=replace, fix=fix)
    temporaries: list[tuple[Path, Output]] = []
    placed: list[Path] = []
    try:
        for output in outputs:
            temporaries.append((_temporary(output), output))
        for temp, output in temporaries:
            _move(temp, output.path, replace=replace, fix=fix)
            placed.append(output.path)
    except BaseException:
        if not replace:  # new names only: take back those already placed, so that none of them is left
            for path in placed:
                with contextlib.suppress(OSError):
                    path.unlink()
        raise
    finally:
        for temp, _output in temporaries:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()


def _temporary(output: Output) -> Path:
    """A complete temporary copy of ``output`` beside it, never readable beyond its final mode."""
    folder = output.path.parent
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _attempt in range(100):
        temp = folder / f".{output.path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(temp, flags, 0o666 if output.mode is None else output.mode)
        except FileExistsError:
            continue
        break
    else:  # pragma: no cover - 100 random names all taken
        raise MaterialError(error("output-busy", "cannot create a temporary file beside the output",
                                  "clean up the folder's .*.tmp files", str(output.path)))
    try:
        with os.fdopen(fd, "wb") as handle:
            if output.mode is not None:
                os.fchmod(handle.fileno(), output.mode)  # exactly this mode, whatever the umask took away
            handle.write(output.data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def _move(temp: Path, target: Path, *, replace: bool, fix: str) -> None:
    if replace:
        refuse_link_or_special(target, replace=True, fix=fix)  # a link that appeared meanwhile
        os.replace(temp, target)
        return
    try:
        os.link(temp, target, follow_symlinks=False)
    except FileExistsError:
        raise MaterialError(error("file-exists", f"{target} already exists", fix, str(target))) from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        refuse_link_or_special(target, replace=False, fix=fix)  # a file system without hard links
        os.replace(temp, target)


_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}
