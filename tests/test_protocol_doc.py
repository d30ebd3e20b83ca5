"""docs/protocol.md agrees with the code, and a client written from it alone works."""

from __future__ import annotations

import ast
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from klein_bench.contract import wire
from klein_bench.contract.protocol import CURRENT

from benchmarks.services import contributions, signed, withdrawals
from benchmarks.services.validation import validate_result
from tests.contribute_support import _fresh_rate_limits  # noqa: F401 - fixtures
from tests.factories import result_payload, runs

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "protocol.md"
CLIENT = ROOT / "docs" / "examples" / "minimal_client.py"


def example(name: str) -> str:
    """The fenced block right after `<!-- example:NAME -->` in the document."""
    match = re.search(
        rf"<!-- example:{re.escape(name)} -->\s*```[a-z]*\n(.*?)\n```", DOC.read_text(), re.S
    )
    assert match, f"docs/protocol.md has no example block {name!r}"
    return match.group(1)


def test_the_worked_examples_key_id_follows_from_its_private_key():
    key = wire.SigningKey.from_private_bytes(bytes.fromhex(example("private-key")))

    assert key.public_bytes.hex() == example("public-key")
    assert key.key_id == example("key-id")
    assert example("key-id") == "kb1_" + hashlib.sha256(key.public_bytes).hexdigest()[:32]


def test_the_worked_examples_canonical_bytes_are_the_envelopes():
    envelope = json.loads(example("envelope"))

    assert wire.canonical_json(envelope) == example("canonical").encode("utf-8")
    assert f"{len(example('canonical').encode('utf-8'))} bytes" in DOC.read_text()


def test_the_worked_examples_signature_is_the_keys_over_those_bytes():
    key = wire.SigningKey.from_private_bytes(bytes.fromhex(example("private-key")))
    canonical = example("canonical").encode("utf-8")

    assert key.sign(canonical).hex() == example("signature")
    document = wire.parse_document(
        {
            "envelope": json.loads(example("envelope")),
            "signature": example("signature"),
            "public_key": example("public-key"),
        }
    )
    document.verify(bytes.fromhex(example("public-key")))


def test_the_worked_withdrawal_is_signed_by_the_same_key():
    key = wire.SigningKey.from_private_bytes(bytes.fromhex(example("private-key")))
    envelope = json.loads(example("withdrawal-canonical"))

    assert wire.canonical_json(envelope).decode() == example("withdrawal-canonical")
    assert envelope["purpose"] == wire.PURPOSE_WITHDRAW
    assert key.sign(wire.canonical_json(envelope)).hex() == example("withdrawal-signature")


def test_the_documented_protocol_is_the_one_the_server_knows():
    definition = json.loads(example("protocol"))

    assert definition == json.loads(json.dumps(CURRENT.definition()))
    digest = hashlib.sha256(wire.canonical_json(definition)).hexdigest()
    assert example("protocol-hash") == f"sha256:{digest}" == CURRENT.hash


@pytest.mark.django_db
def test_the_worked_examples_payload_is_a_valid_result(catalog):
    validate_result(json.loads(example("envelope"))["payload"])


def test_every_error_the_server_answers_is_in_the_status_table():
    source = "".join(Path(m.__file__).read_text() for m in (signed, contributions, withdrawals))
    answered = set(re.findall(r'Refused\(\s*(\d{3}),\s*"([a-z_]+)"', source))
    documented = set(re.findall(r"^\| (\d{3}) \| `([a-z_]+)` \|", DOC.read_text(), re.M))

    assert len(answered) >= 12
    assert answered == documented


def test_the_documented_defaults_are_the_settings_defaults(settings):
    text = DOC.read_text()

    assert f"±{settings.CONTRIBUTE_CLOCK_SKEW_SECONDS} seconds" in text
    assert f"{settings.CONTRIBUTE_MAX_BYTES // 1024} KiB" in text


def test_the_minimal_client_uses_none_of_our_code():
    tree = ast.parse(CLIENT.read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }

    assert imported <= set(sys.stdlib_module_names) | {"cryptography", "rfc8785", "__future__"}


def run_client(live_server, tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-I", str(CLIENT), "--server", live_server.url,
         "--key", str(tmp_path / "client.key"), *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_client_written_from_the_document_contributes_a_result_that_shows_in_the_checks(
    live_server, catalog, tmp_path
):
    payload = tmp_path / "result.json"
    memory = {
        "peak_allocated_mb": 10500.0,
        "peak_reserved_mb": 11000.0,
        "peak_process_mb": 11500.0,
        "peak_device_mb": 11800.0,
    }
    gpu = {"name": "NVIDIA GeForce RTX 5070", "memory_total_mb": 12227}
    # An RTX 5070 needs at least 2.26 s for the transformer's work at its BF16 peak.
    timed = {"runs": runs(4.0, 4.0, 4.0, 4.0, 4.0)}
    payload.write_text(json.dumps(result_payload(gpu=gpu, memory=memory, timings=timed)))

    done = run_client(live_server, tmp_path, str(payload))

    assert done.returncode == 0, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert (answer["status"], answer["gpu"]) == ("accepted", "rtx-5070")
    assert (tmp_path / "client.key").stat().st_mode & 0o777 == 0o600
    check = Client().get("/api/v1/checks/flux-2-klein-4b/rtx-5070").json()
    assert check["verdict"] == "runs"
    assert [(s["n_results"], s["seconds_median"]) for s in check["summaries"]] == [(1, 4.0)]

    withdrawn = run_client(live_server, tmp_path, "--withdraw", str(answer["result_id"]))

    assert withdrawn.returncode == 0, withdrawn.stdout + withdrawn.stderr
    assert json.loads(withdrawn.stdout)["status"] == "withdrawn"
    check = Client().get("/api/v1/checks/flux-2-klein-4b/rtx-5070").json()
    assert (check["verdict"], check["summaries"]) == ("unknown", [])
