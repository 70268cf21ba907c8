"""The shape of osl-hooks' links into the image, short enough to cost no data block, and how they are recognised.

ext4 keeps a symlink's target inside the inode when it is at most 59 bytes; a longer one costs a 4 KiB block,
as much as a small file. A file's absolute path in the image is nearly always longer, so a linked copy's
links go through one hidden link per directory, and only the env's root link names the image's env:

    <env>/.osl-image        -> <the image's env>          (absolute: one per env)
    <env>/D/.osl-image      -> ../.osl-image/<name of D>  (one per directory that holds links, and its parents)
    <env>/D/f               -> .osl-image/f

Resolving `D/f` follows one link per directory level plus the root's; Linux gives up after 40 links in one
lookup (ELOOP), so every `CHAIN`-th level (and a directory whose name is too long for a short target) gets
the absolute form `<source>/<dir>` instead, where the chain ends (a lookup follows at most `CHAIN` + 1
links). A file whose own name is too long gets the absolute form `<source>/<path>`, which is also what older
versions made for every link: both forms are recognised as osl-hooks' own. Since only the root (and the rare absolute directory link) names
the image's env, an image that moved the env costs a rename or two, not one per file; a directory the user
renames keeps working (its link names the image's directory by the name it had).

Tools that list a directory see the hidden `.osl-image` as a link to a directory: `os.walk` and `compileall`
do not follow it, `glob('*')` skips hidden names, and it is no Python identifier, kernel or package record.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable
from pathlib import Path

from .faultpoints import point
from .linksfile import LinkChanges

IMAGE_LINK = ".osl-image"
INODE_TARGET_BYTES = 59  # ext4 keeps a target up to this long inside the inode
CHAIN = 16  # a lookup follows the file's link, < CHAIN relative directory links and one absolute: far below 40
_FILE_PREFIX = f"{IMAGE_LINK}/"
_DIR_PREFIX = f"../{IMAGE_LINK}/"


def _fits(prefix: str, name: str) -> bool:
    return len(os.fsencode(prefix + name)) <= INODE_TARGET_BYTES


class LinkForm:
    """The targets of one env's links into `source` (the image's env), and which links are osl-hooks' own."""

    def __init__(self, source: Path | str):
        self.source = str(source)
        self._chain: dict[str, int] = {"": 0}  # per directory: relative links between it and an absolute one

    def file_target(self, path: str) -> str:
        """What the link osl-hooks makes at `path` points at."""
        name = path.rsplit("/", 1)[-1]
        return _FILE_PREFIX + name if _fits(_FILE_PREFIX, name) else f"{self.source}/{path}"

    def dir_target(self, directory: str) -> str:
        """What `<directory>/.osl-image` points at ('' is the env's root)."""
        if self._chained(directory):
            return _DIR_PREFIX + directory.rsplit("/", 1)[-1]
        return f"{self.source}/{directory}" if directory else self.source

    def _chained(self, directory: str) -> bool:
        if directory not in self._chain:
            parent, _, name = directory.rpartition("/")
            self._chained(parent)
            above = self._chain[parent] + 1
            self._chain[directory] = above if above < CHAIN and _fits(_DIR_PREFIX, name) else 0
        return self._chain[directory] > 0

    def is_own(self, path: str, link: str | None, *other_sources: Path | str) -> bool:
        """Whether a link at `path` reading `link` is one osl-hooks made (the short form, or the absolute one
        into this source or one it replaced)."""
        if link is None:
            return False
        if link == _FILE_PREFIX + path.rsplit("/", 1)[-1]:
            return True
        return any(link == f"{s}/{path}" for s in (self.source, *other_sources))

    def make_dir_links(self, root: Path, directories: Iterable[str]) -> None:
        """Give each of `directories` (relative to `root`, parents included) its link, replacing a stale one."""
        for directory in sorted(with_parents(directories)):
            place = f"{root}/{directory}/{IMAGE_LINK}" if directory else f"{root}/{IMAGE_LINK}"
            wanted = self.dir_target(directory)
            try:
                os.symlink(wanted, place)
                continue
            except FileExistsError:
                pass
            try:
                if os.readlink(place) == wanted:
                    continue
            except OSError:
                raise OSError(errno.EEXIST, "not osl-hooks' link into the image, and in its way", place) from None
            replace_link(Path(place), wanted)

    def absolute_dirs(self, directories: Iterable[str]) -> list[str]:
        """Of `directories` and their parents, those whose link names the source (to renew when it moves)."""
        return sorted(d for d in with_parents(directories) if not self._chained(d))


def replace_link(place: Path, target: str) -> None:
    """Make `place` a link to `target` in one rename (whatever link was there is replaced, never written)."""
    temporary = place.parent / f".osl-link-{os.urandom(4).hex()}"
    os.symlink(target, temporary)
    os.replace(temporary, place)


def with_parents(directories: Iterable[str]) -> set[str]:
    """The directories and every directory above them, up to the root ('')."""
    found = {""}
    for directory in directories:
        while directory not in found:
            found.add(directory)
            directory = directory.rpartition("/")[0]
    return found


def parent_dirs(paths: Iterable[str]) -> set[str]:
    """The directories holding `paths` (relative; '' for the root)."""
    return {p.rpartition("/")[0] for p in paths}


def drop_dir_links(root: Path, old_links: Iterable[str], links: Iterable[str] | LinkChanges) -> None:
    """Remove the directory links a copy with `old_links` has and one with `links` no longer needs, deepest
    first: those of directories that hold no link any more (nor any directory under them), and with no link
    left, the root's too (nothing goes through them; the copy is what one made with `links` would be).
    An update's `LinkChanges` name the links it dropped, and are searched for what is left under a directory
    (its other links are never read).

    Each is one unlink that leaves every remaining link working, so a kill between them leaves only links
    that nothing goes through; the caller commits `links` after this, and redoes it when it was killed."""
    if isinstance(links, LinkChanges):
        dropped, holds_under = links.removed, links.holds_under
    else:
        links = set(links)
        dropped = set(old_links) - links
        holds_under = (with_parents(parent_dirs(links)) if links else set()).__contains__
    if not dropped:
        return
    stale = [d for d in with_parents(parent_dirs(dropped)) if not holds_under(d)]
    for directory in sorted(stale, key=lambda d: (d.count("/") if d else -1, d), reverse=True):
        place = root / directory / IMAGE_LINK if directory else root / IMAGE_LINK
        if os.path.islink(place):
            place.unlink()
            point("link:dir-link-dropped")
