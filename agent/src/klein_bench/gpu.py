"""What the machine has: NVIDIA GPUs through NVML, torch's CUDA build, package versions.

NVML comes with the NVIDIA driver, not with this package (nvidia-ml-py is only its Python
binding), so every NVML call can fail on a machine without the driver: `nvml()` turns
that into a KleinBenchError with the fix, and `gpus_or_reason()` into a reason to show.
GPU indices are NVML's (the order `nvidia-smi` shows); `torch_index_for()` maps one to
torch's index, which CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER can change.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from dataclasses import dataclass, field
from typing import Any

from klein_bench.errors import KleinBenchError

MIB = 1024 * 1024

_nvml_module: Any = None


def nvml() -> Any:
    """The initialised pynvml module, or a KleinBenchError saying how to get NVML working."""
    global _nvml_module
    if _nvml_module is not None:
        return _nvml_module
    try:
        import pynvml
    except ImportError as exc:
        raise KleinBenchError(
            'The NVML binding is missing: reinstall the agent with `pip install "klein-bench"`.'
        ) from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound as exc:
        raise KleinBenchError(
            "NVIDIA's NVML library was not found, so no NVIDIA driver is installed: install "
            "the NVIDIA driver (`nvidia-smi` must work), or use `--model klein-tiny-random` "
            "on the CPU."
        ) from exc
    except pynvml.NVMLError_DriverNotLoaded as exc:
        raise KleinBenchError(
            "The NVIDIA driver is installed but not loaded: reboot, or load it with "
            "`sudo modprobe nvidia`, then check that `nvidia-smi` works."
        ) from exc
    except pynvml.NVMLError_NoPermission as exc:
        raise KleinBenchError(
            "NVML refused access to the GPU: run as a user allowed to use it (on Linux, "
            "one in the `video` group) and check that `nvidia-smi` works."
        ) from exc
    except pynvml.NVMLError as exc:
        raise KleinBenchError(
            f"NVML could not start ({exc}): check that `nvidia-smi` works, updating the "
            "NVIDIA driver if it does not."
        ) from exc
    _nvml_module = pynvml
    return pynvml


def safe(function: Any, *args: Any) -> Any:
    """The NVML call's value, or None where the GPU or driver does not support it."""
    import pynvml

    try:
        return function(*args)
    except pynvml.NVMLError:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class GpuInfo:
    index: int
    name: str
    uuid: str | None
    memory_total_mb: float | None
    memory_used_mb: float | None
    compute_capability: str | None
    drives_display: bool | None
    power_limit_w: float | None
    pcie_generation: int | None
    pcie_width: int | None
    pcie_max_generation: int | None
    pcie_max_width: int | None
    default_power_limit_w: float | None = None
    max_sm_clock_mhz: float | None = None
    # Measured on a MIG instance: memory is the instance's, the rest the whole card's.
    mig: bool = False

    @property
    def sm(self) -> str | None:
        if not self.compute_capability:
            return None
        major, minor = self.compute_capability.split(".")
        return f"sm_{major}{minor}"

    @property
    def is_blackwell(self) -> bool:
        return bool(self.compute_capability) and int(self.compute_capability.split(".")[0]) >= 10


def handle(index: int) -> Any:
    pynvml = nvml()
    count = pynvml.nvmlDeviceGetCount()
    if not 0 <= index < count:
        available = "no NVIDIA GPU" if count == 0 else f"GPUs 0 to {count - 1}"
        raise KleinBenchError(
            f"There is no GPU {index}: NVML sees {available}; pick one that "
            "`klein-bench doctor` lists with --gpu."
        )
    return pynvml.nvmlDeviceGetHandleByIndex(index)


@dataclass(frozen=True)
class NvmlDevice:
    """Where NVML reads the benchmark's GPU: `memory` is the handle memory figures come
    from (a MIG instance's own on MIG), `card` the physical card's (power, clocks,
    energy, PCIe). `mig_index` lets another process find the same instance."""

    index: int
    card: Any
    memory: Any
    mig_index: int | None = None

    @property
    def mig(self) -> bool:
        return self.mig_index is not None


def nvml_device(index: int) -> NvmlDevice:
    card = handle(index)
    return NvmlDevice(index, card, card)


def reopen(index: int, mig_index: int | None) -> NvmlDevice:
    """The same NvmlDevice in another process (handles do not cross processes)."""
    card = handle(index)
    if mig_index is None:
        return NvmlDevice(index, card, card)
    instance = nvml().nvmlDeviceGetMigDeviceHandleByIndex(card, mig_index)
    return NvmlDevice(index, card, instance, mig_index)


def _plain_uuid(value: Any) -> str | None:
    """'GPU-6c2f...' or 'MIG-6c2f...' as torch writes UUIDs: bare and lower case."""
    if value is None:
        return None
    text = _text(value).lower()
    for prefix in ("gpu-", "mig-"):
        text = text.removeprefix(prefix)
    return text


def resolve_device(torch_index: int, nvml_index: int | None = None) -> NvmlDevice:
    """NVML's device for torch's CUDA device `torch_index`, matched by UUID: a whole card,
    or a MIG instance of one. `nvml_index` limits the search to that card (--gpu).

    Never a guess: a device NVML cannot match is refused in one sentence, since reading
    another card's memory would make every figure wrong.
    """
    import torch

    pynvml = nvml()
    wanted = _torch_uuid(torch_index)
    name = torch.cuda.get_device_properties(torch_index).name
    cards = range(pynvml.nvmlDeviceGetCount()) if nvml_index is None else [nvml_index]
    for index in cards:
        card = handle(index)
        if wanted is not None and _plain_uuid(safe(pynvml.nvmlDeviceGetUUID, card)) == wanted:
            return NvmlDevice(index, card, card)
        mode = safe(pynvml.nvmlDeviceGetMigMode, card)
        if not mode or mode[0] != getattr(pynvml, "NVML_DEVICE_MIG_ENABLE", 1):
            continue
        for mig_index in range(safe(pynvml.nvmlDeviceGetMaxMigDeviceCount, card) or 0):
            instance = safe(pynvml.nvmlDeviceGetMigDeviceHandleByIndex, card, mig_index)
            if instance is None:
                continue
            uuid = _plain_uuid(safe(pynvml.nvmlDeviceGetUUID, instance))
            if wanted is not None and uuid == wanted:
                return NvmlDevice(index, card, instance, mig_index)
        raise KleinBenchError(
            f"GPU {index} is split into MIG instances and NVML lists none that matches the "
            f"one torch uses ({name}): set CUDA_VISIBLE_DEVICES to the MIG instance's UUID "
            "from `nvidia-smi -L`, and run again."
        )
    raise KleinBenchError(
        f"torch's CUDA device {torch_index} ({name}) matches no GPU that NVML lists (its "
        "UUID is unknown to NVML, as in some containers), so its memory cannot be read: "
        "pick the GPU with --gpu INDEX as `klein-bench doctor` numbers them."
    )


def gpu_info(index: int, device: NvmlDevice | None = None) -> GpuInfo:
    """What NVML says about GPU `index` (about its MIG instance when `device` is one)."""
    pynvml = nvml()
    device_handle = handle(index)
    memory_handle = device.memory if device is not None else device_handle
    memory = safe(pynvml.nvmlDeviceGetMemoryInfo, memory_handle)
    device = device_handle
    capability = safe(pynvml.nvmlDeviceGetCudaComputeCapability, device)
    display_active = safe(pynvml.nvmlDeviceGetDisplayActive, device)
    display_mode = safe(pynvml.nvmlDeviceGetDisplayMode, device)
    if display_active is None and display_mode is None:
        drives_display = None
    else:
        # Active: a display is initialised on this GPU now; mode: a monitor is connected.
        drives_display = bool(display_active) or bool(display_mode)
    power_limit = safe(pynvml.nvmlDeviceGetEnforcedPowerLimit, device)
    default_limit = safe(pynvml.nvmlDeviceGetPowerManagementDefaultLimit, device)
    max_sm = safe(pynvml.nvmlDeviceGetMaxClockInfo, device, pynvml.NVML_CLOCK_SM)
    uuid = safe(pynvml.nvmlDeviceGetUUID, device)
    return GpuInfo(
        index=index,
        name=_text(pynvml.nvmlDeviceGetName(device)),
        uuid=_text(uuid) if uuid is not None else None,
        memory_total_mb=memory.total / MIB if memory else None,
        memory_used_mb=memory.used / MIB if memory else None,
        compute_capability=f"{capability[0]}.{capability[1]}" if capability else None,
        drives_display=drives_display,
        power_limit_w=power_limit / 1000 if power_limit is not None else None,
        pcie_generation=safe(pynvml.nvmlDeviceGetCurrPcieLinkGeneration, device),
        pcie_width=safe(pynvml.nvmlDeviceGetCurrPcieLinkWidth, device),
        pcie_max_generation=safe(pynvml.nvmlDeviceGetMaxPcieLinkGeneration, device),
        pcie_max_width=safe(pynvml.nvmlDeviceGetMaxPcieLinkWidth, device),
        default_power_limit_w=default_limit / 1000 if default_limit else None,
        max_sm_clock_mhz=float(max_sm) if max_sm else None,
        mig=memory_handle is not device_handle,
    )


def list_gpus() -> list[GpuInfo]:
    pynvml = nvml()
    return [gpu_info(i) for i in range(pynvml.nvmlDeviceGetCount())]


def gpus_or_reason() -> tuple[list[GpuInfo], str | None]:
    """The GPUs, or none and the reason NVML cannot list them."""
    try:
        return list_gpus(), None
    except KleinBenchError as exc:
        return [], exc.message


def driver_versions() -> tuple[str | None, str | None]:
    """The NVIDIA driver version and the CUDA version it supports, e.g. ('580.95.05', '13.0')."""
    pynvml = nvml()
    driver = safe(pynvml.nvmlSystemGetDriverVersion)
    cuda = safe(pynvml.nvmlSystemGetCudaDriverVersion_v2) or safe(
        pynvml.nvmlSystemGetCudaDriverVersion
    )
    cuda_text = f"{cuda // 1000}.{cuda % 1000 // 10}" if cuda else None
    return (_text(driver) if driver is not None else None), cuda_text


def uuid_hash(uuid: str | None, salt: bytes) -> str | None:
    """A salted hash of the GPU UUID: tells one card's results apart without naming it."""
    if not uuid:
        return None
    return hashlib.sha256(salt + uuid.encode()).hexdigest()[:16]


# --- torch ---------------------------------------------------------------------------


@dataclass
class TorchInfo:
    installed: bool
    version: str | None = None
    cuda: str | None = None
    cuda_available: bool = False
    device_count: int = 0
    arch_list: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def is_cpu_build(self) -> bool:
        return self.installed and self.cuda is None


def torch_info() -> TorchInfo:
    try:
        import torch
    except ImportError:
        return TorchInfo(installed=False)
    except Exception as exc:  # a broken install (missing shared libraries, ABI mismatch)
        return TorchInfo(installed=False, error=f"{type(exc).__name__}: {exc}")
    info = TorchInfo(installed=True, version=torch.__version__, cuda=torch.version.cuda)
    try:
        info.cuda_available = torch.cuda.is_available()
        info.device_count = torch.cuda.device_count() if info.cuda_available else 0
        info.arch_list = list(torch.cuda.get_arch_list()) if info.cuda else []
    except Exception as exc:  # CUDA initialisation errors (driver too old for the build)
        info.error = f"{type(exc).__name__}: {exc}"
    return info


def supports_capability(arch_list: list[str], compute_capability: str) -> bool:
    """Whether a torch build's kernels run on this compute capability.

    Cubins (sm_XY) run on the same major version at an equal or higher minor; PTX
    (compute_XY) is compiled by the driver for any later GPU.
    """
    major, minor = (int(part) for part in compute_capability.split("."))
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)[a-z]?", arch)
        if not match:
            continue
        arch_major, arch_minor = int(match.group(2)), int(match.group(3))
        if match.group(1) == "sm" and arch_major == major and arch_minor <= minor:
            return True
        if match.group(1) == "compute" and (arch_major, arch_minor) <= (major, minor):
            return True
    return False


def cuda_wheel_tag(cuda_driver: str | None, *, blackwell: bool = False) -> str:
    """The PyTorch wheel index tag (cu128, cu126, ...) for a driver's CUDA version."""
    if blackwell:
        return "cu128"
    if cuda_driver is None:
        return "cu128"
    major, minor = (int(part) for part in cuda_driver.split(".")[:2])
    for tag, (need_major, need_minor) in (
        ("cu128", (12, 8)),
        ("cu126", (12, 6)),
        ("cu124", (12, 4)),
        ("cu121", (12, 1)),
    ):
        if (major, minor) >= (need_major, need_minor):
            return tag
    return "cu118"


def torch_install_command(tag: str) -> str:
    return f"pip install --upgrade torch --index-url https://download.pytorch.org/whl/{tag}"


def _torch_uuid(torch_index: int) -> str | None:
    import torch

    value = getattr(torch.cuda.get_device_properties(torch_index), "uuid", None)
    return str(value).lower() if value is not None else None


def _nvml_uuid(info: GpuInfo) -> str | None:
    return info.uuid.removeprefix("GPU-").lower() if info.uuid else None


def torch_index_for(index: int) -> int:
    """torch's CUDA device index for NVML's GPU `index` (matched by UUID, then PCI bus)."""
    import torch

    info = gpu_info(index)
    pynvml = nvml()
    pci = safe(pynvml.nvmlDeviceGetPciInfo, handle(index))
    bus_id = _text(pci.busId) if pci is not None else None
    for candidate in range(torch.cuda.device_count()):
        if _nvml_uuid(info) and _nvml_uuid(info) == _torch_uuid(candidate):
            return candidate
        properties = torch.cuda.get_device_properties(candidate)
        if (
            bus_id
            and getattr(properties, "pci_bus_id", None) is not None
            and _same_bus(bus_id, properties)
        ):
            return candidate
    raise KleinBenchError(
        f"GPU {index} ({info.name}) is not visible to torch: check CUDA_VISIBLE_DEVICES, "
        "or pick a GPU that torch can see with --gpu."
    )


def _same_bus(nvml_bus_id: str, properties: Any) -> bool:
    # NVML: "00000000:01:00.0"; torch exposes domain, bus and device numbers separately.
    match = re.fullmatch(r"([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+)\.\d", nvml_bus_id)
    if not match:
        return False
    domain, bus, device = (int(part, 16) for part in match.groups())
    return (
        getattr(properties, "pci_domain_id", domain) == domain
        and properties.pci_bus_id == bus
        and getattr(properties, "pci_device_id", device) == device
    )


# --- packages ------------------------------------------------------------------------


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        match = re.match(r"\d+", piece)
        parts.append(int(match.group()) if match else 0)
    return tuple(parts)


MIN_DIFFUSERS = "0.37.0"
DIFFUSERS_INSTALL = 'pip install "klein-bench[diffusers]"'
DIFFUSERS_UPGRADE = 'pip install --upgrade "diffusers>=0.42.1" "transformers>=4.57"'


def require_diffusers() -> str:
    """The installed diffusers version; a KleinBenchError with the command when unusable."""
    version = package_version("diffusers")
    if version is None:
        raise KleinBenchError(f"diffusers is not installed: install it with `{DIFFUSERS_INSTALL}`.")
    if version_tuple(version) < version_tuple(MIN_DIFFUSERS):
        raise KleinBenchError(
            f"diffusers {version} has no Flux2KleinPipeline (it arrived in 0.37): upgrade "
            f"with `{DIFFUSERS_UPGRADE}`."
        )
    return version


def require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise KleinBenchError(
            "torch is not installed: install the CUDA build for your GPU (`klein-bench "
            "doctor` prints the command), or "
            "`pip install torch --index-url https://download.pytorch.org/whl/cpu` for the "
            "CPU-only tiny model."
        ) from exc
    return torch
