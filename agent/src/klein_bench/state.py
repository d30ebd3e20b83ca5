"""The agent's state in a user directory (KLEIN_BENCH_HOME overrides it).

key.json            the Ed25519 signing key, mode 0600, made on first need
keys/<key_id>.json  keys replaced by `keys rotate`, kept to withdraw older results
gpu-salt            random bytes that salt the GPU UUID hash, mode 0600
results/<id>.json   every result this machine produced, as run
history.json        one entry per result: when, what, and where it was sent
queue/<id>.json     sealed documents waiting to be sent (exact bytes), with
queue/<id>.meta.json  the server they were meant for
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import sys
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from klein_bench.contract.stats import median
from klein_bench.contract.wire import SigningKey, canonical_json, format_created_at
from klein_bench.errors import KleinBenchError

ENV_HOME = "KLEIN_BENCH_HOME"
_PRIVATE = 0o600


def default_root() -> Path:
    override = os.environ.get(ENV_HOME)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("klein-bench", appauthor=False))


def _now() -> str:
    return format_created_at(datetime.now(timezone.utc))


def _write_private(path: Path, data: bytes) -> None:
    """Create a file only its owner can read, never briefly readable by others."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_json(path: Path, value: Any) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def _ensure_private(path: Path) -> None:
    # A key readable by others is a key others can sign with: tighten it like ssh would
    # refuse it. (Windows has no such mode bits; its user profile is private already.)
    if sys.platform != "win32" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        path.chmod(_PRIVATE)


@dataclass(frozen=True)
class QueuedDocument:
    path: Path
    body: bytes
    server: str
    local_id: str | None
    submission_id: str
    queued_at: str


class Home:
    def __init__(self, root: Path):
        self.root = root

    @classmethod
    def from_env(cls) -> Home:
        return cls(default_root())

    # --- layout --------------------------------------------------------------------

    @property
    def key_path(self) -> Path:
        return self.root / "key.json"

    @property
    def retired_dir(self) -> Path:
        return self.root / "keys"

    @property
    def queue_dir(self) -> Path:
        return self.root / "queue"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def history_path(self) -> Path:
        return self.root / "history.json"

    @property
    def salt_path(self) -> Path:
        return self.root / "gpu-salt"

    def _ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise KleinBenchError(
                f"Cannot create the agent's directory {self.root} ({exc.strerror}): set "
                f"{ENV_HOME} to a writable directory."
            ) from exc

    # --- keys ----------------------------------------------------------------------

    @staticmethod
    def _key_document(key: SigningKey) -> bytes:
        return (
            json.dumps(
                {
                    "key_id": key.key_id,
                    "public_key": key.public_bytes.hex(),
                    "private_key": key.private_bytes.hex(),
                    "created_at": _now(),
                },
                indent=2,
            ).encode()
            + b"\n"
        )

    def _read_key(self, path: Path) -> SigningKey:
        try:
            data = json.loads(path.read_text())
            key = SigningKey.from_private_bytes(bytes.fromhex(data["private_key"]))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KleinBenchError(
                f"The key file {path} is damaged: restore it from a backup, or move it away "
                "and run `klein-bench keys rotate` for a new key (results signed with the "
                "old key can then no longer be withdrawn)."
            ) from exc
        _ensure_private(path)
        return key

    def has_key(self) -> bool:
        return self.key_path.exists()

    def signing_key(self) -> SigningKey:
        """The current key, made (mode 0600) the first time it is needed."""
        if self.key_path.exists():
            return self._read_key(self.key_path)
        self._ensure_root()
        key = SigningKey.generate()
        _write_private(self.key_path, self._key_document(key))
        return key

    def rotate_key(self) -> tuple[SigningKey | None, SigningKey]:
        """Replace the current key; the old one moves to keys/ so that results it signed
        can still be withdrawn. Returns (old, new)."""
        self._ensure_root()
        old = self._read_key(self.key_path) if self.key_path.exists() else None
        if old is not None:
            self.retired_dir.mkdir(exist_ok=True, mode=0o700)
            os.replace(self.key_path, self.retired_dir / f"{old.key_id}.json")
        new = SigningKey.generate()
        _write_private(self.key_path, self._key_document(new))
        return old, new

    def retired_keys(self) -> list[SigningKey]:
        if not self.retired_dir.is_dir():
            return []
        return [self._read_key(path) for path in sorted(self.retired_dir.glob("kb1_*.json"))]

    def key_by_id(self, key_id: str) -> SigningKey | None:
        if self.key_path.exists():
            current = self._read_key(self.key_path)
            if current.key_id == key_id:
                return current
        path = self.retired_dir / f"{key_id}.json"
        return self._read_key(path) if path.exists() else None

    def gpu_salt(self) -> bytes:
        """Random bytes, made once, that salt the GPU UUID hash in every result."""
        if self.salt_path.exists():
            salt = self.salt_path.read_bytes()
            if len(salt) >= 16:
                return salt
        self._ensure_root()
        salt = secrets.token_bytes(32)
        _write_private(self.salt_path, salt)
        return salt

    # --- results and history -------------------------------------------------------

    def history(self) -> list[dict[str, Any]]:
        if not self.history_path.exists():
            return []
        try:
            entries = json.loads(self.history_path.read_text())
        except ValueError as exc:
            raise KleinBenchError(
                f"The history file {self.history_path} is damaged: move it away (the results "
                f"themselves stay in {self.results_dir})."
            ) from exc
        return entries if isinstance(entries, list) else []

    def _save_history(self, entries: list[dict[str, Any]]) -> None:
        self._ensure_root()
        _write_json(self.history_path, entries)

    @staticmethod
    def payload_digest(payload: Any) -> str:
        return hashlib.sha256(canonical_json(payload)).hexdigest()

    def find_payload(self, payload: Any) -> dict[str, Any] | None:
        """The history entry of this exact result, if this machine has seen it."""
        digest = self.payload_digest(payload)
        for entry in reversed(self.history()):
            if entry.get("payload_sha256") == digest:
                return entry
        return None

    def result_path(self, local_id: str) -> Path:
        return self.results_dir / f"{local_id}.json"

    def save_result(self, payload: dict[str, Any]) -> str:
        """Keep a result and add it to the history; returns its local id."""
        self._ensure_root()
        self.results_dir.mkdir(exist_ok=True)
        local_id = uuid.uuid4().hex[:8]
        _write_json(self.result_path(local_id), payload)
        seconds = [r["seconds"] for r in payload.get("timings", {}).get("runs") or []]
        entry = {
            "local_id": local_id,
            "created_at": _now(),
            "payload_sha256": self.payload_digest(payload),
            "model": payload.get("model"),
            "synthetic": payload.get("synthetic", False),
            "runtime": payload.get("configuration", {}).get("runtime"),
            "preset": payload.get("configuration", {}).get("preset"),
            "gpu": payload.get("gpu", {}).get("name") or "CPU",
            "outcome": payload.get("outcome", {}).get("status"),
            "stage": payload.get("outcome", {}).get("stage"),
            "median_seconds": median(seconds) if seconds else None,
            "status": "not sent",
            "result_id": None,
            "permalink": None,
            "check_page": None,
            "key_id": None,
            "server": None,
        }
        entries = self.history()
        entries.append(entry)
        self._save_history(entries)
        return local_id

    def update_history(self, local_id: str, **fields: Any) -> None:
        entries = self.history()
        for entry in entries:
            if entry.get("local_id") == local_id:
                entry.update(fields)
        self._save_history(entries)

    def find_result(self, result_id: int, server: str | None = None) -> dict[str, Any] | None:
        """The newest history entry of this server result id (ids are per server: with
        `server`, only an entry sent there)."""
        for entry in reversed(self.history()):
            if entry.get("result_id") == result_id and server in (None, entry.get("server")):
                return entry
        return None

    def sent_entry(self, result_id: int, server: str, key_id: str) -> dict[str, Any] | None:
        """The history entry of the result a withdrawal signed by `key_id` took back from
        `server`: the one sent there, else the only one this key sent with that id (the
        same site under another address, like localhost for 127.0.0.1)."""
        entry = self.find_result(result_id, server)
        if entry is not None:
            return entry
        signed = [
            e
            for e in self.history()
            if e.get("result_id") == result_id and e.get("key_id") == key_id
        ]
        return signed[0] if len(signed) == 1 else None

    # --- queue ---------------------------------------------------------------------

    def enqueue(
        self, body: bytes, *, server: str, submission_id: str, local_id: str | None
    ) -> Path:
        """Keep a sealed document to send later (the same bytes, so a retry of something
        the server already stored gets the original answer back)."""
        self._ensure_root()
        self.queue_dir.mkdir(exist_ok=True, mode=0o700)
        path = self.queue_dir / f"{submission_id}.json"
        path.write_bytes(body)
        _write_json(
            self.queue_dir / f"{submission_id}.meta.json",
            {"server": server, "local_id": local_id, "queued_at": _now()},
        )
        return path

    def pending(self) -> list[QueuedDocument]:
        if not self.queue_dir.is_dir():
            return []
        documents = []
        for path in sorted(self.queue_dir.glob("*.json")):
            if path.name.endswith(".meta.json"):
                continue
            meta_path = path.with_name(path.stem + ".meta.json")
            meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
            documents.append(
                QueuedDocument(
                    path=path,
                    body=path.read_bytes(),
                    server=meta.get("server", ""),
                    local_id=meta.get("local_id"),
                    submission_id=path.stem,
                    queued_at=meta.get("queued_at", ""),
                )
            )
        return sorted(documents, key=lambda d: d.queued_at)

    def dequeue(self, document: QueuedDocument) -> None:
        document.path.unlink(missing_ok=True)
        document.path.with_name(document.path.stem + ".meta.json").unlink(missing_ok=True)
