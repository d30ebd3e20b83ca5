"""A small client for ComfyUI's HTTP API and its progress WebSocket.

Only what the benchmark needs: `/system_stats`, `/object_info`, `/queue`, `POST /prompt`,
`/history/<id>`, `/view`, `POST /free`, `POST /interrupt`, the two `/internal/` routes
the agent reads (its log and its model folders) and `/ws`, which the `websockets`
library's sync client reads on a background thread; binary frames (latent previews) are
dropped.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

DEFAULT_URL = "http://127.0.0.1:8188"


class ComfyUIError(Exception):
    """Something went wrong talking to ComfyUI."""


class ComfyUIUnreachable(ComfyUIError):
    """The server did not answer (refused, reset, timed out, or not HTTP)."""


class ComfyUIUnavailableFeature(ComfyUIError):
    """The agent lacks what a feature needs (a package)."""


class ComfyUIHTTPError(ComfyUIError):
    def __init__(self, path: str, status: int, body: str):
        self.path = path
        self.status = status
        self.body = body
        super().__init__(f"{path} answered HTTP {status}: {body[:200]}")


class PromptRejected(ComfyUIError):
    """POST /prompt answered 400: ComfyUI's validation error and per-node errors."""

    def __init__(self, error: dict[str, Any], node_errors: dict[str, Any]):
        self.error = error
        self.node_errors = node_errors
        super().__init__(describe_rejection(error, node_errors))


def describe_rejection(error: Any, node_errors: Any) -> str:
    """One line from ComfyUI's `{"error": ..., "node_errors": ...}` answer."""
    parts: list[str] = []
    if isinstance(node_errors, dict):
        for node_id, entry in node_errors.items():
            if not isinstance(entry, dict):
                continue
            for reason in entry.get("errors") or []:
                if isinstance(reason, dict):
                    parts.append(
                        f"{entry.get('class_type', node_id)}: "
                        f"{reason.get('message', '')} ({reason.get('details', '')})"
                    )
    if not parts and isinstance(error, dict):
        parts.append(f"{error.get('message', '')} {error.get('details', '')}".strip())
    elif not parts:
        parts.append(str(error))
    return "; ".join(parts)


def normalize_url(url: str) -> str:
    """`http://host:port[/prefix]` without a trailing slash; raises ValueError if unusable."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// address")
    return url.strip().rstrip("/")


class ComfyUIClient:
    def __init__(self, url: str, *, timeout: float = 15.0, transport: Any = None):
        self.url = normalize_url(url)
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ComfyUIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise ComfyUIUnreachable(f"{self.url}{path} timed out") from exc
        except httpx.HTTPError as exc:
            raise ComfyUIUnreachable(f"{self.url}{path}: {exc}") from exc

    def _json(self, response: httpx.Response, path: str) -> Any:
        if response.status_code != 200:
            raise ComfyUIHTTPError(path, response.status_code, response.text)
        try:
            return response.json()
        except ValueError as exc:
            # Something else (a web page, another program) is listening there.
            raise ComfyUIUnreachable(f"{self.url}{path} did not answer JSON") from exc

    def get_json(self, path: str, **params: Any) -> Any:
        return self._json(self._request("GET", path, params=params or None), path)

    def system_stats(self) -> dict[str, Any]:
        return self.get_json("/system_stats")

    def object_info(self) -> dict[str, Any]:
        return self.get_json("/object_info")

    def queue(self) -> dict[str, Any]:
        return self.get_json("/queue")

    def queue_prompt(self, graph: dict[str, Any], *, client_id: str) -> str:
        response = self._request("POST", "/prompt", json={"prompt": graph, "client_id": client_id})
        if response.status_code == 400:
            try:
                body = response.json()
            except ValueError:
                body = {}
            raise PromptRejected(body.get("error", {}), body.get("node_errors", {}))
        body = self._json(response, "/prompt")
        prompt_id = body.get("prompt_id") if isinstance(body, dict) else None
        if not isinstance(prompt_id, str):
            raise ComfyUIError(f"POST /prompt answered without a prompt_id: {body!r}")
        return prompt_id

    def history(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's history entry once it has finished; None while it has not."""
        body = self.get_json(f"/history/{prompt_id}")
        if isinstance(body, dict) and isinstance(body.get(prompt_id), dict):
            return body[prompt_id]
        return None

    def view(self, filename: str, subfolder: str, folder_type: str) -> bytes:
        path = "/view"
        response = self._request(
            "GET", path, params={"filename": filename, "subfolder": subfolder, "type": folder_type}
        )
        if response.status_code != 200:
            raise ComfyUIHTTPError(path, response.status_code, response.text)
        return response.content

    def free(self, *, unload_models: bool, free_memory: bool) -> None:
        path = "/free"
        body = {"unload_models": unload_models, "free_memory": free_memory}
        response = self._request("POST", path, json=body)
        if response.status_code != 200:
            raise ComfyUIHTTPError(path, response.status_code, response.text)

    def interrupt(self, prompt_id: str) -> None:
        """Stop this prompt only: ComfyUI honours `prompt_id` (builds that ignore it stop
        whatever runs, which is this prompt since the benchmark started on an idle queue)."""
        self._request("POST", "/interrupt", json={"prompt_id": prompt_id})

    def forget(self, prompt_id: str) -> None:
        """Take a prompt out of the queue if it has not started yet."""
        self._request("POST", "/queue", json={"delete": [prompt_id]})

    def log_entries(self) -> list[dict[str, str]] | None:
        """The last lines of ComfyUI's log (`{"t": time, "m": line}`); None when this build
        or a proxy does not serve them."""
        try:
            body = self.get_json("/internal/logs/raw")
        except ComfyUIHTTPError:
            return None
        entries = body.get("entries") if isinstance(body, dict) else None
        if not isinstance(entries, list):
            return None
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("m"), str)]

    def folder_paths(self) -> dict[str, list[str]] | None:
        """ComfyUI's model folders, searched in order; None when not served."""
        try:
            body = self.get_json("/internal/folder_paths")
        except ComfyUIHTTPError:
            return None
        if not isinstance(body, dict):
            return None
        return {
            str(name): [str(p) for p in paths if isinstance(p, str)]
            for name, paths in body.items()
            if isinstance(paths, list)
        }

    def events(self, client_id: str, *, timeout: float = 5.0) -> EventStream:
        return EventStream.connect(self.url, client_id, timeout=timeout)


@dataclass(frozen=True)
class Event:
    """One message from `/ws`, with the agent's monotonic clock when it arrived."""

    received: float
    type: str
    data: dict[str, Any]


CLOSED = "__closed__"
# ComfyUI's messages are small; previews can reach a few MB.
_MAX_MESSAGE_BYTES = 64 * 2**20


def websocket_url(base_url: str, client_id: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = f"{parts.path.rstrip('/')}/ws"
    return urlunsplit((scheme, parts.netloc, path, f"clientId={client_id}", ""))


class EventStream:
    """ComfyUI's `/ws?clientId=` messages, read on a background thread into a queue and
    stamped with the time they arrived (stage times are built from those stamps).

    When the connection ends, an Event of type CLOSED carries the reason in
    `data["reason"]`.
    """

    def __init__(self, connection: Any, closer: contextlib.ExitStack):
        self._connection = connection
        self._closer = closer
        self._closing = False
        self.queue: queue.Queue[Event] = queue.Queue()
        self._thread = threading.Thread(target=self._read_loop, name="comfyui-ws", daemon=True)
        self._thread.start()

    @classmethod
    def connect(cls, base_url: str, client_id: str, *, timeout: float = 5.0) -> EventStream:
        try:
            from websockets.exceptions import InvalidHandshake, InvalidURI
            from websockets.sync.client import connect
        except ImportError as exc:
            raise ComfyUIUnavailableFeature(
                'the websockets package is missing (install "klein-bench[comfyui]")'
            ) from exc
        url = websocket_url(base_url, client_id)
        closer = contextlib.ExitStack()
        try:
            # No keepalive pings: ComfyUI's event loop can stall for seconds while it
            # loads models, and a lost server shows in the /history polling anyway.
            connection = closer.enter_context(
                connect(
                    url,
                    open_timeout=timeout,
                    max_size=_MAX_MESSAGE_BYTES,
                    compression=None,
                    ping_interval=None,
                    close_timeout=2,
                )
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            raise ComfyUIUnreachable(f"{url}: {exc}") from exc
        return cls(connection, closer)

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(Exception):
            self._closer.close()
        self._thread.join(timeout=2)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_loop(self) -> None:
        from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

        reason = "closed"
        try:
            for message in self._connection:
                if isinstance(message, str):
                    self._deliver(message)
        except ConnectionClosedOK:
            reason = "the server closed the WebSocket"
        except (ConnectionClosed, OSError) as exc:
            reason = "closed" if self._closing else f"the WebSocket broke: {exc}"
        else:
            reason = "closed" if self._closing else "the server closed the WebSocket"
        self.queue.put(Event(time.perf_counter(), CLOSED, {"reason": reason}))

    def _deliver(self, raw: str) -> None:
        received = time.perf_counter()
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if isinstance(message, dict) and isinstance(message.get("type"), str):
            data = message.get("data")
            self.queue.put(Event(received, message["type"], data if isinstance(data, dict) else {}))
