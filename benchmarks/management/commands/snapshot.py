from django.core.management.base import BaseCommand

from benchmarks.services import snapshots


class Command(BaseCommand):
    help = (
        "Write an open-data snapshot of every public result now (CSV, Parquet, the signed "
        "documents, a manifest with SHA-256 sums) into SNAPSHOT_DIR, served at /data/; "
        "the nightly beat task runs the same code. Snapshots over 14 days old are deleted."
    )

    def handle(self, *args, **options):
        folder = snapshots.write_snapshot()
        manifest = snapshots.manifest(folder.name) or {"files": []}
        rows = {entry["name"]: entry["rows"] for entry in manifest["files"]}
        self.stdout.write(
            f"Snapshot {folder.name} written to {folder}: {rows.get('results.csv.gz', 0)} "
            f"results, {rows.get('reports.csv.gz', 0)} self-reported results."
        )
