from django.apps import AppConfig


class CheckpagesConfig(AppConfig):
    name = "checkpages"
    verbose_name = "Check pages"
