"""The simulator reads env files as docker compose does (compose-go dotenv/parser.go, dotenv/godotenv.go): every
vector of tests/vectors/dotenv.yml, the file the collection's editor is tested on too."""

from pathlib import Path

import pytest
import yaml

from bwsim import envfile

VECTORS = yaml.safe_load((Path(__file__).resolve().parents[1] / "vectors" / "dotenv.yml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", VECTORS, ids=[vector["name"] for vector in VECTORS])
def test_vector(vector):
    data = vector["text"].encode("utf-8")
    if "invalid" in vector:
        with pytest.raises(envfile.EnvFileError) as error:
            envfile.load_compose_env(data)
        if vector["invalid"] is not True:
            assert vector["invalid"] in str(error.value)
    else:
        assert envfile.load_compose_env(data) == vector["env"]
