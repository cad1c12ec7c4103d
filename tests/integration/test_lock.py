"""bitwarden_lock through real ansible-core: two runs at once take turns on one host (issue 12 #7)."""

from __future__ import annotations

import json
import sys
import threading

import yaml

from helpers.ansible_run import run_playbook

PLAY = [{
    "name": "hold the lock for a while",
    "hosts": "bw",
    "gather_facts": False,
    "tasks": [
        {"name": "acquire", "selfhost.bitwarden.bitwarden_lock": {
            "bwdata_path": "{{ bwdata }}", "run_id": "{{ run_id }}", "holder": "test {{ run_id }}", "timeout": 60,
            "poll": 0.5}},
        {"name": "work", "ansible.builtin.shell": {
            "cmd": "echo \"{{ run_id }} start $(date +%s.%N)\" >> {{ journal }}; sleep 3; "
                   "echo \"{{ run_id }} end $(date +%s.%N)\" >> {{ journal }}"}},
        {"name": "release", "selfhost.bitwarden.bitwarden_lock": {
            "bwdata_path": "{{ bwdata }}", "run_id": "{{ run_id }}", "state": "released"}},
    ],
}]


def test_two_concurrent_runs_serialize(tmp_path):
    bwdata = tmp_path / "bwdata"
    bwdata.mkdir()
    journal = tmp_path / "journal.txt"
    playbook = tmp_path / "hold.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False), encoding="utf-8")
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"bw": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}), encoding="utf-8")

    runs = {}

    def run(run_id):
        runs[run_id] = run_playbook(playbook, inventory, extra_vars={
            "run_id": run_id, "bwdata": str(bwdata), "journal": str(journal)})

    threads = [threading.Thread(target=run, args=(run_id,)) for run_id in ("run-a", "run-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    for run_id, result in runs.items():
        result.assert_ok()

    marks = [line.split() for line in journal.read_text(encoding="utf-8").splitlines()]
    assert len(marks) == 4
    # Serialized: each run's start is followed by its own end before the other run starts.
    assert marks[0][0] == marks[1][0] and marks[2][0] == marks[3][0] and marks[0][0] != marks[2][0], marks
    assert [mark[1] for mark in marks] == ["start", "end", "start", "end"]
    assert float(marks[2][2]) >= float(marks[1][2])
    second = marks[2][0]
    waited = runs[second].result("acquire", "bw")["waited"]
    assert waited >= 2, waited
    assert not (bwdata / ".selfhost-bitwarden.lock").exists()
    assert json.dumps(runs[second].result("release", "bw")["holder"]) == "null"
