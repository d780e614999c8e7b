"""Reading a file a person names (``--routes``, a workload, a labelled set) without hanging.

``open().read()`` on a FIFO waits for a writer forever, and on ``/dev/zero`` reads until memory
runs out. :func:`read_regular_file` opens without blocking, accepts only a regular file (a
symlink to one is fine), and reads at most ``max_bytes``; anything else raises ``OSError`` whose
``strerror`` is a sentence for the user::

    try:
        data = read_regular_file(path, 8 * 1024 * 1024)
    except OSError as exc:
        print(f"{path}: cannot read: {exc.strerror or exc}")
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["read_regular_file"]


def _refuse(path: str | os.PathLike[str], code: int, message: str) -> OSError:
    return OSError(code, message, os.fspath(path))


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of ``path``: a regular file of at most ``max_bytes`` (else ``OSError``)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise _refuse(path, errno.EISDIR, "it is a folder, not a file")
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(path, errno.EINVAL, "it is not a regular file (a pipe or a device)")
        chunks: list[bytes] = []
        size = st.st_size
        if size <= max_bytes:
            size = 0
            while size <= max_bytes:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        if size > max_bytes:
            raise _refuse(
                path, errno.EFBIG,
                f"it is too large ({size / 2**20:.1f} MiB; at most {max_bytes / 2**20:g} MiB)",
            )
        return b"".join(chunks)
    finally:
        os.close(fd)
