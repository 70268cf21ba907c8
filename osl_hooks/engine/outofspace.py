"""One rule for "the home has no room left": a full filesystem and a user's quota are the same to a user.

Clusters limit homes in two ways: a volume that fills up (`ENOSPC`) and a per-user quota on a shared one
(`EDQUOT`, while the filesystem itself still has room). Both can happen after the preflight said there was room
(another writer, a quota smaller than the free space the preflight saw), in osl-hooks' own writes (an `OSError`)
or in rsync's (its message, `SyncError`). Every place that asks "was this a lack of room?" asks here, so every such
failure falls back with the same sentence and the hub counts it under the same reason (`disk_full`).
"""

from __future__ import annotations

import errno
import os

OUT_OF_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# What rsync prints for them: the C library's own words (strerror), as in "write failed on ...: Disk quota exceeded
# (122)".
OUT_OF_SPACE_WORDS = tuple(os.strerror(code) for code in sorted(OUT_OF_SPACE_ERRNOS))


def says_out_of_space(text: str) -> bool:
    """Whether a tool's error output (rsync's stderr) reports a lack of room."""
    return any(words in text for words in OUT_OF_SPACE_WORDS)


def is_out_of_space(error: BaseException) -> bool:
    """Whether `error` is a lack of room: an `OSError` with ENOSPC or EDQUOT, or an error marked so by the code
    that read a tool's own report (`out_of_space = True`, as `SyncError` does from rsync's output)."""
    if isinstance(error, OSError):
        return error.errno in OUT_OF_SPACE_ERRNOS
    return bool(getattr(error, "out_of_space", False))
