"""The one place that decides, per env and start, what kind of copy a `synced` or `linked` env gets.

`decide` returns the decision as a value (`CopyKind`), and the runner acts on it; nothing below it chooses
again. It settles:

- **real files or links** (`mode`): `linked` links only where the user cannot write the image. Over a source
  the user can write (Jupyter Docker Stacks give `/opt/conda` to the notebook user), the user's writes
  through links would go into the image and be lost at a restart, so the env gets real files (`synced`), and
  the start says why (`not_linked_because`) and what fixes it (root, in throwaway containers, is not asked:
  `notlinked.user_can_write`);
- **when a first copy is made** (`first_copy`): now, before the server is ready; later, by the background
  copy process (`first_copy: background` with a start that runs the server command); or not by this start,
  because a background copy is running already (never doubled). It applies to every copy of real files, so
  a `linked` env given real files follows the policy as a `synced` env of the same image does. A linked
  copy that links writes little, and is made before ready;
- **a change of mode**: `linked` -> `synced` makes every link real first (`unlink_first`: room checked
  first, nothing changed without it; without the image's env the links cannot be made real and would
  dangle, so the env gets no kernel, and the start says why); `synced` -> `linked` keeps the full copy
  (`stays_full`: it works, and re-linking files would second-guess what the user changed), said in one
  line: `osl-hooks reset NAME` makes a linked copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from .._records import record
from ..plan import Environment
from ..status import human_bytes
from .background import CopyPlaces, drop_staging, remove_placeholder
from .homepaths import Home
from .materialize import MaterializeError, is_linked_copy, make_real, recorded_links
from .notices import Notices
from .notlinked import TEXTS, WRITABLE_IMAGE, user_can_write
from .reporter import EnvStatus, Reporter
from .summary import linked_share
from .synced import EnvProblem, EnvSync, FirstCopyAt
from .syncstate import SyncState


@record(frozen=True)
class CopyKind:
    """What a copied env gets at this start (see the module's docstring)."""

    mode: Literal["synced", "linked"]  # real files, or links into the image where they can be
    first_copy: FirstCopyAt  # if there is no copy yet
    unlink_first: bool = False  # a former linked copy: its links become real files before it syncs
    stays_full: bool = False  # linked asked, a full copy kept
    not_linked_because: tuple[str, ...] = ()  # linked asked, real files given: why (WRITABLE_IMAGE)


def decide(env: Environment, home: Home, state_dir: Path, background: bool) -> CopyKind:
    """The kind of copy `env` gets at this start. `background`: the start runs the server command, so a first
    copy may be left to the background copy process."""
    state = SyncState(home, state_dir / "envs", env.name)
    record = state.record()
    was_linked = is_linked_copy(state.directory, env.name, record)
    because: tuple[str, ...] = ()
    mode: Literal["synced", "linked"] = "synced"
    stays_full = False
    if env.mode == "linked":
        if user_can_write(Path(env.source or "")):
            because = (WRITABLE_IMAGE,)
        elif record is not None and not was_linked and home.check(env.target or "", env.name).exists():
            stays_full = True
        else:
            mode = "linked"
    if CopyPlaces.of(state_dir, env).running():
        when = FirstCopyAt.RUNNING
    elif background and mode == "synced" and env.first_copy == "background":
        when = FirstCopyAt.LATER
    else:
        when = FirstCopyAt.NOW
    unlink = was_linked and mode == "synced"
    return CopyKind(mode, when, unlink_first=unlink, stays_full=stays_full, not_linked_because=because)


def tell(kind: CopyKind, env: Environment, report: Reporter, notices: Notices) -> None:
    """What the decision means for the user, said before the env is prepared (see `tell_not_linked`)."""
    status = report.envs[env.name]
    for cause in kind.not_linked_because:
        status.not_linked(cause)
    if env.mode == "linked":
        tell_not_linked(env, {WRITABLE_IMAGE}, status, report, notices)
    if kind.stays_full:
        report.info(
            f"{env.name} stays a full copy in your home (it was synced before); `osl-hooks reset {env.name}` "
            "makes it a linked copy (your copy is moved aside first)",
            env.name,
        )


def tell_not_linked(env: Environment, causes: set[str], status: EnvStatus, report: Reporter, notices: Notices) -> None:
    """Why a linked env is not (all) linked, for each of `causes` that applies (the env's status says which):
    once in full, with the fix, as a warning; then in a line at each start while the cause stays."""
    for cause in sorted(causes):
        key = f"not-linked:{cause}:{env.name}"
        if cause not in (status.not_linked_because or ()):
            notices.resolved(key)
            continue
        share = linked_share(status.linked_bytes, status.volume_bytes) or 0.0
        sentence, line, fix = (s.format(name=env.name, source=env.source, share=f"{share:.0%}") for s in TEXTS[cause])
        if notices.already_said(key, str(env.source)):
            report.info(line, env.name)
        else:
            report.warning(f"{sentence} (admins: {fix})", env.name)
            notices.said(key, str(env.source))


def not_linked_reason(cause: str, source: str) -> str:
    """A cause of `not_linked_because` for `osl-hooks status`: what it is (the sentence after its first colon),
    and the fix."""
    if cause not in TEXTS:
        return cause
    sentence, _line, fix = (s.format(name="it", source=source, share="") for s in TEXTS[cause])
    return f"{sentence.split(': ', 1)[-1]} (admins: {fix})"


def sync_of(
    kind: CopyKind, env: Environment, home: Home, state_dir: Path, report: Reporter, margins: tuple[float, int]
) -> EnvSync:
    """The sync that carries the decision out, its home made ready for it (no placeholder of a background copy
    where the copy goes, no staging of one that this start will not finish, no links of a former linked copy)."""
    make = EnvSync
    if kind.mode == "linked":
        from .linked import LinkedSync  # only linked envs pay for its import

        make = LinkedSync
    sync = make(env, home, state_dir, report, margins, kind.first_copy)
    places = CopyPlaces.of(state_dir, env)
    remove_placeholder(sync.target)  # no copy: a background copy's link to its guards is put back if still copying
    if kind.first_copy is FirstCopyAt.NOW:
        drop_staging(places)  # a background copy this start will not finish
    if kind.unlink_first:
        unlink(sync)
    return sync


def unlink(sync: EnvSync) -> None:
    """A linked copy whose env is now `synced`: its links become real files, then it syncs as usual."""
    links = recorded_links(sync.state.directory, sync.env.name, sync.state.record())
    if links and not sync.source.is_dir():
        from .linked import ImageLacksEnv

        raise ImageLacksEnv(
            f"{sync.source} is not in this image, and your copy of {sync.env.name} still links to files there "
            "(it is becoming a full copy), so its kernel is not registered; start a server whose image has it"
        )
    if not sync.target.is_dir():
        return
    try:
        files, size = make_real(sync.state, sync.target, sync.source, None, sync.margin_bytes, False)
    except MaterializeError as e:
        raise EnvProblem(f"it stays linked to the image for now: {e}") from None
    if files:
        sync.report.info(
            f"{sync.env.name} is now a full copy: {files} links into the image replaced by copies "
            f"({human_bytes(size)})",
            sync.env.name,
        )
