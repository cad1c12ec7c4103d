"""A host lock another run holds: another controller's live rollout, for an hour (what bitwarden_lock waits for)."""

import datetime
import json


def hold_lock(fleet, name):
    """Writes the lock file of `name` as a run on another controller holds it; returns its text, to show it untouched."""
    now = datetime.datetime.now(datetime.timezone.utc)
    lock = fleet.install_dir(name) / "bwdata" / ".selfhost-bitwarden.lock"
    lock.write_text(json.dumps({"run_id": "someone-else", "holder": "ops laptop", "host": "ops", "pid": 1,
                                "acquired": now.isoformat(),
                                "expires": (now + datetime.timedelta(hours=1)).isoformat()}) + "\n", encoding="utf-8")
    return lock, lock.read_text(encoding="utf-8")
