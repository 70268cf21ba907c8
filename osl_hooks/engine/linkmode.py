"""Which kind of copy a `synced` or `linked` env gets at this start, including a change of mode.

The plan says the mode the admin wants; the home says what the copy was last time (a sync record with
`links` is a linked copy). They can differ, and the start carries the change out or says why not:

- `linked` over a source the user can write (Jupyter Docker Stacks give `/opt/conda` to the notebook user):
  never linked, since the user's writes would go into the image and be lost; the env is `synced` instead,
  said in one sentence (in full once, then in a line) naming what the admin can fix;
- `linked` -> `synced`: the next start makes every link real first (`osl_hooks.engine.materialize`: room
  checked first, nothing changed without it), then syncs as usual. Without the image's env the links
  cannot be made real and would dangle, so the env gets no kernel, and the start says why;
- `synced` -> `linked`: the full copy stays as it is (it works, and re-linking files would second-guess what
  the user changed), said in one line: `osl-hooks reset NAME` makes a linked copy.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..plan import Environment
from ..status import human_bytes
from .homepaths import Home
from .linked import ImageLacksEnv, LinkedSync
from .linkplan import user_can_write
from .materialize import MaterializeError, is_linked_copy, make_real, recorded_links
from .notices import Notices
from .reporter import Reporter
from .synced import EnvProblem, EnvSync
from .syncstate import SyncState


class UnlinkingSync(EnvSync):
    """A linked copy whose env is now `synced`: its links become real files, then it syncs as usual."""

    def run(self) -> Path:
        links = recorded_links(self.state.directory, self.env.name, self.state.record())
        if links and not self.source.is_dir():
            raise ImageLacksEnv(
                f"{self.source} is not in this image, and your copy of {self.env.name} still links to files there "
                "(it is becoming a full copy), so its kernel is not registered; start a server whose image has it"
            )
        if self.target.is_dir():
            try:
                files, size = make_real(self.state, self.target, self.source, None, self.margin_bytes, False)
            except MaterializeError as e:
                raise EnvProblem(f"it stays linked to the image for now: {e}") from None
            if files:
                self.report.info(
                    f"{self.env.name} is now a full copy: {files} links into the image replaced by copies "
                    f"({human_bytes(size)})",
                    self.env.name,
                )
        return super().run()


def sync_for(
    env: Environment,
    home: Home,
    state_dir: Path,
    report: Reporter,
    margins: tuple[float, int],
    notices: Notices,
    synced: Callable[..., EnvSync] = EnvSync,
) -> tuple[EnvSync, str]:
    """The sync that prepares `env` at this start, and the mode the user gets. `synced` makes the sync of an env
    the plan asks to be synced (the runner's may make its first copy in the background)."""
    state = SyncState(home, state_dir / "envs", env.name)
    record = state.record()
    was_linked = is_linked_copy(state.directory, env.name, record)
    if env.mode == "synced":
        return (UnlinkingSync if was_linked else synced)(env, home, state_dir, report, margins), "synced"
    key = f"writable-image:{env.name}"
    if user_can_write(Path(env.source or "")):
        message = (
            f"{env.name} is a full copy in your home, not linked to the image: you can write the image's "
            f"{env.source}, so your writes through links would go into the image and be lost at a restart "
            f"(admins: make it read-only for the notebook user in the image, see `osl-hooks bake`)"
        )
        if notices.already_said(key, str(env.source)):
            report.info(f"{env.name} is a full copy: you can write the image's {env.source}", env.name)
        else:
            report.warning(message, env.name)
            notices.said(key, str(env.source))
        return (UnlinkingSync if was_linked else EnvSync)(env, home, state_dir, report, margins), "synced"
    notices.resolved(key)
    if record is not None and not was_linked and home.check(env.target or "", env.name).exists():
        report.info(
            f"{env.name} stays a full copy in your home (it was synced before); `osl-hooks reset {env.name}` "
            "makes it a linked copy (your copy is moved aside first)",
            env.name,
        )
        return EnvSync(env, home, state_dir, report, margins), "synced"
    return LinkedSync(env, home, state_dir, report, margins), "linked"
