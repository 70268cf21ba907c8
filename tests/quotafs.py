"""A real filesystem with a per-user quota, for tests: `python tests/quotafs.py BACKING MOUNTPOINT BYTES`.

This machine's kernel has no disk quotas (tmpfs refuses `usrquota`, ext4 was built without CONFIG_QUOTA), yet
clusters limit homes by quota: writes fail with EDQUOT while the filesystem itself still has room. This is a
FUSE passthrough over BACKING (mfusepy, libfuse 3) that keeps a byte budget: a write or truncate that would take
the files' bytes past BYTES fails with EDQUOT, while `statvfs` reports BACKING's own (larger) free space, as a
quota'd volume does. `mounted()` runs it in the background for a test and unmounts it after.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _filesystem(backing: str, budget: int):  # type: ignore[no-untyped-def]
    from mfusepy import FuseOSError, Operations

    class QuotaFS(Operations):
        """Every call on the mount is the same call on `backing`; file bytes are counted against `budget`."""

        use_ns = True

        def __init__(self) -> None:
            self.counting = threading.Lock()
            self.used = sum(
                os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(backing) for f in files
            )

        def real(self, path: str) -> str:
            return os.path.join(backing, path.lstrip("/"))

        def grow(self, by: int) -> None:
            with self.counting:
                if by > 0 and self.used + by > budget:
                    raise FuseOSError(errno.EDQUOT)
                self.used += by

        def size(self, path: str) -> int:
            try:
                st = os.lstat(self.real(path))
            except FileNotFoundError:
                return 0
            return st.st_size if not os.path.isdir(self.real(path)) else 0

        def getattr(self, path, fh=None):  # type: ignore[no-untyped-def]
            try:
                st = os.lstat(self.real(path))
            except OSError as e:
                raise FuseOSError(e.errno) from None
            keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime_ns", "st_mtime_ns", "st_ctime_ns")
            return {key: getattr(st, key) for key in keys}

        def readdir(self, path, fh):  # type: ignore[no-untyped-def]
            return [".", "..", *os.listdir(self.real(path))]

        def statfs(self, path):  # type: ignore[no-untyped-def]
            st = os.statvfs(self.real(path))
            keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_frsize")
            return {key: getattr(st, key) for key in keys} | {"f_namemax": 255}

        def _call(self, function, *args):  # type: ignore[no-untyped-def]
            try:
                return function(*args)
            except OSError as e:
                raise FuseOSError(e.errno) from None

        def access(self, path, mode):  # type: ignore[no-untyped-def]
            if not os.access(self.real(path), mode):
                raise FuseOSError(errno.EACCES)

        def chmod(self, path, mode):  # type: ignore[no-untyped-def]
            return self._call(os.chmod, self.real(path), mode)

        def chown(self, path, uid, gid):  # type: ignore[no-untyped-def]
            return self._call(os.lchown, self.real(path), uid, gid)

        def utimens(self, path, times=None):  # type: ignore[no-untyped-def]
            return self._call(lambda: os.utime(self.real(path), ns=times, follow_symlinks=False))

        def mkdir(self, path, mode):  # type: ignore[no-untyped-def]
            return self._call(os.mkdir, self.real(path), mode)

        def rmdir(self, path):  # type: ignore[no-untyped-def]
            return self._call(os.rmdir, self.real(path))

        def readlink(self, path):  # type: ignore[no-untyped-def]
            return self._call(os.readlink, self.real(path))

        def symlink(self, target, source):  # type: ignore[no-untyped-def]
            return self._call(os.symlink, source, self.real(target))

        def link(self, target, source):  # type: ignore[no-untyped-def]
            return self._call(os.link, self.real(source), self.real(target))

        def unlink(self, path):  # type: ignore[no-untyped-def]
            size = self.size(path)
            self._call(os.unlink, self.real(path))
            self.grow(-size)

        def rename(self, old, new):  # type: ignore[no-untyped-def]
            replaced = self.size(new) if os.path.lexists(self.real(new)) else 0
            self._call(os.rename, self.real(old), self.real(new))
            self.grow(-replaced)

        def create(self, path, mode, fi=None):  # type: ignore[no-untyped-def]
            return self._call(os.open, self.real(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)

        def open(self, path, flags):  # type: ignore[no-untyped-def]
            before = self.size(path) if flags & os.O_TRUNC else 0
            fh = self._call(os.open, self.real(path), flags)
            self.grow(-before)
            return fh

        def read(self, path, size, offset, fh):  # type: ignore[no-untyped-def]
            return self._call(os.pread, fh, size, offset)

        def write(self, path, data, offset, fh):  # type: ignore[no-untyped-def]
            self.grow(max(0, offset + len(data) - os.fstat(fh).st_size))
            return self._call(os.pwrite, fh, data, offset)

        def truncate(self, path, length, fh=None):  # type: ignore[no-untyped-def]
            self.grow(length - self.size(path))
            return self._call(os.truncate, self.real(path), length)

        def flush(self, path, fh):  # type: ignore[no-untyped-def]
            return 0

        def release(self, path, fh):  # type: ignore[no-untyped-def]
            return self._call(os.close, fh)

        def fsync(self, path, datasync, fh):  # type: ignore[no-untyped-def]
            return self._call(os.fsync, fh)

    return QuotaFS()


@contextmanager
def mounted(backing: Path, mountpoint: Path, budget: int) -> Iterator[Path]:
    """`mountpoint` shows `backing` with a quota of `budget` bytes while the block runs."""
    backing.mkdir(parents=True, exist_ok=True)
    mountpoint.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, __file__, str(backing), str(mountpoint), str(budget)])
    try:
        deadline = time.monotonic() + 30
        while not os.path.ismount(mountpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the quota filesystem did not mount on {mountpoint} ({process.returncode})")
            time.sleep(0.05)
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


if __name__ == "__main__":
    from mfusepy import FUSE

    backing_dir, mount_dir, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # allow_other: the user's processes (another uid) see the mount; default_permissions: the kernel checks modes.
    FUSE(_filesystem(backing_dir, limit), mount_dir, foreground=True, allow_other=True, default_permissions=True)
