"""Build the agent's wheel from this checkout into AGENT_WHEEL_DIR, where the site serves
it (/agent/<wheel file>) and the pages' install command points. Run when the site is
built: the Dockerfile does, beside collectstatic, and so does `make run`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from checkpages import install


class Command(BaseCommand):
    help = "Build the klein-bench agent's wheel that the site serves at /agent/."

    def handle(self, *args, **options) -> None:
        try:
            built = install.build()
        except RuntimeError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Built {built} (served at /agent/{built.name}).")
