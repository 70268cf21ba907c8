"""Copying an env from the image into the home with the real rsync, reporting progress as it goes.

A first copy never writes into the final place: it goes to a staging directory beside the target (same
volume, so the final rename is atomic) and is renamed into place only when complete and relocated. An
interrupted start therefore leaves a staging directory, which the next start removes, and never a half
env that looks finished.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .manifest import MANIFEST_FILE

STAGING_PREFIX = ".osl-staging-"

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
    # With --files-from: exactly the listed paths (and their parent directories), no recursion.
    "--dirs",
    # Every listed file must be transferred: package files often share size and mtime across versions,
    # which rsync's quick check would take for "unchanged".
    "--ignore-times",
    *_RSYNC_COMMON,
)

_PROGRESS = re.compile(rb"^\s*([\d,]+)\s+(\d+)%")


class SyncError(Exception):
    """rsync failed; the message carries rsync's own explanation."""


@dataclass(frozen=True)
class Progress:
    bytes_done: int


def rsync_executable() -> str:
    rsync = shutil.which("rsync")
    if rsync is None:
        raise SyncError("the rsync program is not installed in this image (install the 'rsync' package)")
    return rsync


def rsync_command(
    source: str | os.PathLike[str], destination: str | os.PathLike[str], files_from: str | None = None
) -> list[str]:
    """The first-copy command: the whole tree, or with `files_from` (a NUL-separated list) exactly those paths."""
    options = RSYNC_OPTIONS
    if files_from is not None:
        # --dirs rather than --recursive: listed directories are created, not walked.
        options = ("--dirs", *RSYNC_OPTIONS[1:], "--from0", f"--files-from={files_from}")
    return [rsync_executable(), *options, f"{os.fspath(source)}/", f"{os.fspath(destination)}/"]


def copy_tree(
    source: str | os.PathLike[str], destination: str | os.PathLike[str], only: list[str] | None = None
) -> Iterator[Progress]:
    """Copy `source` (or only the relative paths `only`) into `destination` with rsync, yielding progress.

    rsync's errors go to a temporary file rather than a pipe, so a long list of errors can never
    block rsync while progress is being read.
    """
    with tempfile.TemporaryFile() as errors, tempfile.NamedTemporaryFile("wb", suffix=".files") as listing:
        if only is not None:
            listing.write(b"".join(os.fsencode(p) + b"\0" for p in only))
            listing.flush()
        command = rsync_command(source, destination, listing.name if only is not None else None)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, stdin=subprocess.DEVNULL)
        assert process.stdout is not None
        try:
            for line in _lines(process.stdout):
                match = _PROGRESS.match(line)
                if match:
                    yield Progress(int(match.group(1).replace(b",", b"")))
        except BaseException:
            process.kill()
            process.wait()
            raise
        finally:
            process.stdout.close()
        code = process.wait()
        if code != 0:
            errors.seek(0)
            raise _rsync_failed(code, errors.read().decode(errors="replace"))


def copy_files(source: Path, target: Path, paths: list[str], temp_dir: Path) -> None:
    """Transfer exactly `paths` (relative) from `source` into `target`, creating parents as needed.

    rsync writes each file under `temp_dir` and renames it into place, so a killed transfer leaves its
    half-written files there, never in `target`.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".files") as listing:
        listing.write("".join(p + "\n" for p in paths))
        listing.flush()
        command = [
            rsync_executable(),
            *RSYNC_UPDATE_OPTIONS,
            f"--temp-dir={temp_dir}",
            f"--files-from={listing.name}",
            f"{source}/",
            f"{target}/",
        ]
        result = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise _rsync_failed(result.returncode, result.stderr)


def _rsync_failed(code: int, stderr: str) -> SyncError:
    lines = stderr.strip().splitlines()
    return SyncError(f"rsync exited with code {code}: {lines[0] if lines else 'no message'}")


def new_staging_dir(target: Path) -> Path:
    """A fresh, empty directory beside `target`, private to this start."""
    staging = target.parent / f"{STAGING_PREFIX}{target.name}-{secrets.token_hex(4)}"
    staging.mkdir(mode=0o700)
    return staging


def stale_staging_dirs(target: Path) -> list[Path]:
    """Staging directories left for `target` by interrupted starts (ours to remove)."""
    if not target.parent.is_dir():
        return []
    pattern = f"{STAGING_PREFIX}{target.name}-*"
    return [p for p in target.parent.glob(pattern) if p.is_dir() and not p.is_symlink()]


def remove_tree(path: Path) -> None:
    """Remove a tree osl-hooks created, making read-only directories writable on the way."""

    def make_writable_and_retry(function, failed_path, _excinfo):  # type: ignore[no-untyped-def]
        os.chmod(os.path.dirname(failed_path), 0o700)
        function(failed_path)

    shutil.rmtree(path, onerror=make_writable_and_retry)


def _lines(stream) -> Iterator[bytes]:  # type: ignore[no-untyped-def]
    """rsync ends progress lines with carriage returns; split on both CR and LF."""
    buffer = b""
    for chunk in iter(lambda: stream.read1(65536), b""):
        buffer += chunk
        *lines, buffer = re.split(rb"[\r\n]", buffer)
        yield from (line for line in lines if line)
    if buffer:
        yield buffer
