"""GET /contribute: how to contribute, exactly what is sent and what is not, how to
withdraw. POST /contribute (the API) is tested in test_contribute.py."""

from __future__ import annotations

import re

import pytest

from checkpages.contribute import EXPLANATIONS, schema_paths
from tests.pages_data import visible_text

pytestmark = pytest.mark.django_db


def test_the_page_says_how_to_install_run_submit_and_withdraw(client, catalog):
    response = client.get("/contribute")

    assert response.status_code == 200
    text = visible_text(response)
    assert text.startswith(
        "Measure your GPU and add the result The klein-bench agent runs a standard benchmark of "
        "FLUX.2 [klein] 4B on your card"
    )
    for command in (
        "pip install torch --index-url https://download.pytorch.org/whl/cu128 "
        'pip install "./agent[diffusers]"',
        "klein-bench doctor",
        "klein-bench submit --model flux-2-klein-4b --preset bf16-resident --server "
        "http://testserver",
        "--dry-run --print-payload",
        "pip install torch --index-url https://download.pytorch.org/whl/cpu "
        'pip install "./agent[diffusers]" '
        "klein-bench submit --model klein-tiny-random --server http://testserver",
        "klein-bench withdraw ID",
    ):
        assert command in text, command
    assert 'pip install "klein-bench[diffusers]"' not in text, "a name on no index"
    for preset in ("bf16-resident", "bf16-model-offload", "fp8-storage"):
        assert f"--preset {preset} " in text
    assert '<a href="/check/klein-tiny-random/cpu/">' in response.content.decode()


def test_every_field_of_the_result_schema_is_listed_with_what_it_is(client, catalog):
    text = visible_text(client.get("/contribute"))

    for path in schema_paths():
        assert f" {path} {EXPLANATIONS[path]}" in text, path


def test_the_explanations_describe_only_fields_the_schema_has():
    assert sorted(EXPLANATIONS) == sorted(schema_paths())


def test_the_page_lists_what_is_not_collected(client, catalog):
    text = visible_text(client.get("/contribute"))

    section = text[text.index("What is not collected") : text.index("Withdrawing a result")]
    for absent in (
        "No name, e-mail address or account",
        "No GPU serial number or UUID",
        "No host name, user name or file paths",
        "No prompts or images of yours",
        "never stored with a result",
    ):
        assert absent in section


def test_the_page_answers_head_and_works_without_the_catalog(client, db):
    assert client.head("/contribute").status_code == 200
    assert re.search(
        r"klein-bench submit --model flux-2-klein-4b", visible_text(client.get("/contribute"))
    )
