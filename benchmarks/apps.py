from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class BenchmarksConfig(AppConfig):
    name = "benchmarks"
    verbose_name = "Benchmarks"

    def ready(self) -> None:
        from benchmarks.caching import data_changed

        # Pages show catalog rows too: a renamed card is a new page at once.
        for name in ("ImageModel", "Gpu", "Configuration", "PublishedClaim"):
            model = self.get_model(name)
            post_save.connect(data_changed, sender=model, dispatch_uid=f"data-changed-{name}")
            post_delete.connect(data_changed, sender=model, dispatch_uid=f"data-changed-{name}")
