"""Things a user is told once, not at every start.

Some problems stay as they are from start to start until someone acts: an image env whose binaries cannot
be moved into the home, a kernel the user made with osl-hooks' name. Repeating a long message (and a
degraded start) every time teaches people to ignore warnings; so the first start says it in full, and later
starts say it in one short line, as long as the cause is the same. `<state_dir>/notices.json` remembers
what was said, keyed by what it was about, with a fingerprint of the cause (e.g. the image's env id).
"""

from __future__ import annotations

import json
from pathlib import Path

from .homepaths import Home

NOTICES_FILE = "notices.json"


class Notices:
    def __init__(self, home: Home, state_dir: Path):
        self.home = home
        self.path = state_dir / NOTICES_FILE
        self._said: dict[str, str] = self._read()

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(Home.read_text(self.path))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}

    def already_said(self, key: str, fingerprint: str) -> bool:
        return self._said.get(key) == fingerprint

    def said(self, key: str, fingerprint: str) -> None:
        if self._said.get(key) != fingerprint:
            self._said[key] = fingerprint
            self._save()

    def resolved(self, key: str) -> None:
        """The cause is gone: say it in full again if it comes back."""
        if self._said.pop(key, None) is not None:
            self._save()

    def _save(self) -> None:
        try:
            self.home.write_text(self.path, json.dumps(self._said, indent=1), "notices")
        except OSError:
            pass  # at worst the message is said in full again
