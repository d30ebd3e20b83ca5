"""The agent as this site serves it, and the commands the pages show to install and run it.

The site builds the agent's wheel from its own checkout when the site is built
(`manage.py buildagent`: in the Dockerfile beside collectstatic, and in `make run`), so
the agent offered is the one that matches this server, and serves it at
/agent/<wheel file>. The install command points pip at that address: nothing comes from a
package name on a public index that anyone could register.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.urls import reverse
from klein_bench.contract.catalog import PRESETS
from klein_bench.contract.models import MODELS

from benchmarks.models import ImageModel, Runtime

# torch first, for the card: the agent's dependencies must not pull a CPU-only build.
TORCH_CUDA = "pip install torch --index-url https://download.pytorch.org/whl/cu128"
TORCH_CPU = "pip install torch --index-url https://download.pytorch.org/whl/cpu"


def wheel_dir() -> Path:
    return Path(settings.AGENT_WHEEL_DIR)


def wheel() -> Path | None:
    """The agent wheel this site serves, if it has been built."""
    found = sorted(wheel_dir().glob("klein_bench-*.whl")) if wheel_dir().is_dir() else []
    return found[-1] if found else None


def build(agent_dir: Path | None = None) -> Path:
    """Build the agent's wheel into the wheel directory, replacing any older one."""
    target = wheel_dir()
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("klein_bench-*.whl"):
        old.unlink()
    source = agent_dir or Path(settings.BASE_DIR) / "agent"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    built = wheel()
    if completed.returncode != 0 or built is None:
        raise RuntimeError(
            f"pip could not build the agent wheel from {source}: "
            f"{(completed.stderr or completed.stdout).strip().splitlines()[-1:] or 'no output'}"
        )
    return built


def server_option(site: str) -> str:
    """' --server URL' when this site (benchmarks.site.site_url) is not the agent's
    default platform."""
    site = site.rstrip("/")
    return "" if site == settings.AGENT_DEFAULT_SERVER else f" --server {site}"


def install_agent(site: str, extra: str = "diffusers") -> str:
    """pip install of the agent from this site; from a clone when no wheel is built."""
    built = wheel()
    if built is None:
        return f'pip install "./agent[{extra}]"'
    url = site.rstrip("/") + reverse("agent-wheel", args=[built.name])
    return f'pip install "klein-bench[{extra}] @ {url}"'


@dataclass(frozen=True)
class Install:
    torch: str
    agent: str
    # Whether the agent comes from this site (False: from a clone of the repository).
    served: bool


def install(site: str, on_cpu: bool = False) -> Install:
    return Install(TORCH_CPU if on_cpu else TORCH_CUDA, install_agent(site), wheel() is not None)


@dataclass
class ContributeCommand:
    preset: str
    label: str
    command: str
    measured: bool


def agent_measures(model: ImageModel, on_cpu: bool = False) -> bool:
    """Whether this version of the agent can benchmark the model (on a CPU: only the
    models built in code)."""
    spec = MODELS.get(model.slug)
    return spec is not None and (spec.built_in or not on_cpu)


def contribute_commands(
    model: ImageModel, measured: set[tuple[str, str]], site: str, on_cpu: bool = False
) -> list[ContributeCommand]:
    """The agent's commands that measure this model, the configurations this card lacks
    first. `measured` holds the card's (runtime, preset) pairs. None for a model the agent
    cannot run there; the built-in test model has one."""
    if not agent_measures(model, on_cpu):
        return []
    server = server_option(site)
    spec = MODELS[model.slug]
    if spec.built_in:
        command = f"klein-bench submit --model {model.slug}{server}"
        return [ContributeCommand("", "the tiny test model, on any CPU or GPU", command, False)]
    commands = [
        ContributeCommand(
            preset.name,
            preset.label,
            f"klein-bench submit --model {model.slug} --preset {preset.name}{server}",
            (Runtime.DIFFUSERS.value, preset.name) in measured,
        )
        for preset in (PRESETS[name] for name in spec.presets)
    ]
    fp8 = next((p for p in PRESETS.values() if p.precision == "fp8-storage"), None)
    if spec.comfyui is not None and fp8 is not None:
        commands.append(
            ContributeCommand(
                fp8.name,
                "FP8 in your running ComfyUI (the recipes' path)",
                f"klein-bench submit --model {model.slug} --runtime comfyui{server}",
                (Runtime.COMFYUI.value, fp8.name) in measured,
            )
        )
    return sorted(commands, key=lambda c: c.measured)
