"""Signing results, sending them, and the queue of those that could not be sent yet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from klein_bench import result
from klein_bench.contract import wire
from klein_bench.errors import KleinBenchError
from klein_bench.state import Home, QueuedDocument
from klein_bench.upload import Accepted, Client, ServerRejected, ServerUnreachable


@dataclass
class Sealed:
    """A signed result ready to send: these exact bytes go over the wire."""

    document: dict[str, Any]
    body: bytes
    submission_id: str
    key_id: str
    local_id: str | None


class Queued(KleinBenchError):
    """The server could not be reached; the document waits in the queue."""


def load_result(home: Home, reference: str) -> tuple[dict[str, Any], str | None]:
    """A result from a JSON file or a local id (`klein-bench results` lists them)."""
    path = Path(reference).expanduser()
    local_id = None
    if not path.is_file():
        candidate = home.result_path(reference)
        if reference.isalnum() and candidate.is_file():
            path, local_id = candidate, reference
        else:
            raise KleinBenchError(
                f"{reference} is neither a result file nor a local result id: pass the file "
                "`klein-bench run --output` wrote, or an id from `klein-bench results`."
            )
    try:
        payload = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise KleinBenchError(f"Cannot read {path} ({exc}): check the file name.") from exc
    except ValueError as exc:
        raise KleinBenchError(
            f"{path} is not valid JSON ({exc}): pass a file written by `klein-bench run --output`."
        ) from exc
    check_payload(payload, str(path))
    return payload, local_id


def check_payload(payload: Any, origin: str) -> None:
    if not isinstance(payload, dict) or payload.get("schema") != result.RESULT_SCHEMA:
        raise KleinBenchError(
            f"{origin} is not a klein-bench result: pass a file written by "
            "`klein-bench run --output`."
        )
    errors = result.schema_errors(payload)
    if errors:
        shown = "; ".join(errors[:3]) + ("; ..." if len(errors) > 3 else "")
        raise KleinBenchError(
            f"{origin} does not follow the result schema ({shown}): run the benchmark again "
            "rather than editing the file."
        )


def seal(home: Home, payload: dict[str, Any], local_id: str | None) -> Sealed:
    key = home.signing_key()
    document = wire.seal(payload, key)
    return Sealed(
        document=document,
        body=wire.encode(document),
        submission_id=document["envelope"]["submission_id"],
        key_id=key.key_id,
        local_id=local_id,
    )


def _record_accepted(
    home: Home, local_id: str | None, accepted: Accepted, key_id: str, server: str
) -> None:
    if local_id:
        home.update_history(
            local_id,
            status="sent",
            result_id=accepted.result_id,
            permalink=accepted.permalink,
            check_page=accepted.check_page,
            key_id=key_id,
            server=server,
        )


def send(home: Home, client: Client, sealed: Sealed) -> Accepted:
    """Send a sealed result; queue it when the server cannot be reached (raises Queued)."""
    try:
        accepted = client.contribute(sealed.body)
    except ServerUnreachable as exc:
        home.enqueue(
            sealed.body,
            server=client.server,
            submission_id=sealed.submission_id,
            local_id=sealed.local_id,
        )
        if sealed.local_id:
            home.update_history(sealed.local_id, status="queued", server=client.server)
        raise Queued(
            f"{exc.message.rstrip('.')}: the signed result waits in the queue; send it with "
            "`klein-bench submit --pending` once the server is reachable."
        ) from exc
    except ServerRejected:
        if sealed.local_id:
            home.update_history(sealed.local_id, status="rejected", server=client.server)
        raise
    _record_accepted(home, sealed.local_id, accepted, sealed.key_id, client.server)
    return accepted


@dataclass
class PendingOutcome:
    document: QueuedDocument
    accepted: Accepted | None = None
    problem: KleinBenchError | None = None


def send_pending(home: Home, make_client: Any, server_override: str | None) -> list[PendingOutcome]:
    """Send every queued document (to the server it was meant for, unless overridden).

    Sent and rejected documents leave the queue; unreachable ones stay.
    """
    outcomes = []
    for document in home.pending():
        client = make_client(server_override or document.server)
        key_id = wire.parse_document(document.body).key_id
        try:
            try:
                accepted = client.contribute(document.body)
            except ServerRejected as exc:
                refreshed = _refreshed(home, document) if exc.error == STALE else None
                if refreshed is None:
                    raise
                document = refreshed
                accepted = client.contribute(document.body)
        except ServerUnreachable as exc:
            outcomes.append(PendingOutcome(document, problem=exc))
            continue
        except ServerRejected as exc:
            home.dequeue(document)
            if document.local_id:
                home.update_history(document.local_id, status="rejected", server=client.server)
            outcomes.append(PendingOutcome(document, problem=exc))
            continue
        home.dequeue(document)
        _record_accepted(home, document.local_id, accepted, key_id, client.server)
        outcomes.append(PendingOutcome(document, accepted=accepted))
    return outcomes


STALE = "stale"


def _refreshed(home: Home, document: QueuedDocument) -> QueuedDocument | None:
    """The queued result signed again with a fresh time and nonce.

    The server accepts documents created within a few minutes of its clock. A queued
    document it never stored goes stale; the same payload under the same submission id,
    signed anew by the same key, is the same result. (One the server did store is never
    stale: an identical retry gets the original answer.)
    """
    signed = wire.parse_document(document.body)
    key = home.key_by_id(signed.key_id)
    if key is None:
        return None
    body = wire.encode(
        wire.seal(signed.payload, key, purpose=signed.purpose, submission_id=signed.submission_id)
    )
    document.path.write_bytes(body)
    return QueuedDocument(
        path=document.path,
        body=body,
        server=document.server,
        local_id=document.local_id,
        submission_id=document.submission_id,
        queued_at=document.queued_at,
    )


def withdrawal(home: Home, result_id: int, server: str | None = None) -> tuple[bytes, str, bool]:
    """The signed withdrawal body, the key id that signed it, and whether that key is the
    one the history says submitted the result (to `server`, when given)."""
    entry = home.find_result(result_id, server)
    key = None
    if entry and entry.get("key_id"):
        key = home.key_by_id(entry["key_id"])
    known = key is not None
    key = key or home.signing_key()
    document = wire.seal({"result_id": result_id}, key, purpose=wire.PURPOSE_WITHDRAW)
    return wire.encode(document), key.key_id, known
