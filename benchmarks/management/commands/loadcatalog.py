from django.core.management.base import BaseCommand

from benchmarks.services.catalog import load_catalog


class Command(BaseCommand):
    help = "Create or update the catalog (models, GPUs, configurations, published claims)."

    def handle(self, *args, **options):
        report = load_catalog()
        self.stdout.write(f"Catalog loaded: {report}.")
