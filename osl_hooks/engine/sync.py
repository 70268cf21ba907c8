"""Copying an env from the image into the home with the real rsync, reporting progress as it goes.

A first copy never writes into the final place: it goes to a staging directory beside the target (same
volume, so the final rename is atomic) and is renamed into place only when complete and relocated. An
interrupted start therefore leaves a staging directory, which the next start removes, and never a half
env that looks finished.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import parts
from .manifest import MANIFEST_FILE
from .outofspace import says_out_of_space

_RSYNC_COMMON = (
    # -a without -o/-g: the copy belongs to the user running the start, never to the image's owner.
    "--links",
    "--perms",
    "--times",
    "--devices",
    "--specials",
    # The user must be able to change and remove everything in their copy, even files the image ships read-only.
    "--chmod=u+w",
)
RSYNC_OPTIONS = (
    "--recursive",
    *_RSYNC_COMMON,
    f"--exclude=/{MANIFEST_FILE}",
    # Bytes done so far for the whole transfer (the total comes from the manifest, so rsync keeps its
    # incremental recursion and starts copying at once).
    "--info=progress2",
)
RSYNC_UPDATE_OPTIONS = (
    # With --relative and SOURCE/./PATH arguments: exactly the given paths (and their parents), no recursion.
    "--dirs",
    # Every listed file must be transferred: package files often share size and mtime across versions,
    # which rsync's quick check would take for "unchanged".
    "--ignore-times",
    *_RSYNC_COMMON,
)

ARGUMENT_BYTES = 256 * 1024  # of paths per rsync run: far below the kernel's limit for a command line (2 MiB)
PROGRESS_READ_INTERVAL = 0.1  # seconds; the status file shows progress every 0.5 s
_PROGRESS = re.compile(rb"\s*([\d,]+)\s+(\d+)%")  # matched at the start of a line


class SyncError(Exception):
    """rsync failed; the message carries rsync's own explanation, `out_of_space` whether it ran out of room."""

    def __init__(self, message: str, out_of_space: bool = False):
        super().__init__(message)
        self.out_of_space = out_of_space


@dataclass(frozen=True)
class Progress:
    bytes_done: int


def rsync_executable() -> str:
    rsync = shutil.which("rsync")
    if rsync is None:
        raise SyncError("the rsync program is not installed in this image (install the 'rsync' package)")
    return rsync


def rsync_command(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    resume: bool = False,
    roots: Sequence[str] | None = None,
) -> list[str]:
    """The first-copy command: the whole tree, or with `roots` (relative paths) exactly those subtrees, with
    their parents (`--relative`).

    `resume`: the destination holds part of an earlier copy of the same tree; rsync skips what is already
    there and deletes what is not in the source (what a killed rsync was writing).
    """
    options = (*RSYNC_OPTIONS, "--delete") if resume else RSYNC_OPTIONS
    if roots is None:
        return [rsync_executable(), *options, f"{os.fspath(source)}/", f"{os.fspath(destination)}/"]
    arguments = [f"{os.fspath(source)}/./{root}" for root in roots]
    return [rsync_executable(), *options, "--no-inc-recursive", "--relative", *arguments, f"{os.fspath(destination)}/"]


def copy_tree(
    source: str | os.PathLike[str], destination: str | os.PathLike[str], resume: bool = False
) -> Iterator[Progress]:
    """Copy `source` into `destination` with rsync, yielding the bytes done (`resume`: see `rsync_command`).

    A first copy runs two rsyncs at once, each over one half of the tree (`first_copy_halves`): one rsync's
    sender and receiver take turns over a pipe and leave a second core mostly idle, and each builds its whole
    file list first (`--no-inc-recursive`), which measured faster than incremental recursion once the tree
    is halved (docs/benchmarks.md). A resumed copy is one rsync over the whole tree: its `--delete` must see
    every directory. Progress is the sum of both rsyncs' bytes done. rsync's errors go to a temporary file
    rather than a pipe, so a long list of errors can never block rsync while progress is being read.
    """
    halves = None if resume or parts.available_cpus() < 2 else first_copy_halves(Path(source))
    commands = [rsync_command(source, destination, resume)] if halves is None else []
    commands += [rsync_command(source, destination, roots=half) for half in halves or ()]
    with contextlib.ExitStack() as stack:
        processes = []
        for command in commands:
            errors = stack.enter_context(tempfile.TemporaryFile())
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
            processes.append((process, errors))
        try:
            yield from _summed_progress([process for process, _ in processes])
        except BaseException:
            for process, _ in processes:
                process.kill()
                process.wait()
            raise
        finally:
            for process, _ in processes:
                process.stdout.close()  # type: ignore[union-attr]
        failures = [(process.wait(), errors) for process, errors in processes]
        for code, errors in failures:
            if code != 0:
                errors.seek(0)
                raise _rsync_failed(code, errors.read().decode(errors="replace"))
    if halves is not None:
        _restore_shared_dirs(Path(source), Path(destination), halves)


def first_copy_halves(source: Path) -> tuple[list[str], list[str]] | None:
    """The tree at `source` cut in two halves of about equal cost, each as the relative roots of the subtrees it
    holds; None when there is no manifest to weigh the tree by, or nothing to cut.

    The cut is the path where half of the cost of the manifest's entries lies (as `copy_files` weighs them:
    the bytes plus `parts.PER_FILE_COST` per entry), read line by line from the raw manifest without keeping it.
    The halves come from the tree itself: in each directory on the way to the cut path, the entries before
    it are the first half's and the entries after it (and the cut path) the second's, so every path of the
    source is in exactly one half whatever the manifest says."""
    cut = _cut_path(source / MANIFEST_FILE)
    if not cut:
        return None
    first: list[str] = []
    second: list[str] = []
    directory = ""
    names = cut.split("/")
    for depth, name in enumerate(names):
        try:
            found = os.listdir(source / directory) if directory else os.listdir(source)
        except OSError:
            return None
        for entry in sorted(found):
            if entry == MANIFEST_FILE and not directory:
                continue
            if entry < name:
                first.append(f"{directory}{entry}")
            elif entry > name or depth == len(names) - 1:
                second.append(f"{directory}{entry}")
        directory += f"{name}/"
    return (first, second) if first and second else None


def shared_dirs(halves: tuple[list[str], list[str]]) -> set[str]:
    """The directories both halves pass through: the root and every directory above a half's root."""
    found = {""}
    for root in (*halves[0], *halves[1]):
        while root := root.rpartition("/")[0]:
            found.add(root)
    return found


_ENTRY_SIZE = re.compile(rb'","[fdl]",(\d+),')  # an entry line's size: `["path","f",SIZE,...]`


def _cut_path(manifest: Path) -> str | None:
    """The first entry of the manifest at which half of its entries' cost lies (see `first_copy_halves`)."""
    try:
        with open(manifest, "rb") as lines:
            header = json.loads(lines.readline())
            half = (header["bytes"] + header["files"] * parts.PER_FILE_COST) / 2
            done = 0
            for line in lines:
                size = _ENTRY_SIZE.search(line)
                done += parts.PER_FILE_COST + (int(size.group(1)) if size else 0)
                if done >= half:
                    path = json.loads(line)[0]
                    return path if isinstance(path, str) and path else None
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None
    return None


def _restore_shared_dirs(source: Path, destination: Path, halves: tuple[list[str], list[str]]) -> None:
    """Give the directories both halves write into (the root and those on the way to the cut) the image's
    mode and times: the rsync that ended first set them before the other one was done with them."""
    for directory in sorted(shared_dirs(halves), key=len, reverse=True):
        image = os.lstat(source / directory)
        place = destination / directory
        os.chmod(place, stat.S_IMODE(image.st_mode) | stat.S_IWUSR)  # as rsync's --chmod=u+w
        os.utime(place, ns=(image.st_atime_ns, image.st_mtime_ns))


def copy_files(source: Path, target: Path, paths: list[str], sizes: Sequence[int] | None = None) -> None:
    """Transfer exactly `paths` (relative) from `source` into `target`, creating parents as needed.

    rsync writes each file as `.NAME.XXXXXX` beside it and renames it into place, so every path holds
    either its old or its new content. A killed transfer can leave such a partial file: callers record
    the paths first and remove what is left with `trees.remove_partial_files`. (Beside the file, not in a
    `--temp-dir`: renaming across directories made a transfer of many files markedly slower.)

    The paths are rsync's arguments (`SOURCE/./PATH` with `--relative`), as many per run as fit in
    `ARGUMENT_BYTES`, not a `--files-from` list: rsync reads such a list one byte at a time, with a poll per
    byte, which made an update of thousands of files cost more than `rsync -a` of the same change.

    A long list is split into consecutive parts of about equal cost (`sizes`: the files' bytes, when known),
    each sent by its own rsync, at the same time (`parts.transfer_processes`). One rsync's sender and receiver take
    turns over a pipe and leave a second core mostly idle: two rsyncs moved a 3,341-file update in about two
    thirds of the time of one (`docs/benchmarks.md`). Two rsyncs may both create a new parent directory; rsync takes a
    directory that already exists (EEXIST) as made, and both give it the image's mode and mtime.
    """
    own, *others = parts.balanced_parts(paths, sizes, parts.transfer_processes(len(paths)))
    failures: list[Exception] = []

    def copy_part(part: list[str]) -> None:
        try:
            _copy_part(source, target, part)
        except Exception as e:  # raised here once every part has ended
            failures.append(e)

    threads = [threading.Thread(target=copy_part, args=(part,), daemon=True) for part in others]
    for thread in threads:
        thread.start()
    copy_part(own)
    for thread in threads:
        thread.join()  # every rsync has ended before this returns or raises
    if failures:
        raise failures[0]


def _copy_part(source: Path, target: Path, paths: list[str]) -> None:
    """One rsync at a time for `paths`, in runs of arguments of at most `ARGUMENT_BYTES`."""
    for chunk in _argument_chunks(os.fsencode(source) + b"/./", paths):
        command = [rsync_executable(), *RSYNC_UPDATE_OPTIONS, "--relative", *chunk, f"{target}/"]
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            raise _rsync_failed(result.returncode, result.stderr)


def _argument_chunks(prefix: bytes, paths: list[str]) -> Iterator[list[bytes]]:
    """`prefix + path` for every path, in runs whose total stays within `ARGUMENT_BYTES`."""
    chunk: list[bytes] = []
    size = 0
    for path in paths:
        argument = prefix + os.fsencode(path)
        if chunk and size + len(argument) + 1 > ARGUMENT_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(argument)
        size += len(argument) + 1
    if chunk:
        yield chunk


def _rsync_failed(code: int, stderr: str) -> SyncError:
    """rsync's failure in its own words: the line that says the home has no room when one does, else its first."""
    lines = stderr.strip().splitlines()
    room = [line for line in lines if says_out_of_space(line)]
    line = (room or lines or ["no message"])[0]
    return SyncError(f"rsync exited with code {code}: {line}", out_of_space=bool(room))


def _summed_progress(processes: list[subprocess.Popen]) -> Iterator[Progress]:
    """The bytes done by all `processes` together, as they go (one rsync: its own progress, read in place)."""
    if len(processes) == 1:
        for done in _latest_progress(processes[0]):
            yield Progress(done)
        return
    latest = [0] * len(processes)

    def follow(i: int) -> None:
        for done in _latest_progress(processes[i]):
            latest[i] = done

    readers = [threading.Thread(target=follow, args=(i,), daemon=True) for i in range(len(processes))]
    for reader in readers:
        reader.start()
    reported = 0
    try:
        while any(reader.is_alive() for reader in readers):
            next(reader for reader in readers if reader.is_alive()).join(PROGRESS_READ_INTERVAL)
            if sum(latest) != reported:
                reported = sum(latest)
                yield Progress(reported)
    except BaseException:  # abandoned: the readers end once their rsyncs do, before the pipes are closed
        for process in processes:
            process.kill()
        for reader in readers:
            reader.join()
        raise
    if sum(latest) != reported:
        yield Progress(sum(latest))


def _latest_progress(process: subprocess.Popen) -> Iterator[int]:
    """The bytes done, from the latest progress line in each read of rsync's output.

    rsync reports after every file (tens of thousands of lines for a big env), ending each line with a
    carriage return. Reading each line as it comes would wake this process for every file, competing with
    rsync for the CPU, so rsync's output is read at most every `PROGRESS_READ_INTERVAL` (a larger pipe holds
    what it writes meanwhile), and only the latest complete line of each read is parsed.
    """
    buffer = b""
    for chunk in _paced_reads(process):
        buffer += chunk
        end = max(buffer.rfind(b"\r"), buffer.rfind(b"\n"))
        if end < 0:
            continue
        complete, buffer = buffer[:end], buffer[end + 1 :]
        match = _PROGRESS.match(complete, max(complete.rfind(b"\r"), complete.rfind(b"\n")) + 1)
        if match:
            yield int(match.group(1).replace(b",", b""))
    match = _PROGRESS.match(buffer)
    if match:
        yield int(match.group(1).replace(b",", b""))


def _paced_reads(process: subprocess.Popen) -> Iterator[bytes]:
    """Everything the process writes to stdout, in reads at most every interval (or as it comes, when the
    kernel cannot tell this process that rsync exited: no pidfd)."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    try:
        exited = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        yield from iter(lambda: process.stdout.read1(1 << 16), b"")  # type: ignore[union-attr]
        return
    try:
        with contextlib.suppress(OSError, AttributeError):  # Linux only; best effort
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        os.set_blocking(fd, False)
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                select.select([exited], [], [], PROGRESS_READ_INTERVAL)  # returns at once when rsync exits
                continue
            if not chunk:
                return
            yield chunk
    finally:
        os.close(exited)
