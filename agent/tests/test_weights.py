"""Finding a model's weights locally; never downloading unless asked; never loading another
model's weights."""

from __future__ import annotations

import pytest

from klein_bench.backends.diffusers import weights
from klein_bench.contract.models import KLEIN_4B, KLEIN_9B, KLEIN_BASE_4B
from klein_bench.contract.registry import DIFFUSERS_SUBFOLDERS
from klein_bench.errors import KleinBenchError

REVISION = "5e67da950fce4a097bc150c22958a05716994cea"


def _diffusers_folder(root, *, skip: str | None = None, index: str | None = None):
    for component in DIFFUSERS_SUBFOLDERS:
        if component != skip:
            (root / component).mkdir(parents=True)
    for component in weights.COMPONENTS_WITH_WEIGHTS:
        if component != skip:
            (root / component / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    (root / "model_index.json").write_text(index or '{"_class_name": "Flux2KleinPipeline"}')
    return root


def _cache(tmp_path, **kwargs):
    repo = tmp_path / "hub" / "models--black-forest-labs--FLUX.2-klein-4B"
    _diffusers_folder(repo / "snapshots" / REVISION, **kwargs)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION + "\n")
    return tmp_path / "hub"


def test_weights_are_found_in_the_hf_cache_at_the_main_revision(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(_cache(tmp_path)))

    location = weights.find_in_cache(KLEIN_4B)

    assert location.source == "hf-cache"
    assert location.revision == REVISION
    assert location.complete


def test_hf_home_places_the_cache_under_hub(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))

    assert weights.hf_cache_dir() == tmp_path / "hub"


def test_weights_option_accepts_a_diffusers_folder(tmp_path):
    folder = _diffusers_folder(tmp_path / "FLUX.2-klein-4B")

    location = weights.inspect(KLEIN_4B, folder)

    assert (location.path, location.source, location.revision) == (folder, "folder", None)
    assert location.complete


def test_weights_option_accepts_a_cache_folder(tmp_path):
    location = weights.inspect(KLEIN_4B, _cache(tmp_path))

    assert location.revision == REVISION


def test_an_interrupted_download_is_incomplete(tmp_path):
    folder = _diffusers_folder(tmp_path / "klein", skip="vae")
    index = folder / "transformer" / "diffusion_pytorch_model.safetensors.index.json"
    index.write_text(
        '{"weight_map": {"a": "part-00001.safetensors", "b": "part-00002.safetensors"}}'
    )
    (folder / "transformer" / "part-00001.safetensors").write_bytes(b"")

    location = weights.inspect(KLEIN_4B, folder)

    assert location.missing == ["transformer/part-00002.safetensors", "vae/"]


def test_missing_weights_are_refused_with_the_ways_forward(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))

    with pytest.raises(KleinBenchError) as error:
        weights.require(KLEIN_4B, None, download=False)

    message = error.value.message
    assert message.startswith("FLUX.2 [klein] 4B weights were not found in the Hugging Face cache")
    assert "--weights PATH" in message
    assert "--download" in message
    assert "--synthetic" in message


def test_incomplete_weights_are_refused_without_download(tmp_path):
    folder = _diffusers_folder(tmp_path / "klein", skip="text_encoder")

    with pytest.raises(KleinBenchError, match=r"are incomplete \(missing text_encoder/\)"):
        weights.require(KLEIN_4B, folder, download=False)


def test_a_weights_path_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(KleinBenchError, match="does not exist"):
        weights.require(KLEIN_4B, tmp_path / "nowhere", download=False)


def test_a_folder_without_klein_is_refused(tmp_path):
    (tmp_path / "other").mkdir()

    with pytest.raises(KleinBenchError, match=r"holds no FLUX\.2 \[klein\] 4B weights"):
        weights.inspect(KLEIN_4B, tmp_path / "other")


def test_download_into_a_chosen_folder_is_refused_with_the_hf_command(tmp_path):
    partial = _diffusers_folder(tmp_path / "partial", skip="vae")

    with pytest.raises(KleinBenchError) as error:
        weights.require(KLEIN_4B, partial, download=True)

    assert error.value.message.startswith("--download fetches into the Hugging Face cache")
    assert f"hf download black-forest-labs/FLUX.2-klein-4B --local-dir {partial}" in (
        error.value.message
    )


def test_a_failed_download_says_what_happened_and_how_to_resume(tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(weights, "DOWNLOAD_MARGIN_GIB", -1e9)

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)

    with pytest.raises(KleinBenchError) as error:
        weights.require(KLEIN_4B, None, download=True)

    assert error.value.message.startswith(
        "Downloading black-forest-labs/FLUX.2-klein-4B failed (OSError: Network is unreachable)"
    )
    assert "a partial download resumes" in error.value.message


def test_a_download_without_room_is_refused_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(weights, "DOWNLOAD_MARGIN_GIB", 1e9)

    with pytest.raises(KleinBenchError, match="The download needs about"):
        weights.require(KLEIN_4B, None, download=True)


def test_run_never_downloads_without_the_flag(cli, tmp_path, monkeypatch):
    """On a GPU machine the missing weights stop the run; on a CPU the GPU check does."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))

    result = cli("run", "--model", "flux-2-klein-4b")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert ("weights were not found" in result.stderr) or ("needs an NVIDIA GPU" in result.stderr)


def test_the_9b_is_looked_for_in_its_own_repository(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(_cache(tmp_path)))

    assert weights.find_in_cache(KLEIN_4B) is not None
    assert weights.find_in_cache(KLEIN_9B) is None
    with pytest.raises(KleinBenchError) as error:
        weights.require(KLEIN_9B, None, download=False)
    assert error.value.message.startswith("FLUX.2 [klein] 9B weights were not found")
    assert "about 33 GiB" in error.value.message


def test_the_4b_weights_are_refused_for_the_9b(tmp_path):
    folder = _diffusers_folder(tmp_path / "FLUX.2-klein-4B")
    (folder / "transformer" / "config.json").write_text(
        '{"num_layers": 5, "num_single_layers": 20, "num_attention_heads": 24}'
    )

    with pytest.raises(KleinBenchError) as error:
        weights.inspect(KLEIN_9B, folder)

    assert error.value.message == (
        f"--weights {folder} holds another model than FLUX.2 [klein] 9B (its transformer has "
        "num_layers 5 (not 8), num_single_layers 20 (not 24), num_attention_heads 24 (not 32)): "
        "pass the folder of black-forest-labs/FLUX.2-klein-9B, or the --model these weights are."
    )


def test_the_distilled_weights_are_refused_for_the_base_model(tmp_path):
    folder = _diffusers_folder(tmp_path / "klein", index='{"is_distilled": true}')

    with pytest.raises(KleinBenchError, match=r"\(it is the step-distilled model\)"):
        weights.inspect(KLEIN_BASE_4B, folder)
    assert weights.inspect(KLEIN_4B, folder).complete
