"""The editor reads env files as docker compose does: every vector of tests/vectors/dotenv.yml.

The simulator's stand-in for docker compose is held to the same file (tests/simulator/test_envfile_vectors.py), so the
two implementations of the grammar cannot drift apart silently.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _env_file

VECTORS = yaml.safe_load((Path(__file__).resolve().parents[3] / "vectors" / "dotenv.yml").read_text(encoding="utf-8"))


def read_env(text):
    """{key: value} as _env_file reads it (the last spelling-exact value per key)."""
    env = {}
    for block in _env_file.parse(text):
        for statement in block.statements:
            env.pop(statement.key, None)
            env[statement.key] = statement.value
    return env


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_vector(vector):
    text = vector["text"]
    assert _env_file.render(_env_file.parse(text)) == text
    if "invalid" in vector:
        error = _env_file.problem(text)
        assert error, "docker compose refuses this file"
        if vector["invalid"] is not True:
            assert vector["invalid"] in error
    else:
        assert _env_file.problem(text) is None
        assert read_env(text) == vector["env"]
        for key, value in vector["env"].items():
            assert value in _env_file.values(text, key)


def test_vectors_cover_the_grammar():
    names = " ".join(vector["name"] for vector in VECTORS)
    for feature in ("export", "colon", "single quotes", "double quotes", "multi-line", "BOM", "CRLF", "comment"):
        assert feature in names
