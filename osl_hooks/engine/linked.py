"""One `linked` env: a synced env whose files are symlinks into the image's env, but for those that must be real.

The user's copy holds every file that must be real (`osl_hooks.engine.linkplan`), and a short symlink for each
other file (`osl_hooks.engine.linkform`: `f -> .osl-image/f`, through one hidden link per directory and the
root's `.osl-image -> <source>`). pip and conda unlink a file before they write its replacement, so what the
user upgrades, installs or removes becomes real files in the home and the image is never written; what the
user never touches costs one inode per file and no data block.

What osl-hooks left at a path is a link to the image exactly when the path is in the sync record's links
(`SyncState.links`, in a file the record names, committed with the record, in its one rename), and a link in either of linkform's forms is always
recognised as its own; a path in `links` that is a real file with the image's size and mtime is a
materialized link, also its own (`osl_hooks.engine.materialize`). So the three-way update of `synced`
applies with one more kind of "as left": a link replaced by a real file is the user's; a file whose content
changed behind a link needs nothing (the link already shows it); a file that became must-be-real is copied,
like any other change. A start with nothing new reads the same one manifest line as `synced`.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from .linkform import LinkForm, drop_dir_links, parent_dirs, replace_link
from .linksfile import LinkChanges, SortedLinks
from .manifest import Entry, Manifest, differing_paths, entry_on_disk
from .materialize import recorded_links, settle_interrupted
from .notlinked import DEBIAN_PIP
from .synced import CopyLater, EnvProblem, EnvSync
from .syncstate import names_links


class ImageLacksEnv(EnvProblem):
    """The image has no env at the source path: the copy's links would dangle, so it gets no kernel."""


class LinkedSync(EnvSync):
    """Prepares one linked env (first copy, update, full comparison) on top of `EnvSync`'s decisions."""

    def __init__(self, *args: Any, **kwargs: Any):  # EnvSync's
        super().__init__(*args, **kwargs)
        self.threshold = self.env.link_threshold
        self.form = LinkForm(self.source)
        self._links: set[str] = set()  # a first copy's
        self._dirs: list[tuple[str, int]] = []  # a first copy's directories, with their modes
        self._real: list[tuple[str, int]] = []  # a first copy's other real paths, with their sizes
        self._planned: tuple[int, int] | None = None  # see _footprint
        self._update: tuple[dict, Manifest, list[str]] | None = None  # an update's record, base and candidates

    def run(self) -> Path | CopyLater:
        if self.target.is_dir():
            settle_interrupted(self.state, self.target, self.source)
        if not self.source.is_dir():
            raise ImageLacksEnv(
                f"{self.source} is not in this image, and your copy of {self.env.name} links to files there, so "
                f"its kernel is not registered; start a server whose image has it (there, `osl-hooks materialize "
                f"{self.env.name}` makes your copy independent of the image)"
            )
        return super().run()

    def base_manifest(self, record: dict, theirs: Manifest) -> Manifest | None:
        """As for synced; and a record whose links file is missing or damaged is no usable record either: the
        update could not tell osl-hooks' links from the user's files (the full comparison tells them apart)."""
        base = super().base_manifest(record, theirs)  # first: its file is read while no links are held
        if base is None or (names_links(record) and self.state.read_links(record) is None):
            return None
        return base

    def _unchanged(self, record: dict | None, image_id: str | None) -> bool:
        """Nothing new also needs the env at the same path: the links point at it."""
        return super()._unchanged(record, image_id) and bool(record) and record.get("source") == str(self.source)

    # -- first copy ----------------------------------------------------------------------------------

    def _first_copy_size(self, theirs: Manifest) -> tuple[int, int]:
        """Classify every path; the env's pip, when it must be asked, is asked meanwhile, as if it kept links (so
        upstream's pip costs no wait), and the env classified again when it resolves them (Debian's)."""
        from . import linkplan  # which files a linked copy links: a first copy's, an update's

        key = linkplan.pip_probe_key(theirs, self.source)
        probe = linkplan.PipProbe(self.source) if key is not None else None
        try:
            plan = linkplan.first_copy(theirs, self.source, self.threshold, False)
            resolves = probe is not None and probe.resolves()
        finally:
            if probe is not None:
                probe.close()
        self._note_pip(key, resolves)
        if resolves:
            plan = linkplan.first_copy(theirs, self.source, self.threshold, True)
        self._links, self._dirs, self._real = plan.links, plan.dirs, plan.real
        self._planned = (plan.volume, plan.linked_bytes)  # what _footprint records
        return theirs.bytes - plan.linked_bytes, plan.volume

    def _footprint(self, theirs: Manifest) -> dict[str, int]:
        """Real files by their blocks, a block per long link; the links' bytes are served by the image.

        An update changes the last sync's figures by the paths it looked at (the image's changes and the
        paths that became or stopped being links), so it reads neither every entry of the manifest nor every
        link."""
        from . import linkplan  # (a sync with work to do)

        links = self.state.links or set()  # the links this sync commits
        last = self._update
        if self._planned is not None:  # a first copy: counted when it was planned
            volume, linked = self._planned
        elif (
            last is None or not isinstance(links, LinkChanges) or not {"volume_bytes", "linked_bytes"} <= last[0].keys()
        ):
            links = set(links)
            volume = linkplan.volume_bytes(theirs, links, self.source)
            linked = sum(theirs.entries[p].size for p in links if p in theirs.entries)
        else:
            record, base, changed = last
            volume, linked = record["volume_bytes"], record["linked_bytes"]
            for path in {*changed, *links.added, *links.removed}:
                was, now = base.entries.get(path), theirs.entries.get(path)
                link_was, link_now = path in links.old, path in links
                volume += linkplan.path_blocks(path, now, link_now, self.form)
                volume -= linkplan.path_blocks(path, was, link_was, self.form)
                linked += (now.size if now and link_now else 0) - (was.size if was and link_was else 0)
        self.status.volume_bytes, self.status.linked_bytes = volume, linked
        return {"volume_bytes": volume, "linked_bytes": linked}

    def _fill_staging(self, staging: Path, theirs: Manifest, total: int) -> None:
        """Make the directories, rsync the real files (and the image's symlinks), then make the links.

        The directories are made here, with the image's modes (and the owner's write bit, as rsync's
        `--chmod=u+w` gives): given to rsync as arguments too, the 4x env's 17.5k directories and 3.4k files took
        3.1-4.3 s, against 2.6 s made here and the files rsynced (load 5, 2 rounds). Their times are not the image's (the links made in them change
        them anyway; a manifest does not compare a directory's time). The real files are a few megabytes: they
        go as rsync's arguments, in two rsyncs at once (`copy_files`), not as a `--files-from` list, which rsync
        reads a byte at a time with a `poll` per byte (720k system calls for the 33k-file env's 5k real paths)."""
        from .sync import copy_files  # rsync: a first copy's real files (an update copies in its own process)

        root, umask = f"{staging}/", _umask()
        for path, mode in self._dirs:
            wanted = stat.S_IMODE(mode) | 0o200
            os.mkdir(root + path, wanted)
            if wanted & umask:
                os.chmod(root + path, wanted)
        copy_files(self.source, staging, [p for p, _ in self._real], [size for _, size in self._real])
        self._dirs, self._real = [], []
        self.report.progress(self.env.name, total, total, self._describe_progress)
        self.form.make_dir_links(staging, parent_dirs(self._links))
        file_target, root = self.form.file_target, f"{staging}/"
        for path in sorted(self._links):  # strings, not Paths: tens of thousands of them
            os.symlink(file_target(path), root + path)
        self._save_links(self._links)
        self.report.info(
            f"{self.env.name}: {len(self._links)} files are links into the image ({self.source})", self.env.name
        )

    def _pip_resolves(self, theirs: Manifest, record: dict) -> bool:
        """Whether the image's pip resolves links (see linkplan), asked once per version of that pip."""
        from . import linkplan

        key = linkplan.pip_probe_key(theirs, self.source)
        if key is None:
            return False
        known = record.get("pip_probe")
        if isinstance(known, dict) and known.get("key") == key:
            resolves = bool(known.get("resolves"))
        else:
            resolves = linkplan.pip_resolves_links(self.source)
        self._note_pip(key, resolves)
        return resolves

    def _note_pip(self, key: str | None, resolves: bool) -> None:
        """Keep the probe's answer in the sync record, and tell the user when it keeps pip's files real."""
        if key is None:
            return
        self.state.extra["pip_probe"] = {"key": key, "resolves": resolves}
        if resolves:
            self.status.not_linked(DEBIAN_PIP)

    def _up_to_date(self, record: dict) -> Path:
        probe = record.get("pip_probe")
        if isinstance(probe, dict) and probe.get("resolves"):
            self.status.not_linked(DEBIAN_PIP)
        return super()._up_to_date(record)

    # -- updates -------------------------------------------------------------------------------------

    def three_way_update(self, base: Manifest, theirs: Manifest, record: dict) -> None:
        from . import update
        from .linkdecision import LinkedDecision  # the decision's modules: for a start with an update

        overrides = {p: tuple(s) if s else None for p, s in record.get("overrides", {}).items()}
        old_links = self.state.read_links(record)
        if old_links is None:  # a record of before links were committed with it (base_manifest checked the rest)
            old_links = SortedLinks.of(recorded_links(self.state.directory, self.env.name, record) or (), rewrite=True)
        old_source = Path(record.get("source") or self.source)
        pip_resolves = self._pip_resolves(theirs, record)
        decision = LinkedDecision(
            self.form, self.target, self.threshold, base, theirs, overrides, old_links, old_source, pip_resolves
        )
        changes, relink, links = decision.decide(self.state.pending())
        self._check_space_for_update(sum(theirs.entries[p].size for p in changes.copy))  # before any link changes
        self._save_links(links)
        if old_source != self.source:  # the image moved the env: its links follow with the root's
            self.form.make_dir_links(self.target, self.form.absolute_dirs(parent_dirs(links)))
        self._make_links(relink)
        drop_dir_links(self.target, old_links, links)  # directories that hold no link any more

        def left(path: str) -> Entry | None:
            """For the sync record: what osl-hooks left (a link leaves no size and mtime to remember)."""
            return theirs.entries.get(path) if path in links else update.left_entry(base, overrides, path)

        # As for synced: what osl-hooks left differs from the image's new entries only where the image changed
        # an entry or the last sync left something else (its overrides), links included (see `left`).
        candidates = {*differing_paths(base, theirs), *overrides}
        self._update = (record, base, sorted(candidates))
        self._apply(changes, theirs, left, record.get("conflicts", []), candidates)
        if relink:
            self.report.info(f"{self.env.name}: {len(relink)} links into the image made or renewed", self.env.name)

    def full_comparison(self, theirs: Manifest) -> None:
        """As for synced (missing files are added, real); links to the image that are there stay osl-hooks'
        (the root's link is pointed at this image's env first: nothing says where it pointed)."""
        links = {p for p in theirs.entries if self._is_own_link(entry_on_disk(self.target / p), p)}
        self.form.make_dir_links(self.target, self.form.absolute_dirs(parent_dirs(links)))
        self._save_links(links)
        super().full_comparison(theirs)

    def _is_own_link(self, now: Entry | None, path: str, other_source: Path | None = None) -> bool:
        return now is not None and now.kind == "l" and self.form.is_own(path, now.link, other_source or self.source)

    def _make_links(self, paths: list[str]) -> None:
        """Replace what is at each path with a link into the image, atomically (a rename replaces, never writes)."""
        directories = parent_dirs(paths)
        for directory in directories:
            self.home.makedirs(self.target / directory, f"environments[{self.env.name}].target")
        self.form.make_dir_links(self.target, directories)
        for path in paths:
            replace_link(self.target / path, self.form.file_target(path))

    def _save_links(self, links: set[str] | LinkChanges) -> None:
        """The links the copy will have, committed with the sync record."""
        self.state.links = links


def _umask() -> int:
    """The process's umask, read without changing it (`os.umask` sets it, for every thread at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o777  # unknown: every directory gets its mode set


def own_links(target: Path, source: Path) -> dict[str, str]:
    """Every link in `target` that osl-hooks made into `source` (its own), by relative path, with the image's file.

    Walks without following any link: a link the user planted elsewhere is neither followed nor counted.
    """
    found = {}
    form = LinkForm(source)
    for dirpath, _dirs, files in os.walk(target):
        for name in files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, target)
            if os.path.islink(path) and form.is_own(rel, os.readlink(path)):
                found[rel] = f"{source}/{rel}"
    return found


def served_bytes(target: Path, source: Path) -> int:
    """Bytes of the image's files that the copy's links stand for (what the home does not pay for)."""
    total = 0
    for image_file in own_links(target, source).values():
        try:
            total += os.stat(image_file).st_size
        except OSError:
            continue  # the image lacks it (another image version): it is served by nothing
    return total


def add_link_details(state_dir: Path, records: dict[str, dict], measure: bool = True) -> dict[str, dict]:
    """`osl-hooks status` per copied env: its mode, and for linked ones the bytes its links stand for
    (None with `measure=False`: counting them walks the copy)."""
    for name, record in records.items():
        count = record.get("linked_files")
        if not isinstance(count, int) or not names_links(record):  # the record did not count them
            links = recorded_links(state_dir / "envs", name, record)
            count = None if links is None else len(links)
        linked = count is not None or names_links(record)
        record.pop("links", None)  # the count is what a reader of the status wants, not every path
        record["linked_files"] = count or 0
        record["mode"] = "linked" if linked else "synced"
        target, source = Path(record.get("target", "")), Path(record.get("source", ""))
        if not measure:
            record["bytes_via_links"] = None if linked else 0
        else:
            record["bytes_via_links"] = served_bytes(target, source) if linked and target.is_dir() else 0
    return records
