"""A stand-in klein-bench platform for the agent's tests: POST /contribute and
DELETE /contribute/<id> over real HTTP, as the server answers them.

It verifies each signed document, stores results, replays the original answer for an
identical retry, and refuses a stale or reused document the way the platform does.
`script` holds canned answers served first, to test retries and refusals.

    with PlatformServer() as server:
        server.script.append(Answer(503, {"error": "unavailable", "detail": "..."}))
        ...  # server.url, server.requests, server.results
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from klein_bench.contract import wire


@dataclass
class Answer:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class PlatformServer:
    def __init__(self, clock_skew_s: float = 300.0) -> None:
        self.script: list[Answer] = []
        self.requests: list[Request] = []
        self.results: dict[int, dict[str, Any]] = {}
        self.withdrawn: set[int] = set()
        # GET /api/v1/consensus/<model> answers, by model; reads are kept apart from the
        # signed requests above.
        self.consensus: dict[str, dict[str, Any]] = {}
        self.reads: list[Request] = []
        # GET /api/v1/results/<id> answers (for `klein-bench reproduce`), by id.
        self.published: dict[int, dict[str, Any]] = {}
        self.clock_skew_s = clock_skew_s
        self._answers_by_digest: dict[str, tuple[int, dict[str, Any]]] = {}
        self._owners: dict[int, str] = {}
        self._next_id = 1
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> PlatformServer:
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                request = Request(self.command, self.path, dict(self.headers), body)
                answer = platform.handle(request)
                payload = json.dumps(answer.body).encode() if answer.body is not None else b""
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            do_POST = _answer
            do_DELETE = _answer
            do_GET = _answer

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # --- the platform's answers ----------------------------------------------------

    def handle(self, request: Request) -> Answer:
        with self._lock:
            if request.method == "GET":
                self.reads.append(request)
                return self._read(request.path)
            self.requests.append(request)
            if self.script:
                return self.script.pop(0)
            if request.method == "POST" and request.path == "/contribute":
                return self._contribute(request.body)
            match = re.fullmatch(r"/contribute/(\d+)", request.path)
            if request.method == "DELETE" and match:
                return self._withdraw(int(match.group(1)), request.body)
            return Answer(404, {"error": "not_found", "detail": "No such page."})

    def _read(self, path: str) -> Answer:
        consensus = re.fullmatch(r"/api/v1/consensus/([a-z0-9-]+)", path)
        if consensus:
            model = consensus.group(1)
            return Answer(200, self.consensus.get(model, {"model": model, "images": []}))
        result = re.fullmatch(r"/api/v1/results/(\d+)", path)
        if result and int(result.group(1)) in self.published:
            return Answer(200, self.published[int(result.group(1))])
        return Answer(404, {"error": "not_found", "detail": "No such page."})

    def _verified(self, body: bytes, purpose: str) -> wire.SignedDocument | Answer:
        try:
            document = wire.parse_document(body)
            assert document.public_key is not None
            document.verify(document.public_key)
        except wire.MalformedDocument as exc:
            return Answer(
                400,
                {
                    "error": "malformed_document",
                    "detail": "The document is malformed.",
                    "fields": exc.errors,
                },
            )
        except wire.BadSignature:
            return Answer(
                401, {"error": "bad_signature", "detail": "The signature does not match."}
            )
        if document.purpose != purpose:
            return Answer(400, {"error": "wrong_purpose", "detail": "Wrong purpose."})
        return document

    def _contribute(self, body: bytes) -> Answer:
        digest = hashlib.sha256(body).hexdigest()
        if digest in self._answers_by_digest:
            status, answer = self._answers_by_digest[digest]
            return Answer(status, answer)
        document = self._verified(body, wire.PURPOSE_CONTRIBUTE)
        if isinstance(document, Answer):
            return document
        now = datetime.now(timezone.utc)
        if abs(now - document.created_at) > timedelta(seconds=self.clock_skew_s):
            return Answer(
                400,
                {
                    "error": "stale",
                    "detail": "The document was created too long ago; sign it again.",
                    "fields": {"envelope.created_at": "outside the accepted window"},
                },
            )
        payload = document.payload
        result_id = self._next_id
        self._next_id += 1
        self.results[result_id] = payload
        self._owners[result_id] = document.key_id
        gpu = "cpu" if payload["gpu"]["device"] == "cpu" else "gpu"
        answer = {
            "result_id": result_id,
            "permalink": f"{self.url}/r/{result_id}",
            "check_page": f"{self.url}/check/{payload['model']}/{gpu}/",
            "status": "accepted",
            "model": payload["model"],
            "gpu": gpu,
            "configuration": payload["configuration"],
        }
        self._answers_by_digest[digest] = (201, answer)
        return Answer(201, answer)

    def _withdraw(self, result_id: int, body: bytes) -> Answer:
        document = self._verified(body, wire.PURPOSE_WITHDRAW)
        if isinstance(document, Answer):
            return document
        if result_id not in self.results:
            return Answer(404, {"error": "not_found", "detail": f"There is no result {result_id}."})
        if self._owners[result_id] != document.key_id:
            return Answer(
                403,
                {
                    "error": "not_owner",
                    "detail": "Only the key that submitted a result can withdraw it.",
                },
            )
        self.withdrawn.add(result_id)
        return Answer(200, {"result_id": result_id, "status": "withdrawn"})
