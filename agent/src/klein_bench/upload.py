"""Talking to the platform: POST /contribute and DELETE /contribute/<id>.

Network errors, 5xx and 429 are retried with exponential backoff (429 and 503 honour
Retry-After); any other 4xx is final and carries the server's one-sentence `detail` and
its field errors. When every try fails the caller queues the sealed document and sends
the same bytes later: the server answers an identical retry with its original response.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from klein_bench import __version__
from klein_bench.errors import KleinBenchError

DEFAULT_SERVER = "https://klein-bench.org"
SERVER_ENV = "KLEIN_BENCH_SERVER"
USER_AGENT = f"klein-bench/{__version__}"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Five tries over about 15 s (1, 2, 4, 8 s apart, with jitter) before a result is queued.
RETRIES = 4
BACKOFF_S = 1.0
# Reads that only inform (the consensus image before an upload) wait this long at most.
READ_TIMEOUT_S = 5.0


class ServerUnreachable(KleinBenchError):
    """Every try failed on the network or with a server error; worth trying later."""


class ServerRejected(KleinBenchError):
    """The server refused the request (4xx); sending it again will not help."""

    def __init__(
        self, message: str, *, status: int, error: str | None, fields: dict[str, str]
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.fields = fields


def normalize_server(url: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise KleinBenchError(
            f"--server {url!r} is not a web address: give one like {DEFAULT_SERVER} "
            "or http://127.0.0.1:8000."
        )
    return url.strip().rstrip("/")


@dataclass
class Accepted:
    """The server's answer to a stored contribution."""

    result_id: int
    permalink: str
    check_page: str
    status: str
    body: dict[str, Any] = field(default_factory=dict)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class Client:
    def __init__(
        self,
        server: str,
        *,
        retries: int | None = None,
        backoff_s: float | None = None,
        max_wait_s: float = 60.0,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str, float], None] | None = None,
    ) -> None:
        self.server = normalize_server(server)
        self.retries = RETRIES if retries is None else retries
        self.backoff_s = BACKOFF_S if backoff_s is None else backoff_s
        self.max_wait_s = max_wait_s
        self.timeout_s = timeout_s
        self.transport = transport
        self.sleep = sleep
        self.on_retry = on_retry

    def _request(self, method: str, path: str, body: bytes) -> httpx.Response:
        url = f"{self.server}{path}"
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        last_problem = "no answer"
        with httpx.Client(transport=self.transport, timeout=self.timeout_s) as http:
            for attempt in range(self.retries + 1):
                wait = self.backoff_s * 2**attempt * (1 + random.random() * 0.25)
                try:
                    response = http.request(method, url, content=body, headers=headers)
                except httpx.TransportError as exc:
                    last_problem = _network_problem(exc)
                else:
                    if response.status_code not in RETRY_STATUSES:
                        return response
                    last_problem = f"HTTP {response.status_code}"
                    detail = _json(response).get("detail")
                    if detail:
                        last_problem += f": {detail}"
                    retry_after = _retry_after(response)
                    if retry_after is not None:
                        wait = retry_after
                if attempt == self.retries:
                    break
                wait = min(wait, self.max_wait_s)
                if self.on_retry is not None:
                    self.on_retry(last_problem, wait)
                self.sleep(wait)
        raise ServerUnreachable(
            f"Could not reach {self.server} after {self.retries + 1} tries ({last_problem})."
        )

    def _rejected(self, response: httpx.Response, action: str) -> ServerRejected:
        body = _json(response)
        detail = body.get("detail") or response.reason_phrase or "no reason given"
        fields = body.get("fields") if isinstance(body.get("fields"), dict) else {}
        return ServerRejected(
            f"The server refused the {action} (HTTP {response.status_code}): {detail}",
            status=response.status_code,
            error=body.get("error"),
            fields={str(k): str(v) for k, v in fields.items()},
        )

    def contribute(self, body: bytes) -> Accepted:
        """POST a sealed result; the server's answer for a stored (or replayed) one."""
        response = self._request("POST", "/contribute", body)
        if response.status_code not in (200, 201):
            raise self._rejected(response, "result")
        answer = _json(response)
        try:
            return Accepted(
                result_id=int(answer["result_id"]),
                permalink=str(answer["permalink"]),
                check_page=str(answer.get("check_page") or ""),
                status=str(answer.get("status") or "accepted"),
                body=answer,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise KleinBenchError(
                f"{self.server} answered without a result id; check that --server points "
                "at a klein-bench platform."
            ) from exc

    def read(self, path: str) -> dict[str, Any] | None:
        """GET a JSON answer once, without retries; None when the server does not answer
        with one (reads only help: they must never hold up or fail a command)."""
        try:
            with httpx.Client(transport=self.transport, timeout=READ_TIMEOUT_S) as http:
                response = http.get(f"{self.server}{path}", headers={"User-Agent": USER_AGENT})
        except httpx.HTTPError:
            return None
        if response.status_code != 200:
            return None
        answer = _json(response)
        return answer or None

    def consensus(self, model: str) -> dict[str, Any] | None:
        """The server's consensus images for a model (GET /api/v1/consensus/<model>)."""
        return self.read(f"/api/v1/consensus/{model}")

    def withdraw(self, result_id: int, body: bytes) -> dict[str, Any]:
        """DELETE a result with a signed withdrawal document."""
        response = self._request("DELETE", f"/contribute/{result_id}", body)
        if response.status_code not in (200, 202, 204):
            raise self._rejected(response, "withdrawal")
        return _json(response)


def _network_problem(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        reason = str(exc).strip() or "connection refused"
        return f"cannot connect: {reason}"[:200]
    return f"{type(exc).__name__}: {exc}"[:200]
