"""Before uploading, the agent compares its image with the server's consensus and warns
in one sentence when it strays (a wrong VAE or text encoder file)."""

from __future__ import annotations

import json

import pytest
from platform_server import PlatformServer

from klein_bench.image_check import stray_warning


def payload(phash: str, runtime: str = "diffusers") -> dict:
    return {
        "protocol": {"id": "klein4b-t2i-v1"},
        "configuration": {"runtime": runtime, "precision": "bf16"},
        "synthetic": False,
        "evidence": {"phash": phash},
    }


def answer(phash: str) -> dict:
    image = {
        "protocol": "klein4b-t2i-v1",
        "runtime": "diffusers",
        "precision": "bf16",
        "phash": phash,
        "n_agreeing": 12,
        "n_contributors": 13,
    }
    return {"model": "flux-2-klein-4b", "threshold_bits": 10, "images": [image]}


def test_an_image_far_from_the_consensus_gets_one_sentence_with_the_likely_cause():
    warning = stray_warning(payload("ffffffffffffffff"), answer("0000000000000000"))
    assert warning == (
        "Your image differs from what 12 other contributors got in bf16 on diffusers (64 of 64 "
        "hash bits): a wrong VAE or text encoder file? The result will be flagged and left out "
        "of the medians until the files are fixed."
    )


@pytest.mark.parametrize(
    ("mine", "theirs"),
    [
        ("00000000000003ff", answer("0000000000000000")),  # 10 bits: near enough
        ("ffffffffffffffff", None),  # the server did not answer
        ("ffffffffffffffff", {"images": []}),  # no consensus yet
        ("ffffffffffffffff", {"images": [{"phash": "nonsense"}]}),
    ],
)
def test_no_warning_when_the_image_agrees_or_there_is_nothing_to_compare(mine, theirs):
    assert stray_warning(payload(mine), theirs) is None


def test_another_runtime_is_not_compared_with_this_ones_consensus():
    assert stray_warning(payload("ffffffffffffffff", "comfyui"), answer("0000000000000000")) is None


def test_submit_warns_before_it_sends_and_still_sends(cli, tmp_path, tiny_payload):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(tiny_payload))
    mine = tiny_payload["evidence"]["phash"]
    theirs = f"{int(mine, 16) ^ (2**64 - 1):016x}"
    with PlatformServer() as platform:
        c = tiny_payload["configuration"]
        platform.consensus["klein-tiny-random"] = {
            "threshold_bits": 10,
            "images": [
                {
                    "protocol": tiny_payload["protocol"]["id"],
                    "runtime": c["runtime"],
                    "precision": c["precision"],
                    "phash": theirs,
                    "n_agreeing": 3,
                }
            ],
        }
        result = cli("submit", str(path), "--server", platform.url)
        assert result.exit_code == 0, result.output
        assert [r.path for r in platform.reads] == ["/api/v1/consensus/klein-tiny-random"]
        assert len(platform.results) == 1
    assert "Warning: Your image differs from what 3 other contributors got" in result.stderr
