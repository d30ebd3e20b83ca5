"""Finding a model's weights on disk, and downloading them only when asked.

Weights are a diffusers folder (model_index.json plus the subfolders the model's registry
entry lists), either one the user names with --weights or a snapshot of the entry's
repository in the Hugging Face cache (`models--<owner>--<name>/snapshots/<revision>`).
A folder that holds another model (the distilled model for the base one, the 4B for the
9B) is refused with the fix, before anything loads.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from klein_bench.contract.registry import HuggingFaceWeights, ModelSpec
from klein_bench.errors import KleinBenchError

COMPONENTS_WITH_WEIGHTS = ("transformer", "text_encoder", "vae")
# Room for the download's temporary files beyond the weights.
DOWNLOAD_MARGIN_GIB = 2.0
_WEIGHT_SUFFIXES = (".safetensors", ".bin")


@dataclass
class WeightsLocation:
    path: Path
    source: str  # "hf-cache" or "folder"
    revision: str | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing


def hf_cache_dir() -> Path:
    """Where huggingface_hub keeps downloads (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "huggingface" / "hub"


def download_needs_gib(hf: HuggingFaceWeights) -> float:
    return hf.download_gib + DOWNLOAD_MARGIN_GIB


def _hf(spec: ModelSpec) -> HuggingFaceWeights:
    assert spec.hf is not None, f"{spec.slug} has no weights to find"
    return spec.hf


def _repo_dir(cache: Path, repo: str) -> Path:
    return cache / ("models--" + repo.replace("/", "--"))


def missing_parts(folder: Path, components: tuple[str, ...]) -> list[str]:
    """What a diffusers folder lacks to load (empty when complete)."""
    missing = []
    if not (folder / "model_index.json").is_file():
        missing.append("model_index.json")
    for component in components:
        directory = folder / component
        if not directory.is_dir():
            missing.append(f"{component}/")
            continue
        if component not in COMPONENTS_WITH_WEIGHTS:
            continue
        files = [p for p in directory.iterdir() if p.name.endswith(_WEIGHT_SUFFIXES)]
        # Sharded weights: every shard the index names must be there (an interrupted
        # download leaves the index and some shards).
        for index in directory.glob("*.index.json"):
            try:
                shards = set(json.loads(index.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError):
                missing.append(f"{component}/{index.name} (unreadable)")
                continue
            missing.extend(
                f"{component}/{shard}"
                for shard in sorted(shards)
                if not (directory / shard).exists()
            )
        if not any(p.exists() for p in files):
            missing.append(f"{component}/ weights")
    return missing


def _snapshot(repo_dir: Path, components: tuple[str, ...]) -> WeightsLocation | None:
    snapshots = repo_dir / "snapshots"
    if not snapshots.is_dir():
        return None
    revision = None
    ref = repo_dir / "refs" / "main"
    if ref.is_file():
        revision = ref.read_text().strip()
    candidates = [p for p in snapshots.iterdir() if p.is_dir()]
    if not candidates:
        return None
    chosen = snapshots / revision if revision and (snapshots / revision).is_dir() else None
    if chosen is None:
        # No ref (a partial copy of a cache): the most recently written snapshot.
        chosen = max(candidates, key=lambda p: p.stat().st_mtime)
    return WeightsLocation(
        path=chosen,
        source="hf-cache",
        revision=chosen.name,
        missing=missing_parts(chosen, components),
    )


def find_in_cache(spec: ModelSpec, cache: Path | None = None) -> WeightsLocation | None:
    hf = _hf(spec)
    return _snapshot(_repo_dir(cache or hf_cache_dir(), hf.repo), hf.subfolders)


def _read_json(path: Path) -> dict | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def other_model(spec: ModelSpec, folder: Path) -> str | None:
    """Why the diffusers folder holds another model than `spec` (None when it is the
    model, or when its configs cannot tell): its transformer's shape, or distilled where
    the model runs guidance (and the other way round)."""
    index = _read_json(folder / "model_index.json") or {}
    config = _read_json(folder / "transformer" / "config.json") or {}
    t = spec.architecture.transformer
    shape = {
        "num_layers": t.double_blocks,
        "num_single_layers": t.single_blocks,
        "num_attention_heads": t.heads,
        "joint_attention_dim": t.joint_attention_dim,
    }
    differs = [
        f"{k} {config[k]} (not {v})" for k, v in shape.items() if k in config and config[k] != v
    ]
    if differs:
        return f"its transformer has {', '.join(differs)}"
    distilled = index.get("is_distilled")
    if isinstance(distilled, bool) and distilled == spec.protocol.cfg:
        return "it is the step-distilled model" if distilled else "it is an undistilled base model"
    return None


def inspect(spec: ModelSpec, path: Path) -> WeightsLocation:
    """What --weights PATH points at: a diffusers folder, a Hugging Face cache, or the
    repository's folder inside one; KleinBenchError when it holds another model."""
    hf = _hf(spec)
    location = _inspect(spec, hf, path.expanduser())
    problem = other_model(spec, location.path)
    if problem:
        raise KleinBenchError(
            f"--weights {location.path} holds another model than {spec.name} ({problem}): "
            f"pass the folder of {hf.repo}, or the --model these weights are."
        )
    return location


def _inspect(spec: ModelSpec, hf: HuggingFaceWeights, path: Path) -> WeightsLocation:
    if not path.exists():
        raise KleinBenchError(
            f"--weights {path} does not exist: pass the folder that holds model_index.json, "
            "or a Hugging Face cache folder."
        )
    if (path / "model_index.json").exists():
        location = WeightsLocation(
            path=path, source="folder", missing=missing_parts(path, hf.subfolders)
        )
        if path.parent.name == "snapshots":
            location.source, location.revision = "hf-cache", path.name
        return location
    for repo_dir in (path, _repo_dir(path, hf.repo), _repo_dir(path / "hub", hf.repo)):
        snapshot = _snapshot(repo_dir, hf.subfolders)
        if snapshot is not None:
            return snapshot
    raise KleinBenchError(
        f"--weights {path} holds no {spec.name} weights: pass the folder with "
        "model_index.json, or a Hugging Face cache that contains "
        f"models--{hf.repo.replace('/', '--')}."
    )


def locate(spec: ModelSpec, weights: Path | None) -> WeightsLocation | None:
    return inspect(spec, weights) if weights is not None else find_in_cache(spec)


def _incomplete(spec: ModelSpec, location: WeightsLocation) -> KleinBenchError:
    shown = ", ".join(location.missing[:4]) + (", ..." if len(location.missing) > 4 else "")
    return KleinBenchError(
        f"The weights in {location.path} are incomplete (missing {shown}): finish the "
        f"download with `hf download {_hf(spec).repo}` or run again with --download."
    )


def require(spec: ModelSpec, weights: Path | None, *, download: bool) -> WeightsLocation:
    """Complete weights to load, downloading them only when `download` is set."""
    hf = _hf(spec)
    location = locate(spec, weights)
    if location is not None and location.complete:
        return location
    if not download:
        if location is not None:
            raise _incomplete(spec, location)
        raise KleinBenchError(
            f"{spec.name} weights were not found in the Hugging Face cache "
            f"({hf_cache_dir()}): pass --weights PATH to a local copy, add --download to "
            f"fetch them (about {hf.download_gib:.0f} GiB), or try --synthetic to measure "
            "without them."
        )
    if weights is not None:
        raise KleinBenchError(
            "--download fetches into the Hugging Face cache: leave out --weights, or "
            f"download into your folder with `hf download {hf.repo} --local-dir {weights}`."
        )
    return download_weights(spec)


def download_weights(spec: ModelSpec) -> WeightsLocation:
    """Download the repository into the Hugging Face cache, with huggingface_hub's
    progress bars."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise KleinBenchError(
            "Downloading needs huggingface_hub: install it with "
            '`pip install "klein-bench[diffusers]"`.'
        ) from exc
    hf = _hf(spec)
    cache = hf_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    free_gib = shutil.disk_usage(cache).free / 1024**3
    needs = download_needs_gib(hf)
    if free_gib < needs:
        raise KleinBenchError(
            f"The download needs about {needs:.0f} GiB free in {cache} but only "
            f"{free_gib:.1f} GiB are: free some space, or point HF_HUB_CACHE at a bigger disk."
        )
    gated = (
        " and accept the model's licence on its Hugging Face page, then `hf auth login`"
        if hf.gated
        else " (and `hf auth login` if the repository asks for it)"
    )
    try:
        path = snapshot_download(hf.repo, cache_dir=cache)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        raise KleinBenchError(
            f"Downloading {hf.repo} failed ({type(exc).__name__}: {_first_line(exc)}): check "
            f"your connection{gated}, then run again; a partial download resumes."
        ) from exc
    location = WeightsLocation(
        path=Path(path), source="hf-cache", revision=Path(path).name, missing=[]
    )
    location.missing = missing_parts(location.path, hf.subfolders)
    if location.missing:
        raise _incomplete(spec, location)
    return location


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no details"
