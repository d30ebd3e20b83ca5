"""Open data: a snapshot of every public result, written nightly (Celery beat) and by
`python manage.py snapshot`, both through write_snapshot().

A snapshot is a folder named by its UTC time (2026-12-01T030000Z) under SNAPSHOT_DIR:

- results.csv.gz and results.parquet (gzip inside): one row per public result, COLUMNS;
- documents.jsonl.gz: per result, the signed document exactly as received and the public
  key that signed it, so anyone can verify every row from the files alone;
- reports.csv.gz: the approved self-reported results (never measured, never in medians);
- LICENCE.txt, and manifest.json: the format, the licence, and each file's SHA-256, size,
  row count and media type.

Public results are those of public models whose submission is accepted or flagged by a
moderator (with the flag in `status`); withdrawn and rejected ones are left out. Rows come
from one query, read once, so the files agree with each other. Everything is written into
a hidden folder that is renamed into place only when complete: a reader never sees half a
snapshot. Snapshots older than KEEP_DAYS are deleted (the newest is always kept).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings
from django.utils import timezone
from klein_bench.contract.figures import MEMORY_FIGURES
from klein_bench.contract.schema import RESULT_SCHEMA

from benchmarks.models import Result, SelfReport, SubmissionStatus

FORMAT = "klein-bench/snapshot/v1"
LICENCE = "CC BY 4.0"
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
KEEP_DAYS = 14
NAME_FORMAT = "%Y-%m-%dT%H%M%SZ"
NAME_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{6}Z")
PUBLIC_STATUSES = (SubmissionStatus.ACCEPTED, SubmissionStatus.FLAGGED)
BATCH_ROWS = 5000
MEDIA_TYPES = {
    ".csv.gz": "application/gzip",
    ".jsonl.gz": "application/gzip",
    ".parquet": "application/vnd.apache.parquet",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}

# (column, ORM lookup, Arrow type): the results table, in this order in every format.
_I, _F, _S, _B = pa.int64(), pa.float64(), pa.string(), pa.bool_()
COLUMNS: tuple[tuple[str, str, pa.DataType], ...] = (
    ("id", "id", _I),
    ("created_at", "created_at", pa.timestamp("us", tz="UTC")),
    ("status", "submission__status", _S),
    ("model", "model__slug", _S),
    ("gpu", "gpu__slug", _S),
    ("runtime", "configuration__runtime", _S),
    ("precision", "configuration__precision", _S),
    ("offload", "configuration__offload", _S),
    ("preset", "configuration__preset", _S),
    ("width", "configuration__width", _I),
    ("height", "configuration__height", _I),
    ("steps", "configuration__steps", _I),
    ("synthetic", "synthetic", _B),
    ("protocol_version", "protocol_version", _S),
    ("protocol_hash", "protocol_hash", _S),
    ("comparability", "comparability", _S),
    ("image_differs", "image_differs", _B),
    ("is_outlier", "is_outlier", _B),
    ("reproduction_of", "reproduction_of_id", _I),
    ("outcome", "outcome", _S),
    ("failed_stage", "failed_stage", _S),
    ("n_runs", "n_runs", _I),
    ("seconds_median", "seconds_median", _F),
    ("seconds_p10", "seconds_p10", _F),
    ("seconds_p90", "seconds_p90", _F),
    ("load_seconds", "load_seconds", _F),
    *((name, name, _F) for name in MEMORY_FIGURES),
    ("vram_source", "vram_source", _S),
    ("attention_kernel", "attention_kernel", _S),
    ("fp8_kernels_ran", "fp8_kernels_ran", _B),
    ("power_limit_share", "power_limit_share", _F),
    ("capped", "capped", _B),
    ("throttled", "throttled", _B),
    ("energy_joules_per_image", "energy_joules_per_image", _F),
    ("driver_version", "driver_version", _S),
    ("torch_version", "torch_version", _S),
    ("diffusers_version", "diffusers_version", _S),
    ("runtime_version", "runtime_version", _S),
    ("agent_version", "agent_version", _S),
    ("image_phash", "image_phash", _S),
    ("contributor", "contributor__key_id", _S),
    ("body_sha256", "submission__body_sha256", _S),
)
REPORT_COLUMNS = (
    ("id", "id"),
    ("submitted_at", "submitted_at"),
    ("model", "model__slug"),
    ("gpu", "gpu__slug"),
    ("runtime", "runtime"),
    ("runtime_version", "runtime_version"),
    ("settings", "settings"),
    ("outcome", "outcome"),
    ("seconds_per_image", "seconds_per_image"),
    ("peak_vram_gb", "peak_vram_gb"),
    ("vram_reading", "vram_reading"),
    ("notes", "notes"),
    ("link", "link"),
)
LICENCE_TEXT = f"""klein-bench open data

These files are licensed under the Creative Commons Attribution 4.0 International
licence ({LICENCE}): {LICENCE_URL}

You may share and adapt them for any purpose, including commercially, as long as you give
credit ("klein-bench contributors"), link to the licence and say if you changed them.

Every row of results.* is a result signed by its contributor's Ed25519 key; the signed
documents are in documents.jsonl.gz (verify them as docs/protocol.md says). reports.csv.gz
holds self-reported figures typed into a form: not measured by the agent, not signed.
"""


def snapshot_dir() -> Path:
    return Path(settings.SNAPSHOT_DIR)


@dataclass(frozen=True)
class Written:
    path: Path
    rows: int


def media_type(name: str) -> str:
    return next(
        (kind for ending, kind in MEDIA_TYPES.items() if name.endswith(ending)),
        "application/octet-stream",
    )


def _public_results():
    return (
        Result.objects.filter(submission__status__in=PUBLIC_STATUSES, model__is_test_model=False)
        .order_by("id")
        .values_list(
            *(lookup for _, lookup, _ in COLUMNS),
            "submission__body",
            "contributor__public_key",
        )
    )


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def _arrow_schema() -> pa.Schema:
    return pa.schema([pa.field(name, kind) for name, _, kind in COLUMNS])


def _blank_to_null(name: str, value: Any) -> Any:
    # Text columns store "no value" as "": Parquet says null, as the API does.
    return None if value == "" and name not in ("status", "model", "gpu") else value


class _ResultWriters:
    """The three results files, written side by side from one pass over the rows."""

    def __init__(self, csv_file: Any, documents: Any, parquet: pq.ParquetWriter):
        self.csv = csv.writer(csv_file, lineterminator="\n")
        self.csv.writerow([name for name, _, _ in COLUMNS])
        self.documents = documents
        self.parquet = parquet
        self.batch: list[tuple] = []
        self.rows = 0

    def add(self, row: tuple) -> None:
        figures, (body, public_key) = row[: len(COLUMNS)], row[len(COLUMNS) :]
        self.csv.writerow([_cell(value) for value in figures])
        line = {"result_id": figures[0], "public_key": public_key, "body": body}
        self.documents.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        self.batch.append(figures)
        self.rows += 1
        if len(self.batch) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        columns = list(zip(*self.batch, strict=True))
        arrays = {
            name: [_blank_to_null(name, v) for v in columns[i]]
            for i, (name, _, _) in enumerate(COLUMNS)
        }
        self.parquet.write_table(pa.Table.from_pydict(arrays, schema=_arrow_schema()))
        self.batch = []


def _write_results(folder: Path) -> int:
    with (
        gzip.open(folder / "results.csv.gz", "wt", newline="", encoding="utf-8") as csv_file,
        gzip.open(folder / "documents.jsonl.gz", "wt", encoding="utf-8") as documents,
        pq.ParquetWriter(
            folder / "results.parquet", _arrow_schema(), compression="gzip"
        ) as parquet,
    ):
        writers = _ResultWriters(csv_file, documents, parquet)
        for row in _public_results().iterator(chunk_size=1000):
            writers.add(row)
        writers.flush()
    return writers.rows


def _write_reports(folder: Path) -> int:
    rows = (
        SelfReport.objects.shown()
        .order_by("id")
        .values_list(*(lookup for _, lookup in REPORT_COLUMNS))
    )
    count = 0
    with gzip.open(folder / "reports.csv.gz", "wt", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([name for name, _ in REPORT_COLUMNS])
        for row in rows.iterator(chunk_size=1000):
            writer.writerow([_cell(value) for value in row])
            count += 1
    return count


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest(folder: Path, created: datetime, rows: dict[str, int]) -> dict[str, Any]:
    files = []
    for name in sorted(rows):
        path = folder / name
        files.append(
            {
                "name": name,
                "media_type": media_type(name),
                "bytes": path.stat().st_size,
                "sha256": sha256_of(path),
                "rows": rows[name],
            }
        )
    return {
        "format": FORMAT,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "licence": LICENCE,
        "licence_url": LICENCE_URL,
        "result_schema": RESULT_SCHEMA,
        "columns": [{"name": name, "type": str(kind)} for name, _, kind in COLUMNS],
        "files": files,
    }


def _fsync(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())


def write_snapshot(now: datetime | None = None) -> Path:
    """Write a snapshot of every public result now; returns its folder."""
    created = (now or timezone.now()).astimezone(UTC)
    root = snapshot_dir()
    root.mkdir(parents=True, exist_ok=True)
    final = root / created.strftime(NAME_FORMAT)
    building = root / f".{final.name}.{secrets.token_hex(4)}.partial"
    building.mkdir()
    try:
        results = _write_results(building)
        reports = _write_reports(building)
        (building / "LICENCE.txt").write_text(LICENCE_TEXT, encoding="utf-8")
        rows = {
            "results.csv.gz": results,
            "results.parquet": results,
            "documents.jsonl.gz": results,
            "reports.csv.gz": reports,
            "LICENCE.txt": 0,
        }
        manifest = json.dumps(_manifest(building, created, rows), indent=2) + "\n"
        (building / "manifest.json").write_text(manifest, encoding="utf-8")
        for path in building.iterdir():
            _fsync(path)
        # A rename within one folder is atomic: the snapshot appears whole or not at all.
        os.rename(building, final)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    prune(created)
    return final


def snapshots() -> list[str]:
    """The complete snapshots' names, newest first."""
    root = snapshot_dir()
    if not root.is_dir():
        return []
    names = [p.name for p in root.iterdir() if p.is_dir() and NAME_PATTERN.fullmatch(p.name)]
    return sorted(names, reverse=True)


def prune(now: datetime) -> list[str]:
    """Delete snapshots older than KEEP_DAYS (never the newest) and leftovers of writes
    that died over a day ago; returns the names deleted."""
    root = snapshot_dir()
    oldest = now - timedelta(days=KEEP_DAYS)
    removed = []
    for name in snapshots()[1:]:
        taken = datetime.strptime(name, NAME_FORMAT).replace(tzinfo=UTC)
        if taken < oldest:
            shutil.rmtree(root / name, ignore_errors=True)
            removed.append(name)
    for path in root.glob(".*.partial"):
        age = now.timestamp() - path.stat().st_mtime
        if age > 24 * 3600:
            shutil.rmtree(path, ignore_errors=True)
    return removed


def manifest(name: str) -> dict[str, Any] | None:
    """A complete snapshot's manifest; None for a name that is no snapshot."""
    if not NAME_PATTERN.fullmatch(name):
        return None
    path = snapshot_dir() / name / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def file_path(name: str, filename: str) -> Path | None:
    """The path of a file a snapshot's manifest lists (nothing else can be named)."""
    found = manifest(name)
    if found is None:
        return None
    listed = {entry["name"] for entry in found["files"]} | {"manifest.json"}
    if filename not in listed:
        return None
    path = snapshot_dir() / name / filename
    return path if path.is_file() else None
