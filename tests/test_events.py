"""The events of a start (osl_hooks/events.py): each written once, every output derived from it, all valid
against the published schema, the termination message within Kubernetes' 4 KiB."""

from __future__ import annotations

import jsonschema
from conftest import write_script

from osl_hooks.engine.runner import Outcome
from osl_hooks.events import EVENT_LINE_PREFIX, Event, events_schema, parse_line, termination_text


def test_every_output_carries_the_same_valid_events(tmp_path, image, run_start, monkeypatch):
    termination_log = tmp_path / "termination-log"
    termination_log.write_text("")
    monkeypatch.setenv("OSL_HOOKS_TERMINATION_LOG", str(termination_log))
    noisy = write_script(tmp_path / "noisy.sh", "for i in 1 2 3 4 5 6 7; do echo line $i; done; exit 3")
    result = run_start(
        {
            "environments": [
                {"name": "geo", "mode": "synced", "source": str(image / "envs/geo"), "kernel": False},
                {"name": "gone", "mode": "baked", "source": str(tmp_path / "no-such-env")},
            ],
            "setup_scripts": [{"path": str(noisy)}],
        }
    )
    assert result.outcome == Outcome.DEGRADED
    validator = jsonschema.Draft7Validator(events_schema())
    logged = [parse_line(line) for line in result.output.splitlines() if line.startswith(EVENT_LINE_PREFIX)]
    for event in [*logged, *result.status["events"]]:
        validator.validate(event)
    # stdout (the container log) and status.json hold the same events, numbered in order, each once
    assert logged == result.status["events"]
    assert [e["seq"] for e in logged] == list(range(len(logged)))
    # each event line is followed by its human line
    lines = result.output.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(EVENT_LINE_PREFIX):
            assert lines[index + 1].endswith(Event(**_init_fields(parse_line(line))).human())
    kinds = [e["kind"] for e in logged]
    assert kinds[0] == "start" and kinds[-1] == "finish" and logged[0]["envs"] == ["geo", "gone"]
    assert {"env-begin", "env-done", "error", "script-begin", "script-done"} <= set(kinds)
    synced = next(e for e in logged if e["kind"] == "env-done" and e["env"] == "geo")
    assert synced["bytes_total"] > 0 and synced["files"] > 0 and synced["seconds"] >= 0
    failed = next(e for e in logged if e["kind"] == "script-done")
    assert (failed["level"], failed["state"], failed["exit_code"]) == ("warning", "failed", 3)
    assert failed["output"] == [f"[noisy.sh] line {i}" for i in range(3, 8)]  # its last lines
    # the termination message: the human sentence, then the problems and the final event as event lines
    human, *rest = termination_log.read_text().splitlines()
    assert human == logged[-1]["message"]
    assert [parse_line(line) for line in rest] == [e for e in logged if e["level"] != "info"] + [logged[-1]]


def _init_fields(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "final"}


def test_the_termination_message_keeps_the_final_event_within_4_kib():
    problems = [Event("warning", f"problem {i}: " + "x" * 900, "geo", "warning", seq=i) for i in range(8)]
    final = Event("finish", "Start failed: " + "y" * 5000, None, "error", seq=9, state="failed", seconds=1.0)
    text = termination_text(final, problems, final.message[:200], 4096)
    assert len(text.encode()) <= 4096
    lines = text.splitlines()
    last = parse_line(lines[-1])
    assert last["kind"] == "finish" and last["state"] == "failed" and last["message"].startswith("Start failed: ")
    kept = [parse_line(line)["seq"] for line in lines[1:-1]]
    assert kept and kept == sorted(kept) and kept[-1] == 7  # the newest problems that fit, oldest first


def test_background_copy_events_are_valid_version_2_and_readers_of_version_1_still_show_them():
    """A version 1 reader (its EventProgress knows no background-copy) still shows the message and moves the bar
    past the env; the current one counts the env as ready on the image's copy."""
    from osl_hooks.hub.progress import FIRST, EventProgress

    event = Event(
        "background-copy",
        "Your own copy of py is being made in the background (40% done)",
        "py",
        state="running",
        bytes_done=40,
        bytes_total=100,
        eta_seconds=12.0,
    )
    jsonschema.Draft7Validator(events_schema()).validate(event.to_dict())
    assert event.to_dict()["v"] == 2
    old = {**event.to_dict(), "v": 1}
    jsonschema.Draft7Validator(events_schema()).validate(old)  # version 1 events stay valid
    progress = EventProgress(["py", "geo"])
    shown = progress.feed(event.to_dict())
    assert shown["message"] == event.message and shown["progress"] > FIRST
    with_missing_state = {k: v for k, v in event.to_dict().items() if k != "state"}
    assert not jsonschema.Draft7Validator(events_schema()).is_valid(with_missing_state)


def test_a_copys_first_progress_reaches_the_status_file_at_once(home):
    """The spawn page reads the status file: a copy that began shows its bytes at once, not 0.5 s later (the
    throttle keeps later ticks from rewriting the file on every one of rsync's reads)."""
    import io

    from osl_hooks.engine.homepaths import Home
    from osl_hooks.engine.reporter import Reporter
    from osl_hooks.status import read_status

    state_dir = home / ".local/state/osl-hooks"
    state_dir.mkdir(parents=True)
    report = Reporter(Home(home), state_dir, out=io.StringIO())
    report.event("env-begin", "Syncing geo: 2 MB to copy", "geo", bytes_total=2_000_000)
    words = lambda done, total: f"Syncing geo: {done} of {total}"  # noqa: E731
    report.progress("geo", 1000, 2_000_000, words)
    shown = read_status(state_dir)
    assert shown["message"] == "Syncing geo: 1000 of 2000000", shown["message"]
    report.progress("geo", 2000, 2_000_000, words)  # at once after: throttled
    assert read_status(state_dir)["message"] == "Syncing geo: 1000 of 2000000"
