from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    name = "benchmarks"
    verbose_name = "Benchmarks"

    def ready(self) -> None:
        # Connects the catalog signals that move the pages' cache tokens.
        from benchmarks.services import aggregation  # noqa: F401
