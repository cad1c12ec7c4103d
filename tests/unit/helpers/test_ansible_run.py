"""The test helpers must be able to fail: prove the secret scanner and the result parsing catch what they claim."""

import pytest

from helpers.ansible_run import assert_no_secrets, run_module


def test_secret_scanner_catches_plain_and_encoded_forms():
    secret = "s3cr et/+=&"
    for leaked in (secret, "s3cr%20et%2F%2B%3D%26", "s3cr+et%2F%2B%3D%26"):
        with pytest.raises(AssertionError, match="secret #0 leaked"):
            assert_no_secrets("output: %s" % leaked, [secret])
    assert_no_secrets("nothing to see", [secret])


def test_secret_scanner_refuses_empty_secrets():
    with pytest.raises(AssertionError, match="empty"):
        assert_no_secrets("x", [""])


def test_run_module_reports_results_and_stats(tmp_path):
    inventory = tmp_path / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    h1:\n      ansible_connection: local\n      word: hello\n", encoding="utf-8")
    run = run_module("ansible.builtin.debug", {"msg": "{{ word }}"}, inventory).assert_ok()
    assert run.result("module", "h1")["msg"] == "hello"
    assert run.stats["h1"]["ok"] == 1
    failed = run_module("ansible.builtin.fail", {"msg": "boom"}, inventory)
    assert failed.rc != 0
    assert failed.results("module", "h1")[0]["status"] == "failed"
