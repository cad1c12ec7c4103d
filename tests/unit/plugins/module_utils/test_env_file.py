"""The env-file editor as pure functions: byte preservation, case-insensitive keys, duplicates, masking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _env_file, _regions
from ansible_collections.selfhost.bitwarden.plugins.module_utils._env_file import MASK, edit, key_of, mask, parse, render, unquote, values
from helpers.setup_env import setup_env

R = _regions
ALL_US = R.desired_settings("US", True, False)

# --- strategies: env files made of realistic pieces plus arbitrary text ---------------------------------------------

ALPHABET = "aAzZ09_=#\"' \t\r\n\\é😀\ufeff"
managed_name = st.sampled_from(R.MANAGED_KEYS).flatmap(
    lambda key: st.lists(st.booleans(), min_size=len(key), max_size=len(key)).map(
        lambda upper: "".join(c.upper() if u else c.lower() for c, u in zip(key, upper))))
one_line_value = st.text(alphabet=ALPHABET.replace("\n", "").replace("\r", ""), max_size=12)
piece = st.one_of(
    st.builds(lambda k, v: "%s=%s" % (k, v), managed_name, one_line_value),
    st.builds(lambda k, v: "  %s = %s" % (k, v), managed_name, one_line_value),
    st.builds(lambda k, v: "#%s=%s" % (k, v), managed_name, one_line_value),
    st.builds(lambda v: "globalSettings__installation__key=%s" % v, one_line_value),
    st.sampled_from(["", "# comment", "   ", "novalue", "=orphan"]),
    st.text(alphabet=ALPHABET, max_size=20),
)
env_text = st.builds(
    lambda pieces, eols, final: "".join(p + e for p, e in zip(pieces, eols))[: None if final else -1] if pieces else "",
    st.lists(piece, max_size=12), st.lists(st.sampled_from(["\n", "\r\n"]), min_size=12, max_size=12), st.booleans())
edit_value = st.one_of(
    st.none(),
    st.sampled_from(["true", "false", "True", "US", "EU", "", "REPLACE", "https://api.bitwarden.eu"]),
    one_line_value.filter(lambda v: unquote(v) == v),
)
edits = st.dictionaries(st.sampled_from(R.MANAGED_KEYS), edit_value, min_size=1)
same_functions = st.sampled_from([_env_file._same_text, R.same_effect])


def is_managed(line, keys):
    name = key_of(line.raw)
    return name is not None and name.lower() in {key.lower() for key in keys}


# --- properties -------------------------------------------------------------------------------------------------------

@given(st.text())
def test_render_parse_round_trips_any_text(text):
    assert render(parse(text)) == text


@settings(max_examples=400)
@given(env_text, edits, same_functions)
def test_unmanaged_lines_stay_identical(text, desired, same):
    new = edit(text, desired, same=same).text
    before = [line for line in parse(text) if not is_managed(line, desired)]
    after = [line for line in parse(new) if not is_managed(line, desired)]
    assert [line.raw for line in after] == [line.raw for line in before]
    # only the terminator of the last unmanaged line can change (lines appended after it, or the line after it removed)
    assert [line.eol for line in after][:-1] == [line.eol for line in before][:-1]


@settings(max_examples=400)
@given(env_text, edits, same_functions)
def test_edit_is_idempotent(text, desired, same):
    once = edit(text, desired, same=same)
    twice = edit(once.text, desired, same=same)
    assert twice.text == once.text
    assert twice.collapsed == []


@settings(max_examples=400)
@given(env_text, edits)
def test_each_key_ends_up_once_with_its_value_or_not_at_all(text, desired):
    new = edit(text, desired).text
    for key, value in desired.items():
        assert values(new, key) == (() if value is None else (value,))
        occurrences = [line for line in parse(new) if is_managed(line, [key])]
        assert len(occurrences) == (0 if value is None else 1)


@given(env_text, edits)
def test_trailing_line_break_kept_or_kept_absent(text, desired):
    new = edit(text, desired).text
    if new and parse(new)[-1].raw:
        assert new.endswith("\n") == (text == "" or text.endswith("\n"))


# --- examples ---------------------------------------------------------------------------------------------------------

def test_setup_file_gets_managed_keys_appended_and_nothing_else_changes():
    text, dummy = setup_env()
    result = edit(text, ALL_US, same=R.same_effect)
    assert result.text.startswith(text)  # cloudRegion=US already there and kept in place
    assert result.text[len(text):] == (
        "globalSettings__enableCloudCommunication=true\n"
        "globalSettings__installation__identityUri=https://identity.bitwarden.com\n"
        "globalSettings__installation__apiUri=https://api.bitwarden.com\n"
        "globalSettings__pushRelayBaseUri=https://push.bitwarden.com\n"
    )
    assert result.collapsed == []


def test_value_is_replaced_in_place():
    text = "a=1\nglobalSettings__baseServiceUri__cloudRegion=US\nb=2\n"
    assert edit(text, {R.CLOUD_REGION: "EU"}).text == "a=1\nglobalSettings__baseServiceUri__cloudRegion=EU\nb=2\n"


def test_keys_match_case_insensitively_and_keep_their_spelling():
    text = "GLOBALSETTINGS__ENABLECLOUDCOMMUNICATION=false\n"
    assert edit(text, {R.ENABLE: "true"}).text == "GLOBALSETTINGS__ENABLECLOUDCOMMUNICATION=true\n"


def test_same_effect_leaves_line_untouched():
    text = "globalsettings__enableCloudCommunication=True\n"
    assert edit(text, {R.ENABLE: "true"}, same=R.same_effect).text == text
    assert edit(text, {R.ENABLE: "true"}).text == "globalsettings__enableCloudCommunication=true\n"


def test_duplicates_collapse_into_the_last_line():
    text = "globalSettings__enableCloudCommunication=false\nx=1\nglobalsettings__ENABLECLOUDCOMMUNICATION=true\ny=2\n"
    result = edit(text, {R.ENABLE: "true"})
    assert result.text == "x=1\nglobalsettings__ENABLECLOUDCOMMUNICATION=true\ny=2\n"
    assert result.collapsed == [R.ENABLE]


def test_none_removes_every_line_of_a_key():
    text = "a=1\nglobalSettings__pushRelayBaseUri=x\nGLOBALSETTINGS__PUSHRELAYBASEURI=y\n"
    result = edit(text, {R.PUSH_RELAY: None})
    assert result.text == "a=1\n"
    assert result.collapsed == []


def test_crlf_file_gets_crlf_lines():
    text = "a=1\r\nglobalSettings__baseServiceUri__cloudRegion=US\r\n"
    assert edit(text, {R.CLOUD_REGION: "EU", R.ENABLE: "true"}).text == (
        "a=1\r\nglobalSettings__baseServiceUri__cloudRegion=EU\r\nglobalSettings__enableCloudCommunication=true\r\n")


def test_missing_final_line_break_stays_missing():
    assert edit("a=1", {R.ENABLE: "true"}).text == "a=1\nglobalSettings__enableCloudCommunication=true"
    assert edit("a=1\nglobalSettings__enableCloudCommunication=false", {R.ENABLE: None}).text == "a=1"


def test_commented_out_key_is_not_the_key():
    text = "#globalSettings__enableCloudCommunication=true\n"
    assert edit(text, {R.ENABLE: "false"}).text == text + "globalSettings__enableCloudCommunication=false\n"


def test_quoted_sql_connection_string_survives_byte_for_byte():
    text, dummy = setup_env()
    line = [line for line in text.splitlines() if "connectionString" in line][0]
    assert line in edit(text, R.desired_settings("EU", True, False), same=R.same_effect).text


@pytest.mark.parametrize("value", ["a\nb", "a\r", "\n"])
def test_value_with_line_break_is_refused(value):
    with pytest.raises(ValueError, match="line break"):
        edit("a=1\n", {R.ENABLE: value})


@pytest.mark.parametrize("value", [" true", '"true"', "true # on"])
def test_value_compose_would_alter_is_refused(value):
    with pytest.raises(ValueError, match="unchanged"):
        edit("a=1\n", {R.ENABLE: value})


@pytest.mark.parametrize("raw, value", [
    ("true", "true"), ("  true  ", "true"), ('"true"', "true"), ("'a b'", "a b"), ('"a\\"b"', 'a"b'),
    ("true # set by ops", "true"), ("a#b", "a#b"), ('"open', '"open'), ("", ""),
])
def test_unquote_reads_values_as_compose_does(raw, value):
    assert unquote(raw) == value


def test_values_gives_last_value_per_spelling():
    text = "K=1\nk=2\nK=3\nother=4\n"
    assert values(text, "k") == ("2", "3")
    assert values(text, "missing") == ()


def test_key_of():
    assert key_of(" a = b") == "a"
    assert key_of("\ufeffa=b") == "a"
    assert key_of("# a=b") is None
    assert key_of("no value") is None
    assert key_of("=x") is None


# --- masking ----------------------------------------------------------------------------------------------------------

def test_mask_hides_every_setup_secret_and_keeps_the_rest():
    text, secrets = setup_env()
    text = edit(text, ALL_US).text
    masked = mask(text)
    for secret in secrets:
        assert secret not in masked
    for key, value in ALL_US.items():
        assert "%s=%s\n" % (key, value) in masked
    assert "globalSettings__installation__id=%s\n" % MASK in masked
    assert "globalSettings__sqlServer__connectionString=%s\n" % MASK in masked
    assert masked.count("\n") == text.count("\n")


@pytest.mark.parametrize("line", [
    "#globalSettings__identityServer__certificatePassword=hunter2",
    "custom__dsn=Server=db;User=sa;Password=hunter2",
    "MY_API_TOKEN=hunter2",
    "globalSettings__installation__id=hunter2",
    "globalSettings__yubico__key=hunter2",
])
def test_mask_covers_comments_other_keys_and_connection_strings(line):
    assert "hunter2" not in mask(line + "\r\n")


def test_mask_covers_quoted_secret_spanning_lines():
    masked = mask('a=1\nsecret="line1\nhunter2\nhunter3"\nb=2\n')
    assert "hunter" not in masked
    assert masked.endswith("b=2\n")


# --- region table and setting semantics -------------------------------------------------------------------------------

def test_region_values_follow_the_contract():
    eu = R.desired_settings("EU", True, False)
    assert eu == {
        R.ENABLE: "true",
        R.CLOUD_REGION: "EU",
        R.IDENTITY_URI: "https://identity.bitwarden.eu",
        R.API_URI: "https://api.bitwarden.eu",
        R.PUSH_RELAY: "https://push.bitwarden.eu",
    }
    assert R.desired_settings("US", False, True)[R.PUSH_RELAY] == "REPLACE"
    assert R.desired_settings("US", False, True)[R.ENABLE] == "false"


@pytest.mark.parametrize("value, off", [
    ("", True), ("SECRET", True), ("replace", True), (" REPLACE ", True), (None, False), ("https://push.bitwarden.eu", False),
])
def test_push_relay_off_values(value, off):
    assert R.push_relay_is_off(value) is off


@pytest.mark.parametrize("key, old, new, same", [
    (R.ENABLE, "True", "true", True),
    (R.ENABLE, None, "false", True),
    (R.ENABLE, None, "true", False),
    (R.IDENTITY_URI, None, "https://identity.bitwarden.com", True),
    (R.IDENTITY_URI, "", "https://identity.bitwarden.com", True),
    (R.IDENTITY_URI, "https://identity.bitwarden.eu", "https://identity.bitwarden.com", False),
    (R.PUSH_RELAY, None, "https://push.bitwarden.com", True),
    (R.PUSH_RELAY, "", "REPLACE", True),
    (R.PUSH_RELAY, "", "https://push.bitwarden.com", False),
    (R.CLOUD_REGION, None, "US", False),
    (R.CLOUD_REGION, "eu", "EU", False),
])
def test_same_effect(key, old, new, same):
    assert R.same_effect(key, old, new) is same
