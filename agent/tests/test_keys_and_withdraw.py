"""The signing key (mode 0600, rotation that keeps old keys), `results` and `withdraw`."""

from __future__ import annotations

import json
import stat
import sys

import pytest
from platform_server import PlatformServer, Request

from klein_bench.contract import wire

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="Windows has no POSIX modes")


@posix_only
def test_the_key_file_is_made_on_first_need_with_mode_0600(cli, home):
    assert not home.key_path.exists()

    result = cli("keys")

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(home.key_path.stat().st_mode) == 0o600
    key = home.signing_key()
    assert "Made a new signing key." in result.stdout
    assert f"Key id:      {key.key_id}" in result.stdout
    assert f"Public key:  {key.public_bytes.hex()}" in result.stdout


@posix_only
def test_a_key_file_readable_by_others_is_tightened(home):
    home.signing_key()
    home.key_path.chmod(0o644)

    home.signing_key()

    assert stat.S_IMODE(home.key_path.stat().st_mode) == 0o600


def test_the_same_key_is_used_until_rotated(home):
    assert home.signing_key().key_id == home.signing_key().key_id


def test_rotate_makes_a_new_key_and_keeps_the_old_one(cli, home):
    old = home.signing_key()

    result = cli("keys", "rotate", "--yes")

    assert result.exit_code == 0, result.output
    new = home.signing_key()
    assert new.key_id != old.key_id
    assert f"Retired key: {old.key_id}" in result.stdout
    assert f"New key id:  {new.key_id}" in result.stdout
    assert [k.key_id for k in home.retired_keys()] == [old.key_id]
    assert home.key_by_id(old.key_id).private_bytes == old.private_bytes
    shown = cli("keys", "show")
    assert f"Older keys:  {old.key_id}" in shown.stdout


def test_rotate_asks_first(cli, home):
    old = home.signing_key()

    result = cli("keys", "rotate", input="n\n")

    assert result.exit_code == 1
    assert home.signing_key().key_id == old.key_id


def test_a_damaged_key_file_is_reported_with_the_fix(cli, home):
    home.root.mkdir(parents=True)
    home.key_path.write_text("not json")

    result = cli("keys")

    assert result.exit_code == 1
    assert "is damaged: restore it from a backup" in result.stderr
    assert "Traceback" not in result.output


def test_results_lists_this_machines_results(cli, home, tiny_payload):
    local_id = home.save_result(tiny_payload)

    result = cli("results")

    assert result.exit_code == 0, result.output
    assert local_id in result.stdout
    assert "bf16-resident" in result.stdout
    assert "not sent" in result.stdout
    as_json = json.loads(cli("results", "--json").stdout)
    assert [entry["local_id"] for entry in as_json] == [local_id]


def test_results_without_any_says_how_to_make_one(cli):
    result = cli("results")

    assert result.exit_code == 0
    assert "No results yet" in result.stderr


def test_withdraw_signs_with_the_key_that_sent_the_result_even_after_rotation(
    cli, home, tiny_payload
):
    with PlatformServer() as platform:
        local_id = home.save_result(tiny_payload)
        assert cli("submit", local_id, "--server", platform.url).exit_code == 0
        sender = home.signing_key().key_id
        assert cli("keys", "rotate", "--yes").exit_code == 0

        result = cli("withdraw", "1", "--server", platform.url, "--yes")

        assert result.exit_code == 0, result.output
        request = platform.requests[-1]
        assert (request.method, request.path) == ("DELETE", "/contribute/1")
        document = wire.parse_document(request.body)
        document.verify(document.public_key)
        assert document.purpose == wire.PURPOSE_WITHDRAW
        assert document.payload == {"result_id": 1}
        assert document.key_id == sender
        assert platform.withdrawn == {1}
    assert "Result 1 withdrawn." in result.stdout
    assert home.history()[0]["status"] == "withdrawn"


def test_withdrawing_someone_elses_result_shows_the_servers_reason(cli, home, tiny_payload):
    with PlatformServer() as platform:
        body = wire.encode(wire.seal(tiny_payload, wire.SigningKey.generate()))
        platform.handle(Request("POST", "/contribute", {}, body))

        result = cli("withdraw", "1", "--server", platform.url, "--yes")

    assert result.exit_code == 1
    assert "Result 1 is not in this machine's history" in result.stderr
    assert "Only the key that submitted a result can withdraw it." in result.stderr


def test_withdraw_without_server_goes_where_the_history_says_the_result_was_sent(
    cli, home, tiny_payload
):
    with PlatformServer() as platform:
        local_id = home.save_result(tiny_payload)
        assert cli("submit", local_id, "--server", platform.url).exit_code == 0

        result = cli("withdraw", "1", "--yes")

        assert result.exit_code == 0, result.output
        assert [(r.method, r.path) for r in platform.requests][-1] == ("DELETE", "/contribute/1")
        assert platform.withdrawn == {1}
    assert home.history()[0]["status"] == "withdrawn"


def test_withdraw_asks_about_the_recorded_server_before_sending(cli, home, tiny_payload):
    with PlatformServer() as platform:
        local_id = home.save_result(tiny_payload)
        assert cli("submit", local_id, "--server", platform.url).exit_code == 0

        result = cli("withdraw", "1", input="n\n")

        assert result.exit_code == 1
        assert f"Withdraw result 1 from {platform.url}?" in result.output
        assert platform.withdrawn == set()


def test_withdrawing_through_another_address_of_the_same_site_updates_the_history(
    cli, home, tiny_payload
):
    with PlatformServer() as platform:
        local_id = home.save_result(tiny_payload)
        assert cli("submit", local_id, "--server", platform.url).exit_code == 0
        other = platform.url.replace("127.0.0.1", "localhost")

        result = cli("withdraw", "1", "--server", other, "--yes")

        assert result.exit_code == 0, result.output
        assert platform.withdrawn == {1}
    assert home.history()[0]["status"] == "withdrawn"
    listed = cli("results").stdout
    assert "withdrawn" in listed
    assert "sent" not in listed.replace("not sent", "")


def test_a_withdrawal_to_an_unreachable_recorded_server_suggests_server(cli, home, tiny_payload):
    with PlatformServer() as platform:
        local_id = home.save_result(tiny_payload)
        assert cli("submit", local_id, "--server", platform.url).exit_code == 0
        recorded = platform.url

    result = cli("withdraw", "1", "--yes")

    assert result.exit_code == 1
    message = " ".join(result.stderr.split())
    assert f"Could not reach {recorded}" in message
    assert (
        "That is where this machine's history says result 1 was sent; if the site now runs "
        "elsewhere, pass --server URL."
    ) in message
    assert home.history()[0]["status"] == "sent"


@pytest.mark.parametrize("given", ["abc", "0", "1.5", "\uff11\uff12"])
def test_withdraw_with_something_that_is_no_result_id_says_what_an_id_is(cli, given):
    result = cli("withdraw", given, "--yes")

    assert result.exit_code == 2
    message = " ".join(result.stderr.split())
    assert f"'{given}' is not a result id: give the server's result id, the number at the end " in (
        message
    )
    assert "integer range" not in message
