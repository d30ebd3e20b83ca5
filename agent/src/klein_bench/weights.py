"""Finding FLUX.2 [klein] 4B weights on disk, and downloading them only when asked.

Weights are a diffusers folder (model_index.json plus one folder per component), either
one the user names with --weights or a snapshot in the Hugging Face cache
(`models--black-forest-labs--FLUX.2-klein-4B/snapshots/<revision>`).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from klein_bench.errors import KleinBenchError

HF_REPO = "black-forest-labs/FLUX.2-klein-4B"
COMPONENTS_WITH_WEIGHTS = ("transformer", "text_encoder", "vae")
COMPONENTS = (*COMPONENTS_WITH_WEIGHTS, "tokenizer", "scheduler")
# The bf16 weights are about 15 GiB (16 GB); keep room for the download's temporary files.
DOWNLOAD_NEEDS_GB = 17.0
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


def _repo_dir(cache: Path, repo: str = HF_REPO) -> Path:
    return cache / ("models--" + repo.replace("/", "--"))


def missing_parts(folder: Path) -> list[str]:
    """What a diffusers folder lacks to load (empty when complete)."""
    missing = []
    if not (folder / "model_index.json").is_file():
        missing.append("model_index.json")
    for component in COMPONENTS:
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


def _snapshot(repo_dir: Path) -> WeightsLocation | None:
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
        path=chosen, source="hf-cache", revision=chosen.name, missing=missing_parts(chosen)
    )


def find_in_cache(cache: Path | None = None) -> WeightsLocation | None:
    return _snapshot(_repo_dir(cache or hf_cache_dir()))


def inspect(path: Path) -> WeightsLocation:
    """What --weights PATH points at: a diffusers folder, a Hugging Face cache, or the
    repository's folder inside one."""
    path = path.expanduser()
    if not path.exists():
        raise KleinBenchError(
            f"--weights {path} does not exist: pass the folder that holds model_index.json, "
            "or a Hugging Face cache folder."
        )
    if (path / "model_index.json").exists():
        location = WeightsLocation(path=path, source="folder", missing=missing_parts(path))
        if path.parent.name == "snapshots":
            location.source, location.revision = "hf-cache", path.name
        return location
    for repo_dir in (path, _repo_dir(path), _repo_dir(path / "hub")):
        snapshot = _snapshot(repo_dir)
        if snapshot is not None:
            return snapshot
    raise KleinBenchError(
        f"--weights {path} holds no FLUX.2 [klein] 4B weights: pass the folder with "
        "model_index.json, or a Hugging Face cache that contains "
        f"models--{HF_REPO.replace('/', '--')}."
    )


def locate(weights: Path | None) -> WeightsLocation | None:
    return inspect(weights) if weights is not None else find_in_cache()


def _incomplete(location: WeightsLocation) -> KleinBenchError:
    shown = ", ".join(location.missing[:4]) + (", ..." if len(location.missing) > 4 else "")
    return KleinBenchError(
        f"The weights in {location.path} are incomplete (missing {shown}): finish the "
        f"download with `hf download {HF_REPO}` or run again with --download."
    )


def require(weights: Path | None, *, download: bool) -> WeightsLocation:
    """Complete weights to load, downloading them only when `download` is set."""
    location = locate(weights)
    if location is not None and location.complete:
        return location
    if not download:
        if location is not None:
            raise _incomplete(location)
        raise KleinBenchError(
            f"FLUX.2 [klein] 4B weights were not found in the Hugging Face cache "
            f"({hf_cache_dir()}): pass --weights PATH to a local copy, add --download to "
            "fetch them (about 15 GiB), or try --synthetic to measure without them."
        )
    if weights is not None:
        raise KleinBenchError(
            "--download fetches into the Hugging Face cache: leave out --weights, or "
            f"download into your folder with `hf download {HF_REPO} --local-dir {weights}`."
        )
    return download_weights()


def download_weights() -> WeightsLocation:
    """Download the repository into the Hugging Face cache, with huggingface_hub's
    progress bars."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise KleinBenchError(
            "Downloading needs huggingface_hub: install it with "
            '`pip install "klein-bench[diffusers]"`.'
        ) from exc
    cache = hf_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(cache).free / 1024**3
    if free_gb < DOWNLOAD_NEEDS_GB:
        raise KleinBenchError(
            f"The download needs about {DOWNLOAD_NEEDS_GB:.0f} GiB free in {cache} but only "
            f"{free_gb:.1f} GiB are: free some space, or point HF_HUB_CACHE at a bigger disk."
        )
    try:
        path = snapshot_download(HF_REPO, cache_dir=cache)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        raise KleinBenchError(
            f"Downloading {HF_REPO} failed ({type(exc).__name__}: {_first_line(exc)}): check "
            "your connection (and `hf auth login` if the repository asks for it), then run "
            "again; a partial download resumes."
        ) from exc
    location = WeightsLocation(
        path=Path(path), source="hf-cache", revision=Path(path).name, missing=[]
    )
    location.missing = missing_parts(location.path)
    if location.missing:
        raise _incomplete(location)
    return location


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no details"
