"""The three-way decision of an update (`osl_hooks.engine.update`) for a linked copy, where a link to the image
is one more way a path can be as osl-hooks left it. Its own module, imported by the starts that update: a linked
restart with nothing new has no use for the decision, nor for `update` and `linkplan`."""

from __future__ import annotations

from pathlib import Path

from . import linkplan, update
from .linkform import LinkForm
from .linksfile import LinkChanges, SortedLinks
from .manifest import Entry, Manifest, changed_paths, entry_on_disk


class LinkedDecision:
    """The three-way decision of `osl_hooks.engine.update`, with links to the image as one more 'as left'."""

    def __init__(
        self,
        form: LinkForm,
        target: Path,
        threshold: int,
        base: Manifest,
        theirs: Manifest,
        overrides: dict[str, update.Stat],
        old_links: SortedLinks,
        old_source: Path,
        pip_resolves: bool,
    ):
        self.form, self.source, self.target, self.threshold = form, Path(form.source), target, threshold
        self.base, self.theirs, self.overrides = base, theirs, overrides
        self.old_links, self.old_source = old_links, old_source
        self.pip_resolves = pip_resolves  # the env's pip probe's answer (see linkplan)

    def decide(self, trusted: set[str]) -> tuple[update.Changes, list[str], LinkChanges]:
        """The changes for rsync (real files), the paths to (re)link, and the links the copy will have (those of
        its links file, changed where the image changed a path: the others are never read)."""
        base, theirs, target = self.base, self.theirs, self.target
        changes = update.Changes(user_packages=update.UserPackages(base, self.overrides, target, trusted))
        links = LinkChanges(self.old_links)
        relink: list[str] = []
        classify = linkplan.Classifier(theirs, self.source, self.threshold, self.pip_resolves)
        changed = changed_paths(base, theirs)  # sorted; only the manifests' differing lines are parsed
        for path, now in update.untouched_paths(changes, changed, base, theirs, target, trusted, self._as_left):
            links.discard(path)
            if path in theirs.entries and classify.is_link(path):
                links.add(path)
                if now is None or now.kind != "l" or now.link != self.form.file_target(path):
                    relink.append(path)
            else:
                update.take_image_side(changes, path, now, theirs)
        if self.old_source != self.source:  # the image moved the env: links naming its old path follow it
            image_changed = set(changed)
            old = f"{self.old_source}/"
            for path in [p for p in links if p not in image_changed]:
                now = entry_on_disk(target / path)
                if now is not None and now.kind == "l" and now.link == old + path:
                    relink.append(path)
        return changes, relink, links

    def _as_left(self, path: str, now: Entry | None) -> bool:
        if now is not None and now.kind == "l" and self.form.is_own(path, now.link, self.old_source):
            return True
        # Otherwise, a path osl-hooks left as a link is its own only as a materialized copy (the image's size
        # and mtime, which is what the base says); a file the user wrote there is theirs.
        return update.is_as_left(self.base, self.overrides, path, now)
