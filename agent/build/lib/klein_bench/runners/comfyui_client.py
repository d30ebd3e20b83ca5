"""A small client for ComfyUI's HTTP API and its progress WebSocket.

Only what the benchmark needs: `/system_stats`, `/object_info`, `/models/<folder>`,
`/queue`, `POST /prompt`, `/history/<id>`, `/view`, `POST /free`, and `/ws`. The
WebSocket reader is a minimal RFC 6455 client on the standard library (text frames,
fragments, ping/pong, close) so the agent needs no extra dependency for it; binary
frames (latent previews) are read and dropped.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import queue
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class ComfyUIError(Exception):
    """Something went wrong talking to ComfyUI."""


class ComfyUIUnreachable(ComfyUIError):
    """The server did not answer (refused, reset, timed out, or not HTTP)."""


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

    def models(self, folder: str) -> list[str] | None:
        """The files ComfyUI lists in a model folder; None when it has no such folder."""
        response = self._request("GET", f"/models/{folder}")
        if response.status_code == 404:
            return None
        return self._json(response, f"/models/{folder}")

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

    def interrupt(self) -> None:
        self._request("POST", "/interrupt", json={})

    def events(self, client_id: str, *, timeout: float = 5.0) -> EventStream:
        return EventStream.connect(self.url, client_id, timeout=timeout)


@dataclass(frozen=True)
class Event:
    """One message from `/ws`, with the agent's monotonic clock when it arrived."""

    received: float
    type: str
    data: dict[str, Any]


CLOSED = "__closed__"


class EventStream:
    """ComfyUI's `/ws?clientId=` messages, read on a background thread into a queue.

    When the connection ends, an Event of type CLOSED carries the reason in
    `data["reason"]`.
    """

    def __init__(self, sock: socket.socket, leftover: bytes):
        self._sock = sock
        self._buffer = bytearray(leftover)
        self._send_lock = threading.Lock()
        self._closing = False
        self.queue: queue.Queue[Event] = queue.Queue()
        self._thread = threading.Thread(target=self._read_loop, name="comfyui-ws", daemon=True)
        self._thread.start()

    @classmethod
    def connect(cls, base_url: str, client_id: str, *, timeout: float = 5.0) -> EventStream:
        parts = urlsplit(base_url)
        secure = parts.scheme == "https"
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if secure else 80)
        path = f"{parts.path.rstrip('/')}/ws?clientId={client_id}"
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
            if secure:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
            key = base64.b64encode(os.urandom(16)).decode()
            host_header = host if parts.port is None else f"{host}:{port}"
            request = (
                f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            )
            sock.sendall(request.encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ComfyUIUnreachable("the WebSocket closed during the handshake")
                head += chunk
                if len(head) > 65536:
                    raise ComfyUIUnreachable("the WebSocket handshake answer is too long")
        except OSError as exc:
            raise ComfyUIUnreachable(f"{base_url}/ws: {exc}") from exc
        header_bytes, leftover = head.split(b"\r\n\r\n", 1)
        lines = header_bytes.decode("latin-1").split("\r\n")
        if len(lines[0].split()) < 2 or lines[0].split()[1] != "101":
            sock.close()
            raise ComfyUIUnreachable(f"{base_url}/ws refused the WebSocket upgrade: {lines[0]}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        expected = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            sock.close()
            raise ComfyUIUnreachable(f"{base_url}/ws answered a bad WebSocket handshake")
        sock.settimeout(None)
        return cls(sock, leftover)

    def close(self) -> None:
        self._closing = True
        with contextlib.suppress(OSError):
            self._send(0x8, b"")
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._thread.join(timeout=2)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, opcode: int, payload: bytes) -> None:
        # Clients must mask every frame they send (RFC 6455 section 5.3).
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self._send_lock:
            self._sock.sendall(header + mask + masked)

    def _read_exact(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self._buffer += chunk
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    def _read_frame(self) -> tuple[bool, int, bytes]:
        first, second = self._read_exact(2)
        fin = bool(first & 0x80)
        opcode = first & 0x0F
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        mask = self._read_exact(4) if second & 0x80 else None
        payload = self._read_exact(length)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return fin, opcode, payload

    def _read_loop(self) -> None:
        reason = "closed"
        message = bytearray()
        message_opcode = 0
        try:
            while True:
                fin, opcode, payload = self._read_frame()
                if opcode == 0x8:
                    reason = "the server closed the WebSocket"
                    break
                if opcode == 0x9:
                    self._send(0xA, payload)
                    continue
                if opcode == 0xA:
                    continue
                if opcode in (0x1, 0x2):
                    message_opcode = opcode
                    message = bytearray(payload)
                elif opcode == 0x0:
                    message += payload
                if not fin:
                    continue
                if message_opcode == 0x1:
                    self._deliver(bytes(message))
                message = bytearray()
        except (OSError, ConnectionError, ValueError) as exc:
            reason = "closed" if self._closing else f"the WebSocket broke: {exc}"
        self.queue.put(Event(time.perf_counter(), CLOSED, {"reason": reason}))

    def _deliver(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if isinstance(message, dict) and isinstance(message.get("type"), str):
            data = message.get("data")
            self.queue.put(
                Event(time.perf_counter(), message["type"], data if isinstance(data, dict) else {})
            )
