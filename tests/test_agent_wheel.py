"""The agent as the site serves it: `manage.py buildagent` builds the wheel, /agent/<file>
serves it, and the install command the pages show installs it from this very site, torch
first, with --server when the site is not the agent's default. The README says the same."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from django.core.management import call_command
from klein_bench import upload

from benchmarks.models import Result
from tests.pages_data import visible_text

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory) -> Path:
    """The agent's wheel, built once by the management command the site's build runs."""
    from django.conf import settings

    directory = tmp_path_factory.mktemp("agent-wheel")
    previous = settings.AGENT_WHEEL_DIR
    settings.AGENT_WHEEL_DIR = directory
    try:
        call_command("buildagent", stdout=open("/dev/null", "w"))  # noqa: SIM115
    finally:
        settings.AGENT_WHEEL_DIR = previous
    (wheel,) = directory.glob("klein_bench-*.whl")
    return wheel


@pytest.fixture
def served(settings, built_wheel) -> Path:
    settings.AGENT_WHEEL_DIR = built_wheel.parent
    return built_wheel


def _commands(response) -> list[str]:
    """Every command in the page's <pre class="command"> blocks, line by line."""
    blocks = re.findall(r'<pre class="command">(.*?)</pre>', response.content.decode(), re.S)
    return [line.replace("&quot;", '"') for block in blocks for line in block.splitlines()]


def test_the_default_platform_is_the_agents_default_server(settings):
    assert settings.AGENT_DEFAULT_SERVER == upload.DEFAULT_SERVER


def test_the_wheel_is_served_at_the_address_the_pages_name(client, catalog, served):
    response = client.get(f"/agent/{served.name}")

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == served.read_bytes()
    assert response["Content-Type"] == "application/octet-stream"
    assert client.get("/agent/klein_bench-9.9.9-py3-none-any.whl").status_code == 404
    assert client.get("/agent/..%2Fsettings.py").status_code == 404


def test_the_contribute_page_installs_torch_first_then_the_agent_from_this_site(
    client, catalog, served, settings
):
    settings.SITE_URL = "https://bench.example.org"

    commands = _commands(client.get("/contribute"))

    assert commands[:3] == [
        "pip install torch --index-url https://download.pytorch.org/whl/cu128",
        f'pip install "klein-bench[diffusers] @ https://bench.example.org/agent/{served.name}"',
        "klein-bench submit --model flux-2-klein-4b --preset bf16-resident "
        "--server https://bench.example.org",
    ]
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in commands
    assert "klein-bench submit --model klein-tiny-random --server https://bench.example.org" in (
        commands
    )


def test_on_the_default_site_the_commands_need_no_server_option(client, catalog, served, settings):
    settings.SITE_URL = settings.AGENT_DEFAULT_SERVER

    text = visible_text(client.get("/check/flux-2-klein-4b/rtx-4090/"))

    assert "klein-bench submit --model flux-2-klein-4b --preset bf16-resident BF16" in text
    assert "--server" not in text
    assert (
        "pip install torch --index-url https://download.pytorch.org/whl/cu128 "
        f'pip install "klein-bench[diffusers] @ https://klein-bench.org/agent/{served.name}"'
    ) in text


def test_without_a_built_wheel_the_pages_install_from_a_clone(client, catalog, settings, tmp_path):
    settings.AGENT_WHEEL_DIR = tmp_path

    commands = _commands(client.get("/contribute"))

    assert commands[1] == 'pip install "./agent[diffusers]"'


def test_the_readme_shows_the_commands_the_default_site_shows(client, catalog, served, settings):
    settings.SITE_URL = settings.AGENT_DEFAULT_SERVER
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Contributing a result") :]
    block = section[section.index("```sh") + 6 : section.index("```", section.index("```sh") + 6)]
    readme_commands = [line.split("  #")[0].strip() for line in block.strip().splitlines()]

    commands = _commands(client.get("/contribute"))

    assert readme_commands[:2] == commands[:2]
    assert readme_commands[3] == "klein-bench submit --preset bf16-resident"


@pytest.mark.django_db(transaction=True)
def test_the_command_the_page_shows_installs_the_agent_which_then_submits(
    client, catalog, served, live_server, settings, tmp_path
):
    """A fresh virtual environment, the exact pip command from /contribute (pointed at a
    live server), then the installed agent's own `klein-bench submit` to that server.
    pip runs with --no-deps: torch, diffusers and the rest come from this test's
    environment (PYTHONPATH), since this machine has no network to fetch them from."""
    settings.SITE_URL = live_server.url
    shown = _commands(client.get("/contribute"))[1]
    assert shown.startswith('pip install "klein-bench[diffusers] @ ' + live_server.url)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    requirement = shown.removeprefix("pip install ").strip('"')
    pip = subprocess.run(
        [venv / "bin" / "pip", "install", "--quiet", "--no-deps", requirement],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stderr
    installed = venv / "bin" / "klein-bench"
    assert installed.exists()

    agent = subprocess.run(
        [installed, "submit", "--model", "klein-tiny-random", "--server", live_server.url],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HOME": str(tmp_path),
            "KLEIN_BENCH_HOME": str(tmp_path / "agent-home"),
            "PYTHONPATH": sysconfig.get_paths()["purelib"],
        },
    )

    assert agent.returncode == 0, agent.stdout + agent.stderr
    module = subprocess.run(
        [venv / "bin" / "python", "-c", "import klein_bench; print(klein_bench.__file__)"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": sysconfig.get_paths()["purelib"]},
    )
    assert module.stdout.startswith(str(venv)), "the agent ran from the wheel, not the clone"
    stored = Result.objects.get()
    assert (stored.model.slug, stored.gpu.slug) == ("klein-tiny-random", "cpu")
    assert f"{live_server.url}/r/{stored.pk}" in agent.stdout
