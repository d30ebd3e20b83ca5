"""The stand-in ComfyUI's HTTP routes and its `/ws` WebSocket (tests/comfyui_server.py)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import queue
import select
import socket
import struct
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    # The ComfyUIServer it serves.
    comfy: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            return json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return {}

    def do_GET(self) -> None:
        comfy = self.comfy
        parts = urlsplit(self.path)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/ws":
            self._websocket(query.get("clientId", [""])[0])
        elif path == "/system_stats":
            self._json(200, comfy.system_stats())
        elif path == "/object_info":
            self._json(200, comfy.object_info())
        elif path == "/queue":
            self._json(200, comfy.queue_info())
        elif path.startswith("/history/") and comfy.behaviour.history_status != 200:
            self._json(comfy.behaviour.history_status, {"error": "Internal Server Error"})
        elif path.startswith("/history/"):
            prompt_id = path.removeprefix("/history/")
            entry = comfy.history.get(prompt_id)
            self._json(200, {prompt_id: entry} if entry else {})
        elif path == "/internal/logs/raw" and comfy.behaviour.logs:
            self._json(200, {"entries": list(comfy.log), "size": {"cols": 80, "rows": 24}})
        elif path == "/internal/folder_paths" and comfy.folder_paths() is not None:
            self._json(200, comfy.folder_paths())
        elif path == "/view":
            image = comfy._images.get(query.get("filename", [""])[0])
            if image is None or query.get("type", ["output"])[0] != "temp":
                self._empty(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)
        else:
            self._empty(404)

    def do_POST(self) -> None:
        comfy = self.comfy
        if self.path == "/prompt":
            self._json(*comfy.submit(self._body()))
        elif self.path == "/free":
            comfy.free(self._body())
            self._empty(200)
        elif self.path == "/interrupt":
            comfy.interrupt_calls.append(self._body())
            self._empty(200)
        elif self.path == "/queue":
            comfy.queue_calls.append(self._body())
            self._empty(200)
        else:
            self._empty(404)

    def _websocket(self, client_id: str) -> None:
        comfy = self.comfy
        key = self.headers.get("Sec-WebSocket-Key")
        if (
            not comfy.behaviour.websocket
            or self.headers.get("Upgrade", "").lower() != "websocket"
            or not key
        ):
            self._empty(400)
            return
        accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        self.wfile.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode()
        )
        self.wfile.flush()
        client_id = client_id or uuid.uuid4().hex
        outbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        comfy._sockets[client_id] = outbox
        outbox.put({"type": "status", "data": {**comfy._status(0), "sid": client_id}})
        sock: socket.socket = self.connection
        try:
            while True:
                try:
                    message = outbox.get(timeout=0.02)
                except queue.Empty:
                    message = {}
                if message is None:
                    break
                if message:
                    self._frame(0x1, json.dumps(message).encode())
                # The client only ever sends a close frame (or hangs up).
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    data = sock.recv(4096)
                    if not data or data[0] & 0x0F == 0x8:
                        with contextlib.suppress(OSError):
                            self._frame(0x8, b"")
                        break
        except OSError:
            pass
        finally:
            comfy._sockets.pop(client_id, None)
            self.close_connection = True
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        if len(payload) < 126:
            header += bytes([len(payload)])
        elif len(payload) < 65536:
            header += bytes([126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([127]) + struct.pack("!Q", len(payload))
        self.wfile.write(header + payload)
        self.wfile.flush()
