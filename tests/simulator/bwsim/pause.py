"""The `pause` fault: hold one step until a gate file appears, so a test can act (kill -9) at a chosen moment.

It only pauses time; the step then runs exactly as it would have. A rule is ``{"at": AT, "gate": PATH, "times": 1}``
with AT one of ``compose pull``, ``compose up`` (the docker stand-in's calls) or ``METHOD /path-prefix`` (a request
to the instance, before it is answered). When the step is reached, ``PATH.reached`` is created; the step goes on
once ``PATH`` exists (or the simulator stops).
"""

import os
import threading

_LOCK = threading.Lock()
POLL = 0.02


def normalize(rules, error):
    """Validate the rules of a fault set; ``error`` is the exception class to raise."""
    normalized = []
    for rule in rules or []:
        if not isinstance(rule, dict) or not rule.get("at") or not rule.get("gate"):
            raise error(f"faults.pause entries need at and gate: {rule!r}")
        extra = set(rule) - {"at", "gate", "times"}
        if extra:
            raise error(f"unknown keys in faults.pause entry: {', '.join(sorted(extra))}")
        at = " ".join(str(rule["at"]).split())
        if at not in ("compose pull", "compose up") and not (at.split(" ", maxsplit=1)[0].isupper() and " /" in at):
            raise error(f"faults.pause at must be 'compose pull', 'compose up' or 'METHOD /path', got {at!r}")
        normalized.append({"at": at, "gate": str(rule["gate"]), "times": int(rule.get("times", 1))})
    return normalized


def _take(faults, matches):
    with _LOCK:
        for rule in faults.get("pause") or []:
            if rule["times"] > 0 and matches(rule["at"]):
                rule["times"] -= 1
                return rule
    return None


def _hold(rule, stopping):
    with open(rule["gate"] + ".reached", "w", encoding="utf-8"):
        pass
    while not os.path.exists(rule["gate"]) and not stopping.wait(POLL):
        pass


def at_compose(faults, verb, stopping):
    rule = _take(faults, lambda at: at == f"compose {verb}")
    if rule:
        _hold(rule, stopping)


def at_request(faults, method, path, stopping):
    def matches(at):
        want_method, prefix = at.split(" ", 1)
        return want_method == method and path.lower().startswith(prefix.lower())
    rule = _take(faults, matches)
    if rule:
        _hold(rule, stopping)
