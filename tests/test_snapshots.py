"""/data/: the snapshot `manage.py snapshot` (and the nightly beat task) writes, downloaded
and checked from the files alone: sums, row counts, formats, signatures."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import os
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from klein_bench.contract import wire

from benchmarks import tasks
from benchmarks.models import Result
from benchmarks.services import moderation, snapshots
from tests.contribute_support import _fresh_rate_limits, contribute, delete, withdrawal_body  # noqa: F401
from tests.factories import result_payload, runs
from tests.pages_data import visible_text

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _snapshot_dir(settings, tmp_path):
    settings.SNAPSHOT_DIR = tmp_path / "snapshots"


def download(client, url: str, **headers):
    response = client.get(url, follow=True, **headers)
    assert response.status_code == 200, url
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def publish(client) -> dict[str, int]:
    ids = {}
    keys = [wire.SigningKey.generate() for _ in range(3)]
    for i, key in enumerate(keys):
        payload = result_payload(timings={"runs": runs(2.0 + i / 10, 2.0, 2.0)})
        ids[f"result-{i}"] = contribute(client, key, payload).json()["result_id"]
    gone = contribute(client, keys[0]).json()["result_id"]
    assert delete(client, gone, withdrawal_body(keys[0], gone)).status_code == 200
    ids["withdrawn"] = gone
    tiny = result_payload(model="klein-tiny-random", configuration={"width": 64, "height": 64})
    ids["tiny"] = contribute(client, keys[1], tiny).json()["result_id"]
    return ids


def test_the_snapshot_downloads_and_verifies_from_the_files_alone(client, catalog, capsys):
    ids = publish(client)
    call_command("snapshot")
    assert "Snapshot " in capsys.readouterr().out

    page = visible_text(client.get("/data/"))
    assert "Open data Every public result, as a nightly snapshot" in page
    assert "Licence: CC BY 4.0" in page
    _, raw = download(client, "/data/latest/manifest.json")
    manifest = json.loads(raw)
    assert (manifest["format"], manifest["licence"], manifest["result_schema"]) == (
        "klein-bench/snapshot/v1",
        "CC BY 4.0",
        "klein-bench/result/v1",
    )
    files = {}
    for entry in manifest["files"]:
        # As a browser asks: compressed files must come as they are, with their length.
        accept = "gzip" if entry["name"].endswith((".gz", ".parquet")) else ""
        answer, body = download(
            client, f"/data/latest/{entry['name']}", HTTP_ACCEPT_ENCODING=accept
        )
        assert answer["Content-Type"] == entry["media_type"]
        assert int(answer["Content-Length"]) == entry["bytes"] == len(body)
        assert "Content-Encoding" not in answer
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], entry["name"]
        files[entry["name"]] = (entry, body)

    public = [ids["result-0"], ids["result-1"], ids["result-2"]]
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(files["results.csv.gz"][1]).decode())))
    assert [int(row["id"]) for row in rows] == public
    assert files["results.csv.gz"][0]["rows"] == 3
    assert (rows[0]["model"], rows[0]["gpu"], rows[0]["comparability"], rows[0]["status"]) == (
        "flux-2-klein-4b",
        "rtx-4090",
        "protocol-exact",
        "accepted",
    )
    table = pq.read_table(io.BytesIO(files["results.parquet"][1]))
    assert table.num_rows == 3
    assert table.column("id").to_pylist() == public
    assert table.column("seconds_median").to_pylist() == [2.0, 2.0, 2.0]
    assert table.column("failed_stage").to_pylist() == [None, None, None]

    lines = [
        json.loads(line) for line in gzip.decompress(files["documents.jsonl.gz"][1]).splitlines()
    ]
    assert [line["result_id"] for line in lines] == public
    for line, row in zip(lines, rows, strict=True):
        # Nothing but the file: the body's sum is the row's, and its signature checks out.
        assert hashlib.sha256(line["body"].encode()).hexdigest() == row["body_sha256"]
        document = wire.parse_document(line["body"])
        assert document.key_id == row["contributor"]
        document.verify(bytes.fromhex(line["public_key"]))
        assert document.payload["model"] == row["model"]
    licence = files["LICENCE.txt"][1].decode()
    assert "Creative Commons Attribution 4.0 International" in licence


def test_a_snapshot_file_is_served_whole_or_not_at_all(client, catalog, monkeypatch):
    publish(client)
    first = snapshots.write_snapshot(datetime(2026, 12, 1, 3, tzinfo=UTC))

    def broken(folder):
        (folder / "reports.csv.gz").write_bytes(b"half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(snapshots, "_write_reports", broken)
    with pytest.raises(OSError):
        snapshots.write_snapshot(datetime(2026, 12, 2, 3, tzinfo=UTC))
    assert sorted(os.listdir(snapshots.snapshot_dir())) == [first.name]
    assert client.get("/data/latest/manifest.json")["Location"].endswith(
        f"/data/{first.name}/manifest.json"
    )


def test_snapshots_are_kept_for_fourteen_days(catalog):
    start = datetime(2026, 12, 1, 3, tzinfo=UTC)
    for day in range(17):
        snapshots.write_snapshot(start + timedelta(days=day))
    kept = snapshots.snapshots()
    assert len(kept) == 15
    assert kept[-1] == "2026-12-03T030000Z" and kept[0] == "2026-12-17T030000Z"


def test_the_beat_task_writes_what_the_command_writes(catalog):
    folder = tasks.write_snapshot()
    assert snapshots.snapshots() == [os.path.basename(folder)]


def test_names_that_are_not_snapshot_files_are_404(client, catalog):
    snapshots.write_snapshot()
    name = snapshots.snapshots()[0]
    for url in (
        f"/data/{name}/../../settings.py",
        f"/data/{name}/secrets.txt",
        "/data/2020-01-01T000000Z/manifest.json",
        "/data/latest/nothing.csv",
        "/data/..%2F..%2Fetc/passwd",
    ):
        assert client.get(url).status_code == 404, url


def test_flagged_results_are_published_with_their_status_and_withdrawn_ones_are_not(
    client, catalog
):
    ids = publish(client)
    moderation.set_status(
        [Result.objects.get(pk=ids["result-1"]).submission], "flagged", "Check the driver"
    )
    folder = snapshots.write_snapshot()
    with gzip.open(folder / "results.csv.gz", "rt") as f:
        statuses = {int(row["id"]): row["status"] for row in csv.DictReader(f)}
    assert statuses == {
        ids["result-0"]: "accepted",
        ids["result-1"]: "flagged",
        ids["result-2"]: "accepted",
    }


def test_without_a_snapshot_the_page_says_when_the_first_comes(client, catalog):
    assert "No snapshot has been written yet: the first one is made tonight" in visible_text(
        client.get("/data/")
    )
