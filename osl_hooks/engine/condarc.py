"""Pointing conda at the user's envs directory without clobbering the user's ~/.condarc.

`conda create -n NAME` puts a new env in the first writable `envs_dirs` entry; in a notebook image that is
the read-only image unless `~/.condarc` says otherwise, and then the env is lost at the next restart.
osl-hooks therefore makes sure `envs_dirs` lists the user's envs directory first. It only ever appends a
block to the file, so the user's comments and settings stay as they wrote them; when the user already
chose their own `envs_dirs`, their choice wins and osl-hooks says so instead of rewriting it.
"""

from __future__ import annotations

from pathlib import Path

from .homepaths import Home


class CondarcError(Exception):
    """~/.condarc could not be used; the message says why and that nothing was changed."""


def ensure_envs_dirs(home: Home, condarc: Path, envs_dirs: list[str]) -> str:
    """Make `envs_dirs` in `condarc` start with `envs_dirs`; return what was done, in words."""
    import yaml  # only user-env plans need it

    home.check(condarc, "~/.condarc")
    text = ""
    if condarc.exists():
        text = home.read_text(condarc)
        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise CondarcError(f"{condarc} is not valid YAML ({e.problem or e}); left unchanged") from None
        if not isinstance(config, dict):
            raise CondarcError(f"{condarc} does not hold a mapping of settings; left unchanged")
        current = config.get("envs_dirs")
        if current is not None:
            if isinstance(current, list) and current[:1] in ([envs_dirs[0]], [_tilde(home, envs_dirs[0])]):
                return f"{condarc} already lists {envs_dirs[0]} first"
            raise CondarcError(
                f"{condarc} sets envs_dirs to {current!r}, without {envs_dirs[0]} first; your setting is kept, "
                f"so conda will not create new envs in {envs_dirs[0]}"
            )
    block = "\n# Added by osl-hooks: new conda envs go to your home, where they survive restarts.\nenvs_dirs:\n"
    block += "".join(f"  - {d}\n" for d in envs_dirs)
    separator = "" if not text or text.endswith("\n") else "\n"
    home.write_text(condarc, text + separator + block.lstrip("\n" if not text else ""), "~/.condarc")
    return f"{'updated' if text else 'created'} {condarc}: envs_dirs {', '.join(envs_dirs)}"


def _tilde(home: Home, path: str) -> str:
    """The ~/ spelling of a path in the home, as users often write it in .condarc."""
    rel = Path(path).relative_to(home.path) if Path(path).is_relative_to(home.path) else None
    return f"~/{rel.as_posix()}" if rel is not None else path
