"""Read a file a user named, safely: regular files only, bounded in size; passphrases from the environment or a file.

Nothing here parses certificates; the loader reads what these functions return.
"""

from __future__ import annotations

import os
import stat
from dataclasses import replace

from certfleet.material.findings import Finding, MaterialError, error


def password_from_env(variable: str) -> bytes:
    """Read a passphrase from an environment variable (never from argv, where `ps` would show it)."""
    value = os.environ.get(variable)
    if value is None:
        raise MaterialError(error(
            "password-env-unset", f"the environment variable {variable} is not set",
            f"export {variable}=... before running, or use --password-file",
        ))
    return value.encode()


def password_from_file(path: str | os.PathLike[str]) -> bytes:
    """Read a passphrase from the first line of a file."""
    try:
        data = read_regular_file(path, limit=64 * 1024, what="password file")
    except MaterialError as exc:
        raise MaterialError(replace(exc.finding, code="password-file-unreadable")) from None
    return data.splitlines()[0] if data else b""


def read_regular_file(path: str | os.PathLike[str], *, limit: int, what: str = "file") -> bytes:
    """Read a regular file of at most ``limit`` bytes; refuse devices, FIFOs, sockets and folders without blocking.

    A special file is refused before it is opened; the file is then opened non-blocking (a FIFO swapped in
    meanwhile returns at once) and judged again by ``fstat`` of the opened descriptor, which is what is read.
    Symbolic links are followed.
    Raises ``MaterialError`` naming the path, the problem and the fix.
    """
    return read_regular(path, limit, what)[0]


def read_regular(path: str | os.PathLike[str], limit: int, what: str) -> tuple[bytes, int]:
    name = str(path)
    try:
        before = os.stat(path)  # opening some devices acts (a watchdog, a tape): refuse them unopened
        if not stat.S_ISREG(before.st_mode):
            raise MaterialError(_not_regular(what, _file_kind(before.st_mode), name))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise MaterialError(error("file-not-found", f"no such {what}", "check the path", name)) from None
    except IsADirectoryError:
        raise MaterialError(_not_regular(what, "a folder", name)) from None
    except PermissionError:
        raise MaterialError(error(
            "unreadable", f"permission denied reading this {what}", "run as a user who may read it", name,
        )) from None
    except OSError as exc:
        raise MaterialError(error(
            "unreadable", f"cannot open this {what}: {exc.strerror or exc}", "check the path", name,
        )) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MaterialError(_not_regular(what, _file_kind(st.st_mode), name))
        if st.st_size > limit:
            raise MaterialError(_too_large(what, f"{st.st_size:,} bytes", limit, name))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # the file grew after fstat, or the size lied (procfs-like files)
            raise MaterialError(_too_large(what, f"more than {limit:,} bytes", limit, name))
        return b"".join(chunks), stat.S_IMODE(st.st_mode)
    except OSError as exc:
        raise MaterialError(error(
            "unreadable", f"cannot read this {what}: {exc.strerror or exc}", "check the file", name,
        )) from None
    finally:
        os.close(fd)


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")]
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _not_regular(what: str, kind: str, name: str) -> Finding:
    return error(
        "unreadable", f"this is {kind}, not a regular {what}",
        f"name the {what} itself (certfleet reads only regular files)", name,
    )


def _too_large(what: str, size: str, limit: int, name: str) -> Finding:
    return error(
        "unreadable",
        f"the {what} is {size}; certfleet reads at most {limit:,} bytes here",
        f"check that this is the right {what}", name,
    )
