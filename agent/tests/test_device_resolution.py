"""Item 4: the benchmark reads the memory of the device torch really uses (a whole card
or a MIG instance, matched by UUID), or refuses in one sentence; never NVML's GPU 0 by
default."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fake_nvml import FakeCard, FakeNvml

from klein_bench import gpu
from klein_bench.errors import KleinBenchError

torch = pytest.importorskip("torch")

UUID_A = "GPU-11111111-1111-1111-1111-111111111111"
UUID_B = "GPU-22222222-2222-2222-2222-222222222222"
MIG_1 = "MIG-33333333-3333-3333-3333-333333333333"
MIG_2 = "MIG-44444444-4444-4444-4444-444444444444"


@pytest.fixture
def machine(monkeypatch):
    def install(cards, torch_uuid):
        monkeypatch.setattr(gpu, "_nvml_module", FakeNvml(cards))
        monkeypatch.setattr(gpu, "_torch_uuid", lambda index: torch_uuid)
        monkeypatch.setattr(
            torch.cuda, "get_device_properties", lambda index: SimpleNamespace(name="H100")
        )

    return install


def test_torchs_device_is_found_by_uuid_not_by_position(machine):
    machine([FakeCard(uuid=UUID_A), FakeCard(uuid=UUID_B)], UUID_B.removeprefix("GPU-"))

    device = gpu.resolve_device(0)

    assert (device.index, device.mig) == (1, False)


def test_a_mig_instance_is_resolved_with_its_own_memory(machine):
    card = FakeCard(
        name="NVIDIA H100 80GB HBM3",
        uuid=UUID_A,
        total_mb=81559,
        mig=[(MIG_1, 19968, 10), (MIG_2, 39936, 20)],
    )
    machine([card], MIG_2.removeprefix("MIG-"))

    device = gpu.resolve_device(0)
    info = gpu.gpu_info(device.index, device)

    assert (device.index, device.mig_index, device.mig) == (0, 1, True)
    assert info.memory_total_mb == 39936
    assert info.mig is True
    assert gpu.reopen(0, 1) == device


def test_a_mig_card_without_the_matching_instance_is_refused(machine):
    machine([FakeCard(uuid=UUID_A, mig=[(MIG_1, 19968, 10)])], "55555555")

    with pytest.raises(KleinBenchError) as error:
        gpu.resolve_device(0, 0)

    assert error.value.message == (
        "GPU 0 is split into MIG instances and NVML lists none that matches the one torch "
        "uses (H100): set CUDA_VISIBLE_DEVICES to the MIG instance's UUID from `nvidia-smi "
        "-L`, and run again."
    )


def test_an_unmatched_uuid_is_refused_instead_of_falling_back_to_gpu_0(machine):
    machine([FakeCard(uuid=UUID_A)], "99999999-9999-9999-9999-999999999999")

    with pytest.raises(KleinBenchError) as error:
        gpu.resolve_device(0)

    assert error.value.message.startswith(
        "torch's CUDA device 0 (H100) matches no GPU that NVML lists"
    )
    assert "--gpu INDEX" in error.value.message
