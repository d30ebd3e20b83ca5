"""`klein-bench reproduce ID` against a stand-in platform: it reads the result's
configuration, runs it and sends it marked as a reproduction."""

from __future__ import annotations

import pytest
from platform_server import PlatformServer

from klein_bench.commands.reproduce import options_for
from klein_bench.contract import wire

TINY = {
    "id": 5,
    "model": "klein-tiny-random",
    "gpu": "cpu",
    "runtime": "diffusers",
    "precision": "bf16",
    "offload": "none",
    "preset": "bf16-resident",
    "width": 64,
    "height": 64,
    "steps": 4,
    "synthetic": False,
    "protocol_version": "klein4b-t2i-v1",
    "seconds_median": 0.5,
}


@pytest.fixture
def platform():
    with PlatformServer() as server:
        server.published[5] = TINY
        yield server


def test_reproduce_runs_the_results_configuration_and_sends_it_as_a_reproduction(cli, platform):
    result = cli("reproduce", "5", "--server", platform.url)

    assert result.exit_code == 0, result.output
    assert "Reproducing result 5: klein-tiny-random, bf16-resident on diffusers." in result.stderr
    assert "Original: 0.50 s per image on the cpu; this run:" in result.stdout
    [request] = platform.requests
    document = wire.parse_document(request.body)
    document.verify(document.public_key)
    payload = document.payload
    assert payload["reproduction_of"] == 5
    assert (payload["model"], payload["configuration"]["preset"]) == (
        "klein-tiny-random",
        "bf16-resident",
    )
    assert "Result 1 stored (accepted)." in result.stdout


def test_an_unknown_result_is_one_sentence_with_the_fix(cli, platform):
    result = cli("reproduce", "99", "--server", platform.url)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: {platform.url} has no result 99 (or could not be reached): check the number "
        "in the result's permalink (/r/ID) and --server."
    )
    assert platform.requests == []


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        (
            {"model": "sdxl"},
            "it ran the model 'sdxl', which this agent does not measure; update the agent "
            "(pip install -U klein-bench).",
        ),
        (
            {"protocol_version": "klein4b-t2i-v0"},
            "it ran protocol klein4b-t2i-v0, this agent runs klein4b-t2i-v1 for klein-tiny-random; "
            "update the agent.",
        ),
        (
            {"width": 512},
            "it ran 512x64 at 4 steps, and the agent runs only the protocol's 64x64 at 4.",
        ),
        (
            {"offload": "sequential", "preset": None},
            "it ran bf16 with sequential offload, which is no preset of the agent.",
        ),
    ],
)
def test_a_result_the_agent_cannot_run_again_says_why(changes, why):
    from klein_bench.errors import KleinBenchError

    with pytest.raises(KleinBenchError) as caught:
        options_for(5, TINY | changes)
    assert caught.value.message == f"Result 5 cannot be reproduced by this agent: {why}"


def test_a_comfyui_result_runs_the_same_file_on_comfyui():
    options = options_for(
        7,
        TINY
        | {
            "model": "flux-2-klein-4b",
            "width": 1024,
            "height": 1024,
            "runtime": "comfyui",
            "precision": "fp8-storage",
            "preset": "fp8-storage",
        },
    )
    assert (options["runtime"], options["comfyui_model"]) == ("comfyui", "fp8")


def test_comfyui_options_are_refused_for_a_diffusers_result(cli, platform):
    result = cli("reproduce", "5", "--server", platform.url, "--comfyui-url", "http://127.0.0.1:1")
    assert result.exit_code == 1
    assert "Result 5 ran on diffusers: leave out --comfyui-url." in result.stderr
