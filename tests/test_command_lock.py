"""Issue 30: two commands on one output folder at once: the second stops with one line naming the first; a killed
holder leaves no lock behind."""

import subprocess
import sys

import pytest

from hacalib.errors import UsageError
from hacalib.io import command_lock

HOLD = ("import sys, time\nfrom hacalib.io import command_lock\n"
        "with command_lock(sys.argv[1], 'haca reproduce'):\n    print('ready', flush=True)\n    time.sleep(60)\n")


def _holder(lock):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(lock)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_a_second_writer_stops_with_one_line_and_a_killed_one_leaves_no_lock(tmp_path):
    lock = tmp_path / "cache" / ".haca.lock"
    proc = _holder(lock)
    try:
        with pytest.raises(UsageError, match=r"cache: 'haca reproduce' \(pid \d+, since .*\) is writing here"):
            with command_lock(lock, "haca pretrain"):
                pass
    finally:
        proc.kill()
        proc.wait()
    with command_lock(lock, "haca pretrain"):  # the killed holder's lock went with it
        pass


def test_two_toyworld_builds_of_one_folder_do_not_mix(tmp_path):
    world = tmp_path / "world"
    proc = _holder(tmp_path / ".world.lock")
    try:
        run = subprocess.run([sys.executable, "-m", "hacalib.cli", "toyworld", "--out", str(world), "--size", "smoke"],
                             capture_output=True, text=True, timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "is writing here" in run.stderr and not world.exists()
