"""osl-hooks' metrics, in JupyterHub's own ``/hub/metrics`` (prometheus_client's default registry).

JupyterHub serves its default registry at ``/hub/metrics`` with its own authentication (a token with the
``read:metrics`` scope, unless the admin turned that off), so metrics registered here in the hub process
appear beside JupyterHub's. No metric has a per-user label (cardinality): per-user detail is the admin
report's (`report`). Label values come from fixed lists; anything else an engine sends counts as "other".

Counted once per start, when the hub reads its end (`start_record`):

- ``osl_hooks_starts_total{outcome}`` and ``osl_hooks_start_seconds{outcome}`` (the whole preparation);
- ``osl_hooks_start_phase_seconds{phase,outcome}``: copy (first copies), update, kernels, scripts — a phase
  a start did not go through is not observed;
- ``osl_hooks_fallbacks_total{reason}``, ``osl_hooks_conflicts_found_total``,
  ``osl_hooks_copied_bytes_total{mode}``, ``osl_hooks_setup_scripts_total{state}``.

Read from the database at each scrape (every server's last start, `fleet`): ``osl_hooks_env_servers{env,mode,
state}`` (servers per env state, the offered envs' `fleet.STATES` with underscores: up_to_date, behind, conflicts,
fell_back, failed, absent, copying, ready; "did the update reach everyone"), ``osl_hooks_env_volume_bytes{env,
mode}`` and ``osl_hooks_env_linked_bytes{env,mode}`` (what the copies take on the volumes, and what links save); for
the copies of retired envs (`c.OSLHooks.retired_env_days`; each user's copies once, `fleet.retired_copies`),
``osl_hooks_retired_bytes{state}`` (what they hold on the volumes: waiting, due, kept — changed by their user —
or other) and ``osl_hooks_reclaimed_bytes`` (what removing them freed, over every user). Those rows are not in the
env gauges, which follow the envs the hub offers.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from ..plan import COPIED_MODES
from .fleet import OTHER, RETIRED, EnvRow, LastStart, env_rows, last_starts, retired_copies

log = logging.getLogger("JupyterHub")
OUTCOMES = ("ok", "degraded", "failed")
PHASES = ("copy", "update", "kernels", "scripts")
FALLBACK_REASONS = ("disk_full", "relocation", "unsafe_home", "copy_failed")
SCRIPT_STATES = ("ok", "failed", "timeout", "skipped")
HELD_STATES = (*(s for s in RETIRED if s != "removed"), OTHER)  # a removed copy holds nothing
SECONDS_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, float("inf"))

STARTS = Counter("osl_hooks_starts", "Starts of osl-hooks, by outcome (ok, degraded, failed)", ["outcome"])
START_SECONDS = Histogram(
    "osl_hooks_start_seconds", "Time a start took to prepare the environments, by outcome", ["outcome"],
    buckets=SECONDS_BUCKETS,
)  # fmt: skip
PHASE_SECONDS = Histogram(
    "osl_hooks_start_phase_seconds", "Time a start spent per phase (copy, update, kernels, scripts), by outcome",
    ["phase", "outcome"], buckets=SECONDS_BUCKETS,
)  # fmt: skip
FALLBACKS = Counter("osl_hooks_fallbacks", "Envs that fell back to the image's copy, by reason", ["reason"])
CONFLICTS = Counter("osl_hooks_conflicts_found", "Files found changed both by a user and by an image update")
COPIED_BYTES = Counter("osl_hooks_copied_bytes", "Bytes copied into users' homes (first copies, updates)", ["mode"])
SCRIPTS = Counter("osl_hooks_setup_scripts", "Setup script runs, by state (ok, failed, timeout, skipped)", ["state"])

for _outcome in OUTCOMES:  # every series exists from the hub's start: dashboards show 0, not "no data"
    STARTS.labels(_outcome)
for _reason in FALLBACK_REASONS:
    FALLBACKS.labels(_reason)
for _mode in COPIED_MODES:
    COPIED_BYTES.labels(_mode)
for _state in SCRIPT_STATES:
    SCRIPTS.labels(_state)


def _known(value: Any, known: tuple[str, ...]) -> str:
    return value if value in known else OTHER


def observe_start(record: dict[str, Any]) -> None:
    """Count one finished start (a record of `start_record`)."""
    outcome = _known(record.get("outcome"), OUTCOMES)
    summary = record.get("summary") or {}
    STARTS.labels(outcome).inc()
    if isinstance(record.get("seconds"), (int, float)):
        START_SECONDS.labels(outcome).observe(record["seconds"])
    for phase, seconds in (summary.get("phases") or {}).items():
        if phase in PHASES and isinstance(seconds, (int, float)) and seconds > 0:
            PHASE_SECONDS.labels(phase, outcome).observe(seconds)
    for env in summary.get("envs") or []:
        if env.get("state") == "fallback":
            FALLBACKS.labels(_known(env.get("fallback"), FALLBACK_REASONS)).inc()
        if isinstance(env.get("new_conflicts"), int) and env["new_conflicts"] > 0:
            CONFLICTS.inc(env["new_conflicts"])
        if isinstance(env.get("copied_bytes"), int) and env["copied_bytes"] > 0:
            COPIED_BYTES.labels(_known(env.get("mode"), COPIED_MODES)).inc(env["copied_bytes"])
    for state, count in (summary.get("scripts") or {}).items():
        if isinstance(count, int) and count > 0:
            SCRIPTS.labels(_known(state, SCRIPT_STATES)).inc(count)


class FleetCollector:
    """Gauges over every server's last start, computed when Prometheus scrapes (`fleet.env_rows`)."""

    def __init__(self, source: Callable[[], list[LastStart]]):
        self.source = source

    def describe(self) -> Iterator[Metric]:
        return iter(self._families())

    def collect(self) -> Iterator[Metric]:
        servers, volume, linked, retired, reclaimed = self._families()
        per_state: Tally[tuple[str, str, str]] = Tally()
        volume_sum: Tally[tuple[str, str]] = Tally()
        linked_sum: Tally[tuple[str, str]] = Tally()
        try:
            rows = env_rows(self.source())
        except Exception as e:  # JupyterHub's own metrics must still be served
            log.warning("osl-hooks: the fleet's metrics cannot be read from the hub's database: %r", e)
            rows = []
        for row in rows:
            if not row.env or row.retired:
                continue
            per_state[(row.env, row.mode, row.state.replace(" ", "_"))] += 1
            if row.state != "fell back" and row.volume_bytes is not None:
                volume_sum[(row.env, row.mode)] += row.volume_bytes
                linked_sum[(row.env, row.mode)] += row.linked_bytes or 0
        for labels, count in sorted(per_state.items()):
            servers.add_metric(list(labels), count)
        for labels, total in sorted(volume_sum.items()):
            volume.add_metric(list(labels), total)
            linked.add_metric(list(labels), linked_sum[labels])
        self._add_retired(rows, retired, reclaimed)
        return iter((servers, volume, linked, retired, reclaimed))

    @staticmethod
    def _add_retired(rows: list[EnvRow], retired: GaugeMetricFamily, reclaimed: GaugeMetricFamily) -> None:
        """Each user's retired copies once: the bytes they hold per state (every state, 0 rather than "no data"),
        and the bytes removed ones freed."""
        held: Tally[str] = Tally(dict.fromkeys(HELD_STATES, 0))
        freed = 0
        for row in retired_copies(rows):
            if row.retired != "removed":
                held[row.retired] += row.volume_bytes or 0
            freed += row.reclaimed_bytes or 0
        for state in HELD_STATES:
            retired.add_metric([state], held[state])
        reclaimed.add_metric([], freed)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily(
                "osl_hooks_env_servers", "User servers per env, mode and state at their last start",
                labels=["env", "mode", "state"],
            ),
            GaugeMetricFamily(
                "osl_hooks_env_volume_bytes", "Bytes the envs' copies take on users' volumes (last starts)",
                labels=["env", "mode"],
            ),
            GaugeMetricFamily(
                "osl_hooks_env_linked_bytes", "Bytes the envs' copies serve through links into the image (last starts)",
                labels=["env", "mode"],
            ),
            GaugeMetricFamily(
                "osl_hooks_retired_bytes",
                "Bytes users' copies of retired envs hold on their volumes, by state (waiting, due, kept, other)",
                labels=["state"],
            ),
            GaugeMetricFamily(
                "osl_hooks_reclaimed_bytes", "Bytes freed on users' volumes by removing copies of retired envs",
            ),
        )  # fmt: skip


def hub_last_starts() -> list[LastStart]:
    """Every server's last start, from the running hub's database (nothing before the hub is up)."""
    from jupyterhub.app import JupyterHub

    db = getattr(JupyterHub.instance(), "db", None) if JupyterHub.initialized() else None
    return last_starts(db) if db is not None else []


_registered: list[FleetCollector] = []


def register_fleet_metrics() -> None:
    """Add the fleet gauges to the default registry, once per process (install(c) may run more than once)."""
    if not _registered:
        _registered.append(FleetCollector(hub_last_starts))
        REGISTRY.register(_registered[0])
