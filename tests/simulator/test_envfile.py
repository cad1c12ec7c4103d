"""The env-file reader (docker compose env_file rules) and Setup's writer/updater."""

import pytest

from bwsim import envfile, settings


@pytest.mark.parametrize("text, expected", [
    ("A=1\nB=2\n", {"A": "1", "B": "2"}),
    ("A=1\nA=2\n", {"A": "2"}),
    ("# c\n\n  A=1\r\n", {"A": "1"}),
    ("export A=1\n", {"A": "1"}),
    ("A = spaced \n", {"A": "spaced"}),
    ("A=x # comment\n", {"A": "x"}),
    ("A=x#not-a-comment\n", {"A": "x#not-a-comment"}),
    ('A="q # kept"\n', {"A": "q # kept"}),
    ("A='single $B \\n'\n", {"A": "single $B \\n"}),
    ('A="esc \\"in\\" \\n end"\n', {"A": 'esc "in" \n end'}),
    ('A="multi\nline"\nB=2\n', {"A": "multi\nline", "B": "2"}),
    ("B=b\nA=${B}-$B-$$\n", {"B": "b", "A": "b-b-$"}),
    ("A=${MISSING:-dflt}\n", {"A": "dflt"}),
    ("A=\n", {"A": ""}),
    ("ONLYKEY\nA=1", {"A": "1"}),
    ("A:1\n", {"A": "1"}),
])
def test_parse_compose_env(text, expected):
    assert envfile.parse_compose_env(text) == expected


@pytest.mark.parametrize("text, message", [
    ('A="open\n', 'line 2: unterminated quoted value "open'),  # compose counts the lines it scanned for the quote
    ("B=1\nA B!=1\n", 'line 2: unexpected character "!" in variable name "A B!=1"'),
])
def test_parse_errors(text, message):
    with pytest.raises(envfile.EnvFileError, match=message):
        envfile.parse_compose_env(text)


def test_setup_file_round_trips_through_compose():
    values = envfile.setup_values("https://bw.example.com", "EU", "11111111-2222-3333-4444-555555555555", "KEY", False)
    text = envfile.render(values)
    keys = [line.split("=", 1)[0] for line in text.splitlines()]
    assert keys[:3] == ["globalSettings__baseServiceUri__vault", "globalSettings__baseServiceUri__cloudRegion",
                        "globalSettings__sqlServer__connectionString"]
    assert keys[8:10] == ["globalSettings__installation__id", "globalSettings__installation__key"]
    assert keys[-2:] == ["adminSettings__admins", "globalSettings__pushRelayBaseUri"]
    conn_line = text.splitlines()[2]
    assert conn_line.startswith('globalSettings__sqlServer__connectionString="Data Source=tcp:mssql,1433;')
    assert ';Password=\\"' in conn_line and conn_line.endswith('"')
    parsed = envfile.parse_compose_env(text)
    assert 'Password="' in parsed["globalSettings__sqlServer__connectionString"]
    assert parsed["globalSettings__mail__replyToEmail"] == "no-reply@bw.example.com"
    bound = settings.effective_settings({**settings.GLOBAL_ENV, **parsed})
    assert (bound["cloudRegion"], bound["installationId"], bound["enableCloudCommunication"]) == (
        "EU", "11111111-2222-3333-4444-555555555555", False)
    assert (bound["identityUri"], bound["apiUri"], bound["pushRelayEnabled"]) == (
        "https://identity.bitwarden.com", "https://api.bitwarden.com", False)


def test_settings_keys_case_insensitive_and_bool_parsing():
    env = {**settings.GLOBAL_ENV, "globalSettings__installation__id": "11111111-2222-3333-4444-555555555555",
           "GLOBALSETTINGS__ENABLECLOUDCOMMUNICATION": " True "}
    assert settings.effective_settings(env)["enableCloudCommunication"] is True
    env["globalSettings__enableCloudCommunication"] = "1"
    with pytest.raises(settings.StartupError, match="System.Boolean"):
        settings.effective_settings(env)


def test_rebuild_readds_missing_keys_and_drops_comments():
    text = "# header\nglobalSettings__baseServiceUri__vault=http://old\nextra__key=1\n"
    rebuilt = envfile.rebuild(text, "http://new", True).splitlines()
    assert rebuilt[0] == "globalSettings__baseServiceUri__vault=http://new"
    assert "globalSettings__baseServiceUri__cloudRegion=US" in rebuilt
    assert "globalSettings__installation__id=00000000-0000-0000-0000-000000000000" in rebuilt
    assert rebuilt[-1] == "extra__key=1"
    assert not any(line.startswith("#") for line in rebuilt)
