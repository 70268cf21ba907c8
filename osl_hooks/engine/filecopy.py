"""An update's transfer, in this process: exactly the listed paths of the image's env into the user's copy.

Why not rsync: an update of 1% of an env is a few hundred small files, and starting rsync (two processes and
their protocol, per run) cost more than copying them. Here each file is copied by the kernel (`sendfile`),
from the image's file into a new file beside its place, with no process started.

What the copy gets is what `rsync --links --perms --times --chmod=u+w --relative` gave it:
- each file is written beside its place as `.NAME.XXXXXX` (rsync's own temporary name) and renamed into
  place, so every path holds its old or its new content; a killed transfer leaves such partial files, which
  the next update removes (`trees.remove_partial_files`, on the paths it recorded as pending);
- the image's mode plus u+w (the user must be able to change and remove everything in their copy), and the
  image's mtime (an update recognizes what osl-hooks left by its size and mtime);
- a symlink is made anew with the image's target; a listed directory gets the image's mode and, once its
  contents are in place, its mtime; parents the copy lacks are made with the image's modes, parents it has
  are left as they are (as every path the update does not list).

The system calls per file are what rsync's receiver makes, without its walk: open the image's file and fstat
it, create the temporary, sendfile, fchmod, futimens, close, rename (and, per directory, one openat). On ext4
the create and the rename over the old file (its inode freed) take most of an update's time, for rsync alike.

Never through a link: every directory below the copy's root is opened with O_NOFOLLOW. A link or a file where
the image has a directory stops the transfer with an OSError naming it (the update is retried at the next
start); the user's link and what it points to are left as they are.
"""

from __future__ import annotations

import errno
import os
import random
import stat
import threading
from collections.abc import Sequence
from pathlib import Path

from .faultpoints import hold
from .parts import balanced_parts, transfer_processes

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# The image's path, opened before it is known to be a file: a link fails (ELOOP), a FIFO does not block.
_OPEN_SOURCE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
USER_WRITE = 0o200  # rsync's --chmod=u+w
CHUNK = 1 << 30  # bytes per sendfile call (it copies less at a time anyway)
MAX_OPEN_DIRS = 128
"""Directories a part keeps open at once. Containers often get a soft limit of 1,024 open files (containerd 2,
Docker 25), and an update of half of a large env names thousands of directories: past this many the part closes
them all (the paths are sorted, so it goes on with few reopened)."""


def copy_paths(source: Path, target: Path, paths: list[str], sizes: Sequence[int] | None = None) -> None:
    """Transfer exactly `paths` (relative; parents before children, as sorted) from `source` into `target`.

    A long list is cut into consecutive parts of about equal cost (`sizes`: the files' bytes, when known), each
    copied by its own thread at the same time, as many as `parts.transfer_processes` says: the copying is system
    calls, which run outside the interpreter's lock, and one thread leaves a second core idle. Two parts may
    both make a parent directory the copy lacks; the one that comes second opens the one the first made.
    """
    parts = balanced_parts(paths, sizes, transfer_processes(len(paths)))
    listed_dirs: list[tuple[str, os.stat_result]] = []
    failures: list[BaseException] = []

    def copy_part(part: list[str]) -> None:
        try:
            listed_dirs.extend(_copy_part(os.fspath(source), os.fspath(target), part))
        except BaseException as e:  # raised here once every part has ended
            failures.append(e)

    threads = [threading.Thread(target=copy_part, args=(part,), daemon=True) for part in parts[1:]]
    for thread in threads:
        thread.start()
    copy_part(parts[0])
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    directories = _Directories(os.fspath(source), os.fspath(target))
    try:  # children first: making a child changes its parent's mtime
        for path, st in sorted(listed_dirs, key=lambda d: d[0], reverse=True):
            os.utime(directories.open(path), ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        directories.close()


def _copy_part(source: str, target: str, paths: list[str]) -> list[tuple[str, os.stat_result]]:
    """Copy `paths`; return the directories among them, with the image's stat (their times are set last)."""
    directories = _Directories(source, target)
    names = _TemporaryNames()
    listed_dirs = []
    try:
        for path in paths:
            parent, _, name = path.rpartition("/")
            image = os.path.join(source, path)
            try:
                # Opened once, then asked what it is (fstat): no second lookup of the path for an lstat.
                fd = os.open(image, _OPEN_SOURCE)
            except OSError as e:
                if e.errno != errno.ELOOP:
                    raise
                _place_link(directories.open(parent), name, os.readlink(image), names)
                continue
            try:
                st = os.fstat(fd)
                if stat.S_ISDIR(st.st_mode):
                    directories.make(path, st, replace=True)
                    listed_dirs.append((path, st))
                elif stat.S_ISREG(st.st_mode):
                    _place_file(directories.open(parent), name, fd, st, names)
            finally:
                os.close(fd)
    finally:
        directories.close()
    return listed_dirs


class _TemporaryNames:
    """rsync-style temporary names (`.NAME.XXXXXX`, what `trees.remove_partial_files` recognizes), from a
    generator seeded once per part: `os.urandom` per name would ask the kernel once per file."""

    def __init__(self) -> None:
        self._random = random.Random(os.urandom(16))

    def __call__(self, name: str) -> str:
        return f".{name}.{self._random.getrandbits(24):06x}"


class _Directories:
    """The copy's directories opened so far (by relative path), each opened without following a link."""

    def __init__(self, source: str, target: str):
        self.source = source
        self.target = target
        self._fds = {"": os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)}  # checked by Home

    def open(self, path: str) -> int:
        """The directory at `path` in the copy, made with the image's mode if it is missing.

        An existing directory that is only a parent of listed paths is opened as it is, one system call: its
        mode and times are what the copy has (a directory gets the image's mode when it is made or listed), so
        neither the image's directory nor this one is asked for them."""
        fd = self._fds.get(path)
        if fd is not None:
            return fd
        if len(self._fds) >= MAX_OPEN_DIRS:
            self.close(keep_root=True)  # before this call hands out any fd: none of them is in use
        parent, _, name = path.rpartition("/")
        parent_fd = self.open(parent)
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=parent_fd)
        except FileNotFoundError:
            return self.make(path, os.lstat(os.path.join(self.source, path)), replace=False)
        except OSError as e:
            raise _not_a_directory(e, os.path.join(self.target, path)) from None
        self._fds[path] = fd
        return fd

    def make(self, path: str, image: os.stat_result, replace: bool) -> int:
        """Open the directory at `path`, making it if missing, with the image's mode (plus u+w). `replace`: a
        file or link osl-hooks left where the image now has a directory is removed first (a listed path)."""
        if len(self._fds) >= MAX_OPEN_DIRS:
            self.close(keep_root=True)  # before this call hands out any fd: none of them is in use
        parent, _, name = path.rpartition("/")
        parent_fd = self.open(parent)
        mode = stat.S_IMODE(image.st_mode) | USER_WRITE
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=parent_fd)
        except FileNotFoundError:
            fd = None
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.ENOTDIR) or not replace:
                raise _not_a_directory(e, os.path.join(self.target, path)) from None
            os.unlink(name, dir_fd=parent_fd)
            fd = None
        if fd is None:
            try:
                os.mkdir(name, mode, dir_fd=parent_fd)
            except FileExistsError:
                pass  # another part made it meanwhile
            fd = os.open(name, _OPEN_DIR, dir_fd=parent_fd)
        if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
            os.fchmod(fd, mode)
        self._fds[path] = fd
        return fd

    def close(self, keep_root: bool = False) -> None:
        for path, fd in list(self._fds.items()):
            if path or not keep_root:
                os.close(fd)
                del self._fds[path]


def _not_a_directory(e: OSError, place: str) -> OSError:
    if e.errno not in (errno.ELOOP, errno.ENOTDIR):
        return e
    return OSError(
        e.errno,
        f"{place} is not a directory (a link or a file where the image has a directory): the update does not "
        "write through or over it",
    )


def _place_file(parent_fd: int, name: str, source: int, st: os.stat_result, names: _TemporaryNames) -> None:
    """The image's file (open as `source`, `st` its fstat) at `name` in the directory `parent_fd`: written beside
    it, then renamed into place. Copied up to the size `st` gives, so the call that would find the end is saved."""
    temporary, out = _new_file(parent_fd, name, names)
    try:
        hold("filecopy:file-begun")  # a test kills the update here, with a file begun beside its place
        try:
            offset = 0
            while offset < st.st_size and (sent := os.sendfile(out, source, offset, CHUNK)) > 0:
                offset += sent
            os.fchmod(out, stat.S_IMODE(st.st_mode) | USER_WRITE)
            os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            os.close(out)
        _rename_into_place(parent_fd, temporary, name)
    except BaseException:
        _unlink_quietly(parent_fd, temporary)
        raise


def _new_file(parent_fd: int, name: str, names: _TemporaryNames) -> tuple[str, int]:
    """A new, empty temporary file for `name` (another name if one is taken), and its fd."""
    while True:
        temporary = names(name)
        try:
            return temporary, os.open(temporary, _NEW_FILE, 0o600, dir_fd=parent_fd)
        except FileExistsError:
            continue


def _place_link(parent_fd: int, name: str, link: str, names: _TemporaryNames) -> None:
    """A symlink to `link` at `name`: made beside it, then renamed into place."""
    temporary = names(name)
    os.symlink(link, temporary, dir_fd=parent_fd)
    try:
        _rename_into_place(parent_fd, temporary, name)
    except BaseException:
        _unlink_quietly(parent_fd, temporary)
        raise


def _rename_into_place(parent_fd: int, temporary: str, name: str) -> None:
    """Rename over what is at `name`; an empty directory there (the image made a directory a file) goes first,
    one with contents stops the transfer (OSError), as with rsync."""
    try:
        os.rename(temporary, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except IsADirectoryError:
        os.rmdir(name, dir_fd=parent_fd)
        os.rename(temporary, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)


def _unlink_quietly(parent_fd: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=parent_fd)
    except FileNotFoundError:
        pass
