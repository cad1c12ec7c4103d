"""The env-file editor as pure functions: byte preservation, case-insensitive keys, duplicates, masking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.selfhost.bitwarden.plugins.module_utils import _env_file, _regions
from ansible_collections.selfhost.bitwarden.plugins.module_utils._env_file import MASK, edit, mask, parse, problem, reads_back, render, values
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
    one_line_value.filter(reads_back),
)
edits = st.dictionaries(st.sampled_from(R.MANAGED_KEYS), edit_value, min_size=1)
same_functions = st.sampled_from([_env_file._same_text, R.same_effect])


def is_managed(block, keys):
    return any(statement.key.lower() in {key.lower() for key in keys} for statement in block.statements)


def edit_or_refusal(text, desired, same=_env_file._same_text):
    """The edit, or None when docker compose cannot read ``text`` (then edit must refuse it)."""
    if problem(text):
        with pytest.raises(ValueError, match="docker compose cannot read"):
            edit(text, desired, same=same)
        return None
    return edit(text, desired, same=same)


# --- properties -------------------------------------------------------------------------------------------------------

@given(st.text())
def test_render_parse_round_trips_any_text(text):
    assert render(parse(text)) == text


@settings(max_examples=400)
@given(env_text, edits, same_functions)
def test_unmanaged_lines_stay_identical(text, desired, same):
    result = edit_or_refusal(text, desired, same)
    if result is None:
        return
    new = result.text
    before = [block for block in parse(text) if not is_managed(block, desired)]
    after = [block for block in parse(new) if not is_managed(block, desired)]
    # A block that shared its line with a removed managed statement leaves the rest of that line behind: after may have
    # more blocks, but every unmanaged block of before is there, in order, with its terminator (the last one's
    # terminator can change: lines appended after it, or the line after it removed).
    remaining = iter(after)
    for number, block in enumerate(before):
        assert any(other.raw == block.raw and (other.eol == block.eol or number == len(before) - 1) for other in remaining)


@settings(max_examples=400)
@given(env_text, edits, same_functions)
def test_edit_is_idempotent(text, desired, same):
    once = edit_or_refusal(text, desired, same)
    if once is None:
        return
    twice = edit(once.text, desired, same=same)
    assert twice.text == once.text
    assert twice.collapsed == []


@settings(max_examples=400)
@given(env_text, edits)
def test_each_key_ends_up_once_with_its_value_or_not_at_all(text, desired):
    result = edit_or_refusal(text, desired)
    if result is None:
        return
    new = result.text
    for key, value in desired.items():
        assert values(new, key) == (() if value is None else (value,))
        occurrences = [line for line in parse(new) if is_managed(line, [key])]
        assert len(occurrences) == (0 if value is None else 1)


@given(env_text, edits)
def test_trailing_line_break_kept_or_kept_absent(text, desired):
    result = edit_or_refusal(text, desired)
    if result is None:
        return
    new = result.text
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
    ("true # set by ops", "true"), ("a#b", "a#b"), ("", ""),
])
def test_values_are_read_as_compose_does(raw, value):
    assert values("k=%s\n" % raw, "K") == (value,)


def test_values_gives_last_value_per_spelling():
    text = "K=1\nk=2\nK=3\nother=4\n"
    assert values(text, "k") == ("2", "3")
    assert values(text, "missing") == ()


def test_statements_and_their_keys():
    assert values(" a = b", "a") == ("b",)
    assert values("\ufeffa=b", "a") == ("b",)
    assert values("# a=b\nno value\n", "a") == ()
    assert values("=x\n", "") == ("x",)


# --- docker compose's grammar (issue 12: items 3, 4, 5) ---------------------------------------------------------------

def test_later_export_line_is_the_value_the_server_gets_and_is_collapsed():
    text = "globalSettings__enableCloudCommunication=true\nx=1\nexport globalSettings__enableCloudCommunication=false\n"
    assert values(text, R.ENABLE) == ("false",)
    result = edit(text, {R.ENABLE: "true"}, same=R.same_effect)
    assert result.text == "x=1\nexport globalSettings__enableCloudCommunication=true\n"
    assert result.collapsed == [R.ENABLE]
    assert edit(result.text, {R.ENABLE: "true"}, same=R.same_effect).text == result.text


def test_file_with_export_everywhere_is_read():
    text, dummy = setup_env()
    exported = "".join("export " + line + "\n" for line in text.splitlines())
    assert values(exported, "globalSettings__installation__id") == values(text, "globalSettings__installation__id")
    new = edit(exported, ALL_US, same=R.same_effect).text
    assert new.startswith(exported)


def test_colon_separator_and_quotes_are_kept_when_the_value_changes():
    text = "a=1\nglobalSettings__baseServiceUri__cloudRegion: 'US' # ops\nglobalSettings__enableCloudCommunication=\"false\" b=2\n"
    new = edit(text, {R.CLOUD_REGION: "EU", R.ENABLE: "true"}).text
    assert new == "a=1\nglobalSettings__baseServiceUri__cloudRegion: 'EU' # ops\nglobalSettings__enableCloudCommunication=\"true\" b=2\n"
    assert values(new, "b") == ("2",)


MULTI = 'a=1\nadminSettings__admins="ops@example.com\nglobalSettings__enableCloudCommunication=false"\nb=2\n'


def test_multi_line_value_stays_byte_for_byte_and_its_lines_are_not_keys():
    assert values(MULTI, R.ENABLE) == ()
    result = edit(MULTI, ALL_US, same=R.same_effect)
    assert result.text.startswith(MULTI)
    assert result.collapsed == []
    assert problem(result.text) is None
    assert values(result.text, "adminSettings__admins") == ("ops@example.com\nglobalSettings__enableCloudCommunication=false",)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_managed_multi_line_value_is_replaced_whole(eol):
    text = "a=1%sglobalSettings__pushRelayBaseUri='x%sy'%sb=2%s" % (eol, eol, eol, eol)
    assert edit(text, {R.PUSH_RELAY: "REPLACE"}).text == "a=1%sglobalSettings__pushRelayBaseUri='REPLACE'%sb=2%s" % (eol, eol, eol)
    assert edit(text, {R.PUSH_RELAY: None}).text == "a=1%sb=2%s" % (eol, eol)


@pytest.mark.parametrize("text", ['a="open\n', "a b=1\n", "a=1\n\ufeffb=2\n"])
def test_file_compose_refuses_is_not_edited(text):
    assert problem(text)
    with pytest.raises(ValueError, match="docker compose cannot read"):
        edit(text, ALL_US)


def test_bom_stays_and_first_key_is_read():
    text = "\ufeffglobalSettings__enableCloudCommunication=false\n"
    assert edit(text, {R.ENABLE: "true"}).text == "\ufeffglobalSettings__enableCloudCommunication=true\n"


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


@pytest.mark.parametrize("quote", ['"', "'"])
def test_mask_covers_every_line_of_a_quoted_secret(quote):
    masked = mask('a=1\nsecret=%sline1\r\nhunter2\nhunter3%s\nb=2\n' % (quote, quote))
    assert "hunter" not in masked and "line1" not in masked
    assert masked == "a=1\nsecret=%s\r\n%s\n%s\nb=2\n" % (MASK, MASK, MASK)


@pytest.mark.parametrize("line", [
    "globalSettings__installation__key: hunter2",
    "export globalSettings__installation__key: hunter2",
    "#globalSettings__installation__key: hunter2",
    "  globalSettings__installation__key :'hunter2' # note",
])
def test_mask_covers_colon_separator_and_export(line):
    assert "hunter2" not in mask("a=1\n" + line + "\n")


def test_mask_hides_what_compose_would_not_read():
    masked = mask('a=1\nsecret="open\nhunter2\n# note\n')
    assert "hunter2" not in masked and "# note" in masked


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
