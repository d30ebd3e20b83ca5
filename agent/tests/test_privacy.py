"""Nothing in a result identifies the person or the machine: no hostname, user name,
paths or serial numbers; the GPU UUID only as a salted hash."""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from pathlib import Path

from klein_bench import gpu, result


def _personal_strings(extra: list[str]) -> list[str]:
    values = [os.path.expanduser("~"), str(Path.cwd()), *extra]
    for getter in (getpass.getuser, socket.gethostname):
        with contextlib.suppress(Exception):
            values.append(getter())
    # Short or generic names ("root", "/") would match innocent text.
    return [v for v in values if len(v) >= 4 and v not in ("root", "localhost")]


def test_the_payload_names_no_host_user_or_path(tiny_payload, home, tmp_path):
    text = json.dumps(tiny_payload)

    for personal in _personal_strings([str(home.root), str(tmp_path)]):
        assert personal not in text, personal
    assert "/home/" not in text
    assert "/Users/" not in text


def test_the_environment_section_has_only_versions_and_the_cpu_model(tiny_payload):
    assert set(tiny_payload["environment"]) == {
        "agent",
        "os",
        "python",
        "torch",
        "cuda",
        "driver",
        "cuda_driver",
        "diffusers",
        "transformers",
        "runtime_version",
        "runtime_flags",
        "cpu",
        "attention",
    }


def test_the_os_is_named_with_its_major_version_only():
    name = result.os_name()

    assert name is not None
    if name.startswith("Linux "):
        assert name.count(".") <= 1


def test_the_gpu_uuid_is_sent_only_as_a_salted_hash():
    uuid = "GPU-6c2f3a7e-1b2c-4d5e-8f90-123456789abc"
    info = gpu.GpuInfo(
        index=0,
        name="NVIDIA GeForce RTX 4090",
        uuid=uuid,
        memory_total_mb=24564.0,
        memory_used_mb=400.0,
        compute_capability="8.9",
        drives_display=False,
        power_limit_w=450.0,
        pcie_generation=4,
        pcie_width=16,
        pcie_max_generation=4,
        pcie_max_width=16,
    )

    section = result.gpu_section(info, salt=b"a" * 32)
    other_salt = result.gpu_section(info, salt=b"b" * 32)

    assert uuid not in json.dumps(section)
    assert "6c2f3a7e" not in json.dumps(section)
    assert len(section["uuid_hash"]) == 16
    assert section["uuid_hash"] != other_salt["uuid_hash"]
    assert section["uuid_hash"] == result.gpu_section(info, salt=b"a" * 32)["uuid_hash"]


def test_the_salt_is_made_once_and_kept_private(home):
    first = home.gpu_salt()

    assert home.gpu_salt() == first
    assert len(first) == 32


def test_error_messages_lose_paths_user_and_host_names():
    home = os.path.expanduser("~")
    user = getpass.getuser()
    host = socket.gethostname()
    message = (
        f"RuntimeError: Error(s) in loading state_dict from {home}/models/klein/vae.safetensors "
        f"and /srv/{user}/cache/x.bin on {host}: Process 48213 has 23.5 GiB memory in use. "
        r"Also C:\Users\someone\models\file.bin. See https://pytorch.org/docs/stable/notes/cuda.html"
    )

    scrubbed = result.scrub(message)

    assert home not in scrubbed
    assert "/srv/" not in scrubbed
    assert "C:\\Users" not in scrubbed
    if len(host) >= 4:
        assert host not in scrubbed
    assert "48213" not in scrubbed
    assert "https://pytorch.org/docs/stable/notes/cuda.html" in scrubbed
    assert "23.5 GiB memory in use" in scrubbed


def test_outcome_messages_are_scrubbed_and_bounded():
    outcome = result.outcome_section("error", "load", "x" * 5000 + " /home/someone/file")

    assert len(outcome["message"]) == result.MESSAGE_LIMIT
    assert (
        "/home/someone"
        not in result.outcome_section("error", "load", "in /home/someone/f")["message"]
    )
