#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    from config.env import ConfigurationError, stop

    try:
        execute_from_command_line(sys.argv)
    except ConfigurationError as exc:
        stop(exc)
    except OperationalError as exc:
        # A database that is down, or a DATABASE_URL naming the wrong host or database.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        stop(
            ConfigurationError(
                f"the database could not be used ({reason}); check that it is running and "
                "that DATABASE_URL names it, like postgres://USER:PASSWORD@HOST:5432/DBNAME."
            )
        )


if __name__ == "__main__":
    main()
