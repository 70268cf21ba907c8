"""Writing inside the user's home without ever following a symlink out of it.

A user owns their home and may put symlinks anywhere in it. osl-hooks runs with the user's rights, so a
link cannot make it write where the user could not; but it must still never turn a link into a surprise
(writing an env onto another volume, or into a directory shared with other users). Every path osl-hooks
writes is therefore resolved first and must stay inside the home's real path, and files are replaced by
rename, which replaces a link rather than writing through it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..status import read_state_text
from .faultpoints import point


class UnsafePath(Exception):
    """A path that would take osl-hooks outside the home volume."""


class Home:
    """The home volume root and the one way osl-hooks creates paths in it."""

    def __init__(self, root: str | os.PathLike[str]):
        self.path = Path(root)
        if not self.path.is_dir():
            raise UnsafePath(f"home {self.path} does not exist or is not a directory")
        self.real = Path(os.path.realpath(self.path))

    def check(self, path: str | os.PathLike[str], what: str) -> Path:
        """Return `path` if it resolves inside the home, else raise `UnsafePath` naming `what`."""
        path = Path(path)
        real = Path(os.path.realpath(path))
        if real != self.real and self.real not in real.parents:
            link = self._first_link(path)
            via = f"the symlink {link} -> {os.readlink(link)}" if link else f"{path}"
            raise UnsafePath(
                f"{what}: {via} leads outside the home {self.path}; osl-hooks never writes outside the "
                "home volume (remove or fix the link)"
            )
        return path

    def makedirs(self, path: str | os.PathLike[str], what: str) -> Path:
        """Create a directory (and parents) inside the home, refusing links that point out of it."""
        path = self.check(path, what)
        path.mkdir(parents=True, exist_ok=True)
        return self.check(path, what)

    def write_text(self, path: str | os.PathLike[str], text: str, what: str, mode: int = 0o644) -> Path:
        """Atomically replace `path` with `text`: readers see the old or the new file, never half of one.

        Only the directory must be inside the home: a link at `path` itself is replaced, never written through.
        """
        path = Path(path)
        self.makedirs(path.parent, what)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, mode)
            point(f"write:{what}:temp-written")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        point(f"write:{what}:replaced")
        return path

    # Reading never follows anything anywhere dangerous; the one reader is shared with the hub's status reader.
    read_text = staticmethod(read_state_text)

    def _first_link(self, path: Path) -> Path | None:
        """The first symlink on the way from the home to `path`, to name it in the message."""
        current = self.path
        try:
            parts = path.relative_to(self.path).parts
        except ValueError:
            return None
        for part in parts:
            current = current / part
            if current.is_symlink():
                return current
        return None
