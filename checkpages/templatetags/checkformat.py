"""Number formatting for the check pages: seconds, memory, energy, in plain units."""

from __future__ import annotations

from django import template

from checkpages import formatting, trust

register = template.Library()

register.filter("seconds", formatting.seconds)
register.filter("gb", formatting.gb)
register.filter("gib", formatting.gib)
register.filter("gb_number", formatting.gb_number)
register.filter("card_gb", formatting.card_gb)
register.filter("joules", formatting.joules)
register.filter("percent", formatting.percent)
register.filter("short_gpu", formatting.short_gpu_name)
register.filter("card_name", formatting.card_name)
register.filter("plain", formatting.plain)
register.filter("number", formatting.number)
register.filter("why_apart", trust.why_apart)
register.filter("work", formatting.work)
register.filter("stage", formatting.stage)
