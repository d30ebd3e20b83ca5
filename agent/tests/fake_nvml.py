"""A simulated NVML (pynvml) for the tests: cards, MIG instances, processes, telemetry.

Only what klein-bench calls, answering as the real binding does, including its
`NVMLError` for what a card does not support.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

MIB = 1024 * 1024


@dataclass
class FakeCard:
    name: str = "NVIDIA GeForce RTX 4090"
    uuid: str = "GPU-6c2f3a7e-1b2c-4d5e-8f90-123456789abc"
    total_mb: float = 24564.0
    used_mb: float = 600.0
    capability: tuple[int, int] = (8, 9)
    power_limit_mw: int | None = 450_000
    default_power_limit_mw: int | None = 450_000
    max_sm_clock: int = 2520
    sm_clock: int = 2520
    memory_clock: int = 10501
    temperature: int = 60
    pcie: tuple[int, int] = (4, 16)
    pcie_max: tuple[int, int] = (4, 16)
    reasons: int = 0
    energy_mj: int = 1_000_000
    # pid -> MiB the driver charges the process (WDDM: nothing).
    processes: dict[int, float] = field(default_factory=dict)
    # MIG: None when off; otherwise the instances' (uuid, total_mb, used_mb).
    mig: list[tuple[str, float, float]] | None = None


class FakeNvml:
    """Stands in for the pynvml module: `gpu._nvml_module = FakeNvml([FakeCard()])`."""

    NVMLError = pynvml.NVMLError
    NVML_CLOCK_SM = pynvml.NVML_CLOCK_SM
    NVML_CLOCK_MEM = pynvml.NVML_CLOCK_MEM
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    NVML_DEVICE_MIG_ENABLE = 1

    def __init__(self, cards: list[FakeCard]):
        self.cards = cards
        for name in dir(pynvml):
            if name.startswith(("nvmlClocksEventReason", "nvmlClocksThrottleReason")):
                setattr(self, name, getattr(pynvml, name))

    @staticmethod
    def _unsupported() -> pynvml.NVMLError:
        return pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)

    def _card(self, handle: Any) -> FakeCard:
        return self.cards[handle[1]]

    def nvmlInit(self) -> None:
        return None

    def nvmlDeviceGetCount(self) -> int:
        return len(self.cards)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any:
        return ("card", index)

    def nvmlDeviceGetName(self, handle: Any) -> str:
        return self._card(handle).name

    def nvmlDeviceGetUUID(self, handle: Any) -> str:
        card = self._card(handle)
        return card.uuid if handle[0] == "card" else card.mig[handle[2]][0]

    def nvmlDeviceGetMemoryInfo(self, handle: Any) -> Any:
        card = self._card(handle)
        if handle[0] == "mig":
            _, total, used = card.mig[handle[2]]
        else:
            total, used = card.total_mb, card.used_mb
        return SimpleNamespace(total=int(total * MIB), used=int(used * MIB))

    def nvmlDeviceGetMigMode(self, handle: Any) -> tuple[int, int]:
        card = self._card(handle)
        return (1, 1) if card.mig is not None else (0, 0)

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: Any) -> int:
        return len(self._card(handle).mig or [])

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: Any, index: int) -> Any:
        if index >= len(self._card(handle).mig or []):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return ("mig", handle[1], index)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=int(mb * MIB) if mb is not None else None)
            for pid, mb in self._card(handle).processes.items()
        ]

    def nvmlDeviceGetCudaComputeCapability(self, handle: Any) -> tuple[int, int]:
        return self._card(handle).capability

    def nvmlDeviceGetDisplayActive(self, handle: Any) -> int:
        return 0

    def nvmlDeviceGetDisplayMode(self, handle: Any) -> int:
        return 0

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:
        value = self._card(handle).power_limit_mw
        if value is None:
            raise self._unsupported()
        return value

    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: Any) -> int:
        value = self._card(handle).default_power_limit_mw
        if value is None:
            raise self._unsupported()
        return value

    def nvmlDeviceGetMaxClockInfo(self, handle: Any, kind: int) -> int:
        return self._card(handle).max_sm_clock

    def nvmlDeviceGetClockInfo(self, handle: Any, kind: int) -> int:
        card = self._card(handle)
        return card.sm_clock if kind == pynvml.NVML_CLOCK_SM else card.memory_clock

    def nvmlDeviceGetTemperature(self, handle: Any, kind: int) -> int:
        return self._card(handle).temperature

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: Any) -> int:
        return self._card(handle).pcie[0]

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: Any) -> int:
        return self._card(handle).pcie[1]

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: Any) -> int:
        return self._card(handle).pcie_max[0]

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: Any) -> int:
        return self._card(handle).pcie_max[1]

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: Any) -> int:
        return self._card(handle).reasons

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:
        card = self._card(handle)
        card.energy_mj += 50_000
        return card.energy_mj

    def nvmlDeviceGetPciInfo(self, handle: Any) -> Any:
        return SimpleNamespace(busId=f"00000000:{handle[1] + 1:02x}:00.0")

    def nvmlSystemGetDriverVersion(self) -> str:
        return "580.95.05"

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return 13000
