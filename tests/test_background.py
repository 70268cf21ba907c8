"""First copies in the background: the server is ready at once on the image's env, the user's copy follows.

Real starts with `background=True` (what `osl-hooks start -- SERVER` does), real detached copy processes,
real kernels through jupyter_client, genuine conda envs. A copy is held at a named step
(`OSL_HOOKS_HOLD_AT=NAME=FILE`) where a test must act while it runs; nothing here depends on timing.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import StartResult, all_files, is_alive, tree_snapshot, wait_for_copy
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.multikernelmanager import MultiKernelManager

from osl_hooks.engine.background import NICENESS, STAGING_PREFIX, in_place, is_placeholder
from osl_hooks.engine.manifest import MANIFEST_FILE
from osl_hooks.engine.runner import Outcome, start
from osl_hooks.plan import Plan
from osl_hooks.status import read_status

pytestmark = pytest.mark.slow

WAIT = 300  # seconds: a generous bound for a step to happen, never a speed expectation


def start_in(home: Path, plan: dict, background: bool = True) -> StartResult:
    out = io.StringIO()
    outcome = start(
        Plan.from_dict({"version": 1, "home": str(home), **plan}), allow_root=True, out=out, background=background
    )
    return StartResult(outcome, out.getvalue(), read_status(home / ".local/state/osl-hooks") or {})


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + WAIT
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not is_alive(pid), f"process {pid} did not end"


def py_plan(python_image: Path, **extra) -> dict:
    env = {"name": "py", "mode": "synced", "source": str(python_image / "envs/py"), **extra}
    return {"environments": [env], "disk_margin_bytes": 1 << 20}


def run_in_kernel(mkm: MultiKernelManager, kernel_id: str, code: str, timeout: float = 120) -> str:
    """What a notebook cell prints (stdout and stderr) when `code` runs in the kernel."""
    client = mkm.get_kernel(kernel_id).client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        output = []
        reply = client.execute_interactive(
            code,
            timeout=timeout,
            output_hook=lambda m: output.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
        )
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
    return "".join(output)


def kernel_prefix(mkm: MultiKernelManager, kernel_id: str) -> str:
    return run_in_kernel(mkm, kernel_id, "import sys; print(sys.prefix)").strip()


def test_kernels_run_from_the_image_during_the_copy_and_from_the_copy_after_it(python_image, home, hold):
    hold.at("background:staging-made")
    first = start_in(home, py_plan(python_image))
    assert first.outcome == Outcome.OK, first.output
    assert first.env("py")["state"] == "background" and first.env("py")["effective_mode"] == "background"
    copying = next(e for e in first.status["events"] if e["kind"] == "background-copy")
    assert copying["state"] == "queued" and "read-only" in copying["message"]
    assert is_placeholder(home / ".local/envs/py")  # no copy there yet: only the link to the guards

    # One kernel spec manager for the whole test, as a running Jupyter server keeps one.
    specs = KernelSpecManager(kernel_dirs=[str(home / ".local/share/jupyter/kernels")])
    kernels = MultiKernelManager(kernel_spec_manager=specs)
    try:
        during = kernels.start_kernel(kernel_name="osl-py")
        assert kernel_prefix(kernels, during) == str(python_image / "envs/py")
        hold.release()
        done = wait_for_copy(home, "py")
        assert done["state"] == "done", done
        after = kernels.start_kernel(kernel_name="osl-py")
        assert kernel_prefix(kernels, after) == str(home / ".local/envs/py")
        assert kernel_prefix(kernels, during) == str(python_image / "envs/py")  # still running, still working
    finally:
        kernels.shutdown_all(now=True)
    assert "Your own copy of py is complete" in (home / ".local/state/osl-hooks/start.log").read_text()
    spec = json.loads((home / ".local/share/jupyter/kernels/osl-py/kernel.json").read_text())
    assert "PYTHONNOUSERSITE" not in spec["env"] and "background" not in spec["env"]["PATH"]

    again = start_in(home, py_plan(python_image))
    assert again.outcome == Outcome.OK and "py is up to date" in again.messages()


def test_a_restart_during_the_copy_neither_waits_nor_copies_twice(python_image, home, hold):
    hold.at("background:copied")
    start_in(home, py_plan(python_image))
    running = wait_for_copy(home, "py", ("running",), "the copy to run")
    deadline = time.monotonic() + WAIT
    while not (home / ".local/envs" / f"{STAGING_PREFIX}py").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    restart = start_in(home, py_plan(python_image))  # the copy is held: a start that waited would never return
    assert restart.outcome == Outcome.OK, restart.output
    event = next(e for e in restart.status["events"] if e["kind"] == "background-copy")
    assert event["state"] == "running" and "is being made in the background" in event["message"]
    assert hold.file.exists() and is_alive(running["pid"])
    import psutil

    copier = psutil.Process(running["pid"])  # below the user's work: CPU niceness and the idle I/O class
    assert copier.nice() == NICENESS and copier.ionice().ioclass == psutil.IOPRIO_CLASS_IDLE
    # Where the kernel shares CPU time between sessions (autogroups), the copy's own session is niced too: else
    # its niceness would only rank it inside that session, and it would take as much as a whole server.
    autogroup = Path(f"/proc/{running['pid']}/autogroup")
    if autogroup.exists() and Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1":
        assert autogroup.read_text().split()[-1] == str(NICENESS), autogroup.read_text()
        assert Path("/proc/self/autogroup").read_text() != autogroup.read_text()  # its own session's group
    before_ready = start_in(home, py_plan(python_image, first_copy="before_ready"), background=False)
    assert before_ready.env("py")["state"] == "background"  # the running copy is not doubled by another
    hold.release()
    done = wait_for_copy(home, "py")
    assert done["state"] == "done" and done["pid"] == running["pid"]
    assert list((home / ".local/envs").iterdir()) == [home / ".local/envs/py"]


def test_before_ready_and_deliveries_without_a_server_command_copy_first(python_image, home):
    result = start_in(home, py_plan(python_image, first_copy="before_ready"))
    assert result.env("py")["state"] == "ready" and (home / ".local/envs/py/bin/python").exists()
    other = home.parent / "other-home"
    other.mkdir()
    no_server = start_in(other, py_plan(python_image), background=False)  # init_container, post_start
    assert no_server.env("py")["state"] == "ready" and (other / ".local/envs/py/bin/python").exists()
    assert not (other / ".local/state/osl-hooks/background/py.json").exists()


def snapshot_with_inodes(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_size) for p in all_files(root)}


def uninterrupted_copy(home: Path, plan: dict) -> dict:
    start_in(home, plan)
    assert wait_for_copy(home, "py")["state"] == "done"
    return tree_snapshot(home / ".local/envs/py")


def clear_home(home: Path) -> None:
    """An empty home, once no copy process works in it (one that has recorded "done" may still be ending)."""
    wait_for_copy_processes_to_end(home)
    subprocess.run(["rm", "-rf", str(home)], check=True)
    home.mkdir()


@pytest.mark.parametrize("how", ["SIGTERM to the copy process", "SIGKILL to it and rsync"])
def test_a_stopped_copy_resumes_and_ends_identical_to_an_uninterrupted_one(python_image, home, how):
    plan = py_plan(python_image)
    reference = uninterrupted_copy(home, plan)
    clear_home(home)

    start_in(home, plan)
    running = wait_for_copy(home, "py", ("running",), "the copy to run")
    staging = home / ".local/envs" / f"{STAGING_PREFIX}py"
    half = sum(1 for _ in all_files(python_image / "envs/py")) // 2
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and (not staging.is_dir() or sum(1 for _ in all_files(staging)) < half):
        time.sleep(0.01)
    if how.startswith("SIGTERM"):
        os.kill(running["pid"], signal.SIGTERM)
    else:
        os.killpg(os.getpgid(running["pid"]), signal.SIGKILL)
    wait_gone(running["pid"])
    assert not in_place(home / ".local/envs/py"), "the kill came after the copy was complete"
    assert staging.is_dir(), "a stopped copy is kept for resuming"
    status = subprocess.run(
        [sys.executable, "-m", "osl_hooks.cli", "status", "--state-dir", str(home / ".local/state/osl-hooks")],
        capture_output=True,
        text=True,
    )
    assert "background copy of py: stopped at" in status.stdout, status.stdout

    before = snapshot_with_inodes(staging)
    resumed = start_in(home, plan)
    assert next(e for e in resumed.status["events"] if e["kind"] == "background-copy")["state"] == "queued"
    assert wait_for_copy(home, "py")["state"] == "done"
    target = home / ".local/envs/py"
    assert tree_snapshot(target) == reference
    after = snapshot_with_inodes(target)
    written = sum(size for path, (ino, size) in after.items() if before.get(path, (None,))[0] != ino)
    already = sum(size for path, (ino, size) in after.items() if before.get(path) == (ino, size))
    remainder = sum(size for _ino, size in after.values()) - already
    print(f"resumed copy wrote {written} bytes; the remainder was {remainder} of {already + remainder}")
    assert 0 < remainder and written <= remainder * 1.1, (written, remainder)


def test_an_image_update_during_an_unfinished_copy_never_mixes_versions(tmp_path, hold):
    from osl_hooks.demo.envbuild import build_conda_env, demo_packages
    from osl_hooks.engine.manifest import bake

    image = tmp_path / "image/geo"
    image.parent.mkdir()
    versions = {}
    for version in ("1.0", "2.0"):
        build_conda_env(image, demo_packages(version))
        built = tmp_path / f"image/geo-{version}"
        image.rename(built)
        bake(built, built_prefix=str(image))
        versions[version] = built
    plan = {"environments": [{"name": "geo", "mode": "synced", "source": str(image)}], "disk_margin_bytes": 1 << 20}
    home = tmp_path / "home"
    home.mkdir()

    image.symlink_to(versions["2.0"])
    start_in(home, plan)
    assert wait_for_copy(home, "geo")["state"] == "done"
    reference = tree_snapshot(home / ".local/envs/geo")
    clear_home(home)

    image.unlink()
    image.symlink_to(versions["1.0"])
    hold.at("background:copied")
    start_in(home, plan)
    running = wait_for_copy(home, "geo", ("running",), "the copy to run")
    staging = home / ".local/envs" / f"{STAGING_PREFIX}geo"
    version_1 = {p.relative_to(versions["1.0"]) for p in all_files(versions["1.0"]) if p.name != MANIFEST_FILE}
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and (
        not staging.is_dir() or {p.relative_to(staging) for p in all_files(staging)} != version_1
    ):
        time.sleep(0.02)  # the copy is held once rsync is done: then the staging holds all of version 1.0
    os.killpg(os.getpgid(running["pid"]), signal.SIGKILL)
    wait_gone(running["pid"])
    hold.release()

    image.unlink()
    image.symlink_to(versions["2.0"])  # the next start has a new image
    start_in(home, plan)
    done = wait_for_copy(home, "geo")
    assert done["state"] == "done"
    assert tree_snapshot(home / ".local/envs/geo") == reference


def test_a_full_disk_during_the_copy_keeps_the_image_copy_and_says_what_to_free(python_image, tmp_path, hold):
    from conftest import fill_to, mounted_tmpfs

    with mounted_tmpfs(tmp_path / "volume", "300m") as home:
        plan = py_plan(python_image)
        hold.at("background:staging-made")
        first = start_in(home, plan)
        assert first.env("py")["state"] == "background"  # the start's check found room for the copy
        wait_for_copy(home, "py", ("running",), "the copy to run")
        filler = fill_to(home, 20 * 1000 * 1000)  # then the home fills up (the user's own files)
        hold.release()
        failed = wait_for_copy(home, "py")
        assert failed["state"] == "failed", failed
        assert "stays on the image's copy" in failed["message"] and "free at least" in failed["message"]
        assert not in_place(home / ".local/envs/py")
        assert not list((home / ".local/envs").glob(STAGING_PREFIX + "*"))  # the room goes back to the user
        spec = json.loads((home / ".local/share/jupyter/kernels/osl-py/kernel.json").read_text())
        assert spec["argv"][0] == str(python_image / "envs/py/bin/python")
        status = subprocess.run(
            [sys.executable, "-m", "osl_hooks.cli", "status", "--state-dir", str(home / ".local/state/osl-hooks")],
            capture_output=True,
            text=True,
        )
        assert "background copy of py: failed" in status.stdout and "free at least" in status.stdout

        filler.unlink()
        hold.release()
        start_in(home, plan)
        done = wait_for_copy(home, "py", ("done",), "the copy after room was made")
        assert (home / ".local/envs/py/bin/python").exists()
        wait_gone(done["pid"])


def copy_processes(home: Path) -> list:
    """The background copy processes working for `home` (found by their plan, which names the home)."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "background-copy" in (process.info["cmdline"] or []) and str(home) in process.environ().get(
                "OSL_HOOKS_PLAN", ""
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_for_copy_processes_to_end(home: Path) -> None:
    import psutil

    gone, alive = psutil.wait_procs(copy_processes(home), timeout=WAIT)
    assert not alive, alive


def test_a_copy_killed_at_any_of_its_steps_is_finished_by_the_next_start(image, tmp_path, monkeypatch):
    """SIGKILL at every point where the copy process changes the home (faultpoints), then a start: the copy
    ends exactly as an uninterrupted one, nothing half-made is in use, nothing is left behind."""
    from collections import Counter

    from osl_hooks.engine.faultpoints import FAULT_AT_ENV_VAR, FAULT_LIST_ENV_VAR

    plan = {"environments": [{"name": "geo", "mode": "synced", "source": str(image / "envs/geo")}]}
    home = tmp_path / "home"
    home.mkdir()
    target, envs = home / ".local/envs/geo", home / ".local/envs"
    listing = tmp_path / "points"
    monkeypatch.setenv(FAULT_LIST_ENV_VAR, str(listing))
    start_in(home, plan)
    assert wait_for_copy(home, "geo")["state"] == "done"
    wait_for_copy_processes_to_end(home)
    reference = tree_snapshot(target)
    monkeypatch.delenv(FAULT_LIST_ENV_VAR)
    hits = Counter()
    points = []
    for name in listing.read_text().splitlines():
        hits[name] += 1
        points.append(f"{name}:{hits[name]}")
    assert {"background:staging-made:1", "background:copied:1", "background:renamed:1"} <= set(points)

    for spec in points:
        clear_home(home)
        monkeypatch.setenv(FAULT_AT_ENV_VAR, spec)
        start_in(home, plan)
        wait_for_copy_processes_to_end(home)
        # A point a copy reaches a number of times that depends on its speed may not be reached again.
        late = ("background:renamed", "background:progress-recorded", "write:background copy record")
        assert not in_place(target) or spec.startswith(late), spec
        monkeypatch.delenv(FAULT_AT_ENV_VAR)
        after = start_in(home, plan)
        assert after.outcome == Outcome.OK, (spec, after.output)
        if after.env("geo")["state"] == "background":
            assert wait_for_copy(home, "geo")["state"] == "done", spec
        wait_for_copy_processes_to_end(home)
        assert tree_snapshot(target) == reference, spec
        assert sorted(p.name for p in envs.iterdir()) == ["geo"], spec  # no staging left behind
        final = start_in(home, plan)
        assert final.env("geo")["state"] == "ready" and "geo is up to date" in final.messages(), spec


def test_a_first_start_reads_only_the_manifests_header_and_the_copy_checks_the_rest(image, tmp_path):
    """A first start that leaves the copy to the background needs only the manifest's header (its totals and
    prefix files), so it never reads the entry list of a large env; the copy process reads and checks the
    entries itself: damaged ones are found there, and the copy is still complete."""
    from osl_hooks.engine.manifest import bake

    image_copy = tmp_path / "image"
    subprocess.run(["cp", "-a", str(image), str(image_copy)], check=True)
    source = image_copy / "envs/geo"
    bake(source)
    manifest = source / MANIFEST_FILE
    header, body = manifest.read_bytes().split(b"\n", 1)
    manifest.write_bytes(header + b"\n" + body.replace(b'"f",', b'"f" ,', 1))  # one entry damaged, header intact
    plan = {"environments": [{"name": "geo", "mode": "synced", "source": str(source)}]}
    home = tmp_path / "home"
    home.mkdir()

    first = start_in(home, plan)
    assert first.outcome == Outcome.OK and first.env("geo")["state"] == "background", first.output
    assert "describing" not in first.output and "damaged" not in first.output
    assert wait_for_copy(home, "geo")["state"] == "done"
    wait_for_copy_processes_to_end(home)
    log = (home / ".local/state/osl-hooks/start.log").read_text()
    assert "do not match its checksum (damaged); describing the env instead" in log
    copied = {p.relative_to(home / ".local/envs/geo") for p in all_files(home / ".local/envs/geo")}
    assert copied == {p.relative_to(source) for p in all_files(source)} - {Path(MANIFEST_FILE)}
