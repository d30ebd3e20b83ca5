#!/usr/bin/env python3
"""A minimal klein-bench client, written from docs/protocol.md alone.

It uses no klein-bench code: only the standard library, `cryptography` for Ed25519 and
`rfc8785` for canonical JSON (pip install cryptography rfc8785).

    # Contribute a result measured elsewhere (a payload as in protocol.md section 7):
    python minimal_client.py --server https://klein-bench.org --key my.key result.json

    # Withdraw it again:
    python minimal_client.py --server https://klein-bench.org --key my.key --withdraw 1234

The key file holds the raw 32-byte private key in hex; it is created (mode 0600) when
missing. The server's JSON answer is printed; the exit status is 0 for 2xx, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import sys
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import rfc8785
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ENVELOPE_FORMAT = "klein-bench/envelope/v1"
CONTRIBUTE = "klein-bench/contribute/v1"
WITHDRAW = "klein-bench/withdraw/v1"


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    if path.exists():
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text().strip()))
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(raw.hex() + "\n")
    return key


def public_key_hex(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


def key_id(public_hex: str) -> str:
    # Section 1: "kb1_" + the first 32 hex characters of SHA-256(raw public key).
    return "kb1_" + hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()[:32]


def signed_document(key: Ed25519PrivateKey, purpose: str, payload: dict) -> bytes:
    public_hex = public_key_hex(key)
    envelope = {
        "format": ENVELOPE_FORMAT,
        "purpose": purpose,
        "key_id": key_id(public_hex),
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nonce": secrets.token_hex(16),
        "submission_id": str(uuid.uuid4()),
        "payload": payload,
    }
    # Section 3: Ed25519 over the RFC 8785 bytes of the envelope only.
    signature = key.sign(rfc8785.dumps(envelope)).hex()
    document = {"envelope": envelope, "signature": signature, "public_key": public_hex}
    # Canonical bytes for the whole body, so a retry sends exactly the same bytes.
    return rfc8785.dumps(document)


def send(method: str, url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Contribute to or withdraw from klein-bench.")
    parser.add_argument("--server", required=True, help="e.g. https://klein-bench.org")
    parser.add_argument("--key", required=True, type=Path, help="private key file (hex)")
    parser.add_argument("--withdraw", type=int, metavar="RESULT_ID", help="withdraw a result")
    parser.add_argument("--reason", default="", help="why you withdraw it")
    parser.add_argument("payload", nargs="?", type=Path, help="result payload, JSON")
    args = parser.parse_args(argv)
    if (args.withdraw is None) == (args.payload is None):
        parser.error("give a payload file to contribute, or --withdraw RESULT_ID")

    key = load_or_create_key(args.key)
    server = args.server.rstrip("/")
    if args.withdraw is not None:
        payload: dict = {"result_id": args.withdraw}
        if args.reason:
            payload["reason"] = args.reason
        body = signed_document(key, WITHDRAW, payload)
        status, answer = send("DELETE", f"{server}/contribute/{args.withdraw}", body)
    else:
        body = signed_document(key, CONTRIBUTE, json.loads(args.payload.read_text()))
        status, answer = send("POST", f"{server}/contribute", body)
    print(json.dumps(answer, indent=2, ensure_ascii=False))
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
