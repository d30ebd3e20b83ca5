"""Finding the ComfyUI process and the GPU it uses, so the agent can watch them.

Memory, energy and telemetry come from NVML on the agent's side, so they need a ComfyUI
on this machine: its process is the one listening on ComfyUI's port (or, in a container
where that is hidden, the one whose command line ends with the argv ComfyUI reports).
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

import psutil

from klein_bench.errors import KleinBenchError
from klein_bench.gpu import GpuInfo, gpu_info, safe


def is_local(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    local = {
        address.address.split("%")[0]
        for entries in psutil.net_if_addrs().values()
        for address in entries
    }
    for address in addresses:
        try:
            if ipaddress.ip_address(address.split("%")[0]).is_loopback:
                return True
        except ValueError:
            continue
        if address in local:
            return True
    return False


def comfyui_pid(url: str, stats: dict[str, Any]) -> int | None:
    """The PID of the process listening on ComfyUI's port, else the one whose command
    line ends with the argv ComfyUI reports."""
    port = urlsplit(url).port or (443 if url.startswith("https") else 80)
    try:
        for connection in psutil.net_connections(kind="tcp"):
            if (
                connection.status == psutil.CONN_LISTEN
                and connection.laddr
                and connection.laddr.port == port
                and connection.pid
            ):
                return connection.pid
    except (psutil.AccessDenied, OSError):
        pass
    system = stats.get("system") if isinstance(stats.get("system"), dict) else {}
    argv = [str(a) for a in system.get("argv") or []]
    if not argv:
        return None
    matches = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = process.info.get("cmdline") or []
        if len(cmdline) >= len(argv) and cmdline[-len(argv) :] == argv:
            matches.append(process.info["pid"])
    return matches[0] if len(matches) == 1 else None


def process_exited(pid: int | None) -> bool:
    """Whether the process has ended. A process killed with SIGKILL stays a zombie until
    its parent (the user's shell, say) reaps it, and a zombie still "exists"."""
    if pid is None:
        return False
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def check_gpu(pynvml: Any, pid: int, gpu_index: int) -> None:
    """KleinBenchError when NVML shows ComfyUI's process on another GPU than `gpu_index`."""
    holders = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        device = pynvml.nvmlDeviceGetHandleByIndex(index)
        processes = safe(pynvml.nvmlDeviceGetComputeRunningProcesses, device) or []
        if any(p.pid == pid for p in processes):
            holders.append(index)
    if holders and gpu_index not in holders:
        other: GpuInfo = gpu_info(holders[0])
        raise KleinBenchError(
            f"ComfyUI runs on GPU {holders[0]} ({other.name}), not GPU {gpu_index}: "
            f"pass --gpu {holders[0]}."
        )
