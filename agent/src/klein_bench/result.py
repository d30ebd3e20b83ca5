"""The result payload (schemas/result-v1.json), assembled in one place for every runner.

Runners measure; this module turns their figures into the payload the server expects,
and keeps personal data out of it: no hostname, user name, paths or serial numbers, and
the GPU's UUID only as a salted hash. `docs/privacy.md` lists every field.
"""

from __future__ import annotations

import getpass
import os
import platform
import re
import socket
import sys
from pathlib import Path
from typing import Any

from klein_bench import __version__
from klein_bench.contract.figures import OUTCOMES, PHASES
from klein_bench.contract.protocol import Protocol
from klein_bench.contract.schema import RESULT_SCHEMA
from klein_bench.contract.stats import summarize
from klein_bench.gpu import GpuInfo, package_version, uuid_hash

STAGES = ("load", "warmup", "text_encoding", "denoising", "vae_decode", "other")
STATUSES = tuple(OUTCOMES)
MESSAGE_LIMIT = 2000


def configuration_section(
    *,
    runtime: str,
    precision: str,
    offload: str,
    width: int,
    height: int,
    steps: int,
    preset: str | None = None,
    fp8_method: str | None = None,
) -> dict[str, Any]:
    return {
        "runtime": runtime,
        "precision": precision,
        "offload": offload,
        "width": width,
        "height": height,
        "steps": steps,
        "preset": preset,
        "fp8_method": fp8_method,
    }


def gpu_section(
    info: GpuInfo | None,
    *,
    salt: bytes,
    pcie_generation: int | None = None,
    pcie_width: int | None = None,
) -> dict[str, Any]:
    """The GPU as NVML describes it; `{"device": "cpu", "name": ""}` on the CPU.

    The PCIe link drops to a lower generation when the GPU idles, so runners pass the
    highest link they saw while it worked.
    """
    if info is None:
        return {"device": "cpu", "name": ""}
    return {
        "device": "cuda",
        "name": info.name[:128],
        "memory_total_mb": info.memory_total_mb,
        "compute_capability": info.compute_capability,
        "uuid_hash": uuid_hash(info.uuid, salt),
        "drives_display": info.drives_display,
        "power_limit_w": info.power_limit_w,
        "default_power_limit_w": info.default_power_limit_w,
        "max_sm_clock_mhz": info.max_sm_clock_mhz,
        "pcie_generation": pcie_generation or info.pcie_generation,
        "pcie_width": pcie_width or info.pcie_width,
        "pcie_max_generation": info.pcie_max_generation,
        "pcie_max_width": info.pcie_max_width,
        "mig": info.mig,
    }


def _cpu_name() -> str | None:
    if sys.platform.startswith("linux"):
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()[:128]
        except OSError:
            pass
    return (platform.processor() or None) and platform.processor()[:128]


def os_name() -> str | None:
    """The OS and its major version ("Linux 6.8", "Windows 11"), nothing finer: a full
    kernel build string can be rare enough to single a machine out."""
    system = platform.system()
    if not system:
        return None
    release = platform.release()
    if system == "Linux":
        release = ".".join(release.split(".")[:2])
    elif system == "Darwin":
        release = platform.mac_ver()[0].split(".")[0]
    return f"{system} {release}".strip()[:64]


def environment_section(
    *,
    runtime_version: str | None = None,
    runtime_flags: list[str] | None = None,
    attention: str | None = None,
    driver: str | None = None,
    cuda_driver: str | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Software and machine facts (no personal data). `overrides` replace any field, e.g.
    the torch version a ComfyUI server reports instead of this interpreter's."""
    torch_module = sys.modules.get("torch")
    cuda = getattr(getattr(torch_module, "version", None), "cuda", None)
    environment = {
        "agent": __version__,
        "os": os_name(),
        "python": platform.python_version(),
        "torch": package_version("torch"),
        "cuda": cuda,
        "driver": driver,
        "cuda_driver": cuda_driver,
        "diffusers": package_version("diffusers"),
        "transformers": package_version("transformers"),
        "runtime_version": runtime_version,
        "runtime_flags": list(runtime_flags or []),
        "cpu": _cpu_name(),
        "attention": attention,
    }
    environment.update(overrides)
    return environment


def outcome_section(
    status: str, stage: str | None = None, message: str = "", *, phase: str | None = None
) -> dict[str, Any]:
    """How the run ended; `phase` (load, warm-up, timed) and `stage` (where in the
    pipeline) say where a failed or spilled one was."""
    if status not in STATUSES:
        raise ValueError(f"unknown outcome status {status!r}")
    if stage is not None and stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    if phase is not None and phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}")
    section = {"status": status, "stage": stage, "message": scrub(message)[:MESSAGE_LIMIT]}
    if status != "success":
        section["phase"] = phase
    return section


def memory_section(
    *,
    baseline_device_mb: float | None = None,
    peak_allocated_mb: float | None = None,
    peak_reserved_mb: float | None = None,
    peak_process_mb: float | None = None,
    peak_device_mb: float | None = None,
    peak_rss_mb: float | None = None,
    system_ram_mb: float | None = None,
    sample_interval_ms: float | None = None,
    peak_vram_mb: float | None = None,
    vram_source: str | None = None,
    context_mb: float | None = None,
    shared_peak_mb: float | None = None,
    peak_phase: str | None = None,
    peak_stage: str | None = None,
    phases: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The memory section: the headline `peak_vram_mb` (with `vram_source`, and the
    phase and stage it fell in), the figures it was chosen from, per-phase peaks."""
    return {
        "peak_vram_mb": peak_vram_mb,
        "vram_source": vram_source,
        "peak_phase": peak_phase,
        "peak_stage": peak_stage,
        "baseline_device_mb": baseline_device_mb,
        "peak_allocated_mb": peak_allocated_mb,
        "peak_reserved_mb": peak_reserved_mb,
        "peak_process_mb": peak_process_mb,
        "peak_device_mb": peak_device_mb,
        "peak_rss_mb": peak_rss_mb,
        "system_ram_mb": system_ram_mb,
        "sample_interval_ms": sample_interval_ms,
        "context_mb": context_mb,
        "shared_peak_mb": shared_peak_mb,
        "phases": phases,
    }


def run_record(
    *,
    seconds: float,
    prompt_index: int,
    seed: int,
    text_encoding_seconds: float | None = None,
    denoising_seconds: float | None = None,
    vae_decode_seconds: float | None = None,
    wall_seconds: float | None = None,
    energy_joules: float | None = None,
) -> dict[str, Any]:
    """One timed generation."""
    return {
        "seconds": seconds,
        "text_encoding_seconds": text_encoding_seconds,
        "denoising_seconds": denoising_seconds,
        "vae_decode_seconds": vae_decode_seconds,
        "wall_seconds": wall_seconds,
        "prompt_index": prompt_index,
        "seed": seed,
        "energy_joules": energy_joules,
    }


def build_payload(
    *,
    model: str,
    synthetic: bool,
    configuration: dict[str, Any],
    gpu: dict[str, Any],
    outcome: dict[str, Any],
    runs: list[dict[str, Any]],
    memory: dict[str, Any],
    environment: dict[str, Any],
    load_seconds: float | None = None,
    warmup_seconds: float | None = None,
    energy: dict[str, Any] | None = None,
    telemetry: dict[str, Any] | None = None,
    evidence: dict[str, Any] | None = None,
    kernels: dict[str, Any] | None = None,
    work: dict[str, Any] | None = None,
    protocol: Protocol,
) -> dict[str, Any]:
    """The result payload from a runner's measured pieces."""
    return {
        "schema": RESULT_SCHEMA,
        "protocol": {"id": protocol.id, "hash": protocol.hash},
        "model": model,
        "synthetic": synthetic,
        "configuration": configuration,
        "gpu": gpu,
        "outcome": outcome,
        "timings": {
            "load_seconds": load_seconds,
            "warmup_seconds": warmup_seconds,
            "runs": runs,
        },
        "memory": memory,
        "energy": energy,
        "telemetry": telemetry,
        "environment": environment,
        "evidence": evidence,
        "kernels": kernels,
        "work": work,
    }


def work_section(
    model: str, *, width: int, height: int, steps: int, protocol: Protocol
) -> dict[str, Any] | None:
    """The floating-point work of one image (the registry's, guidance passes counted), in
    TFLOP."""
    from klein_bench.contract.models import work_of

    work = work_of(model, width=width, height=height, steps=steps, protocol_id=protocol.id)
    if work is None:
        return None
    return {
        "transformer_tflop": work.transformer_flop / 1e12,
        "text_encoder_tflop": work.text_encoder_flop / 1e12,
        "vae_decode_tflop": work.vae_decode_flop / 1e12,
        "total_tflop": work.total_flop / 1e12,
    }


def schema_errors(payload: Any) -> list[str] | None:
    """Where the payload breaks the result schema ([] when it follows it); None when
    jsonschema is not installed (it is not one of the agent's dependencies)."""
    try:
        import jsonschema
    except ImportError:
        return None
    from klein_bench.contract.schema import result_schema

    validator = jsonschema.Draft202012Validator(result_schema())
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(payload)'}: {error.message}"
        for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    ]


def stats(payload: dict[str, Any]) -> dict[str, Any] | None:
    """Summary of the timed runs (seconds per image and median stage times), or None."""
    runs = payload.get("timings", {}).get("runs") or []
    if not runs:
        return None
    summary: dict[str, Any] = dict(summarize([r["seconds"] for r in runs]))
    for stage in ("text_encoding", "denoising", "vae_decode"):
        values = [r[f"{stage}_seconds"] for r in runs if r.get(f"{stage}_seconds") is not None]
        summary[stage] = summarize(values)["median"] if values else None
    return summary


# --- privacy -------------------------------------------------------------------------

_UNIX_PATH = re.compile(r"(?<![\w:/.~-])(?:~|\.{1,2})?(?:/[^\s/'\"(),:;]+){2,}/?")
_WINDOWS_PATH = re.compile(r"\b[A-Za-z]:\\[^\s'\"]*")
_PID = re.compile(r"\b(Process|PID|pid) \d+")


def _personal_words() -> list[str]:
    words = set()
    for getter in (getpass.getuser, socket.gethostname, lambda: socket.getfqdn()):
        try:
            value = getter()
        except Exception:  # getuser raises when no user name can be found
            continue
        if value and len(value) >= 3 and value not in {"localhost", "root"}:
            words.add(value)
    return sorted(words, key=len, reverse=True)


def scrub(text: str) -> str:
    """Remove what could identify the machine or person from a message: home and
    other paths, the user and host names, process ids."""
    if not text:
        return ""
    home = os.path.expanduser("~")
    if home and home not in {"/", "~"}:
        text = text.replace(home, "~")
    text = _WINDOWS_PATH.sub("<path>", text)
    text = _UNIX_PATH.sub("<path>", text)
    for word in _personal_words():
        text = re.sub(re.escape(word), "<redacted>", text, flags=re.IGNORECASE)
    return _PID.sub(r"\1 <pid>", text)
