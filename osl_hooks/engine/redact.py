"""Hub API tokens and other secrets never reach what a start leaves behind.

The start runs where the hub put its API token (`JUPYTERHUB_API_TOKEN`, `JPY_API_TOKEN`) and the plan may
give kernels secret variables; a setup script that prints its environment would copy them into
`start.log`, `status.json` and the pod's termination message, which admins read and pods' status shows.
Every line those outputs get is passed through a `Redactor` first, which hides the values of variables
whose names say they are secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|CREDENTIAL|COOKIE", re.IGNORECASE)
MIN_SECRET_LENGTH = 8  # shorter values would hide ordinary words
HIDDEN = "[hidden]"


def secret_values(variables: Mapping[str, str]) -> list[str]:
    return [v for k, v in variables.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH]


class Redactor:
    def __init__(self, values: Iterable[str] = ()):
        self._values: list[str] = []
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        self._values = sorted(set(self._values) | set(values), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, HIDDEN)
        return text
