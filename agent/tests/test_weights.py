"""Finding Klein 4B weights locally; never downloading unless asked."""

from __future__ import annotations

import pytest

from klein_bench.backends.diffusers import weights
from klein_bench.errors import KleinBenchError

REVISION = "5e67da950fce4a097bc150c22958a05716994cea"


def _diffusers_folder(root, *, skip: str | None = None):
    for component in weights.COMPONENTS:
        if component != skip:
            (root / component).mkdir(parents=True)
    for component in weights.COMPONENTS_WITH_WEIGHTS:
        if component != skip:
            (root / component / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    (root / "model_index.json").write_text('{"_class_name": "Flux2KleinPipeline"}')
    return root


def _cache(tmp_path, **kwargs):
    repo = tmp_path / "hub" / "models--black-forest-labs--FLUX.2-klein-4B"
    _diffusers_folder(repo / "snapshots" / REVISION, **kwargs)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION + "\n")
    return tmp_path / "hub"


def test_weights_are_found_in_the_hf_cache_at_the_main_revision(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(_cache(tmp_path)))

    location = weights.find_in_cache()

    assert location.source == "hf-cache"
    assert location.revision == REVISION
    assert location.complete


def test_hf_home_places_the_cache_under_hub(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))

    assert weights.hf_cache_dir() == tmp_path / "hub"


def test_weights_option_accepts_a_diffusers_folder(tmp_path):
    folder = _diffusers_folder(tmp_path / "FLUX.2-klein-4B")

    location = weights.inspect(folder)

    assert (location.path, location.source, location.revision) == (folder, "folder", None)
    assert location.complete


def test_weights_option_accepts_a_cache_folder(tmp_path):
    location = weights.inspect(_cache(tmp_path))

    assert location.revision == REVISION


def test_an_interrupted_download_is_incomplete(tmp_path):
    folder = _diffusers_folder(tmp_path / "klein", skip="vae")
    index = folder / "transformer" / "diffusion_pytorch_model.safetensors.index.json"
    index.write_text(
        '{"weight_map": {"a": "part-00001.safetensors", "b": "part-00002.safetensors"}}'
    )
    (folder / "transformer" / "part-00001.safetensors").write_bytes(b"")

    location = weights.inspect(folder)

    assert location.missing == ["transformer/part-00002.safetensors", "vae/"]


def test_missing_weights_are_refused_with_the_ways_forward(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))

    with pytest.raises(KleinBenchError) as error:
        weights.require(None, download=False)

    message = error.value.message
    assert message.startswith("FLUX.2 [klein] 4B weights were not found in the Hugging Face cache")
    assert "--weights PATH" in message
    assert "--download" in message
    assert "--synthetic" in message


def test_incomplete_weights_are_refused_without_download(tmp_path):
    folder = _diffusers_folder(tmp_path / "klein", skip="text_encoder")

    with pytest.raises(KleinBenchError, match=r"are incomplete \(missing text_encoder/\)"):
        weights.require(folder, download=False)


def test_a_weights_path_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(KleinBenchError, match="does not exist"):
        weights.require(tmp_path / "nowhere", download=False)


def test_a_folder_without_klein_is_refused(tmp_path):
    (tmp_path / "other").mkdir()

    with pytest.raises(KleinBenchError, match=r"holds no FLUX\.2 \[klein\] 4B weights"):
        weights.inspect(tmp_path / "other")


def test_download_into_a_chosen_folder_is_refused_with_the_hf_command(tmp_path):
    partial = _diffusers_folder(tmp_path / "partial", skip="vae")

    with pytest.raises(KleinBenchError) as error:
        weights.require(partial, download=True)

    assert error.value.message.startswith("--download fetches into the Hugging Face cache")
    assert f"hf download black-forest-labs/FLUX.2-klein-4B --local-dir {partial}" in (
        error.value.message
    )


def test_a_failed_download_says_what_happened_and_how_to_resume(tmp_path, monkeypatch):
    huggingface_hub = pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(weights, "DOWNLOAD_NEEDS_GB", 0.0)

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)

    with pytest.raises(KleinBenchError) as error:
        weights.require(None, download=True)

    assert error.value.message.startswith(
        "Downloading black-forest-labs/FLUX.2-klein-4B failed (OSError: Network is unreachable)"
    )
    assert "a partial download resumes" in error.value.message


def test_a_download_without_room_is_refused_before_it_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(weights, "DOWNLOAD_NEEDS_GB", 1e9)

    with pytest.raises(KleinBenchError, match="The download needs about"):
        weights.require(None, download=True)


def test_run_never_downloads_without_the_flag(cli, tmp_path, monkeypatch):
    """On a GPU machine the missing weights stop the run; on a CPU the GPU check does."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))

    result = cli("run", "--model", "flux-2-klein-4b")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert ("weights were not found" in result.stderr) or ("needs an NVIDIA GPU" in result.stderr)
