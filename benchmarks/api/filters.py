"""Query filters of /api/v1/results."""

from __future__ import annotations

from datetime import UTC

from django import forms
from django.core.validators import ProhibitNullCharactersValidator
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import extend_schema_field

from benchmarks.models import (
    Offload,
    Outcome,
    Precision,
    Preset,
    Result,
    Runtime,
    SubmissionStatus,
)

INT_MAX = 2**31 - 1


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": INT_MAX})
class IntegerFilter(filters.NumberFilter):
    """A whole number (NumberFilter takes decimals, and huge ones the database refuses)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", INT_MAX)
        super().__init__(*args, **kwargs)


class StrictBooleanField(forms.NullBooleanField):
    """true or false; anything else is an error rather than "no filter"."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        if value in (True, "true", "True", "1"):
            return True
        if value in (False, "false", "False", "0"):
            return False
        raise forms.ValidationError("Enter true or false.", code="invalid")


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs):
        # django-filter's BooleanWidget also maps unknown words to None.
        kwargs["widget"] = forms.TextInput
        super().__init__(*args, **kwargs)


class AnyTextField(forms.CharField):
    """Text as given: a NUL character is a value that matches nothing, not an error."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.validators = [
            v for v in self.validators if not isinstance(v, ProhibitNullCharactersValidator)
        ]


class TextFilter(filters.CharFilter):
    field_class = AnyTextField

    def filter(self, qs, value):
        if value and "\x00" in value:
            # The database cannot compare text with NUL in it; no stored value has one.
            return qs.none()
        return super().filter(qs, value)


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 time, converted to UTC: the database refuses some offsets that ISO
    allows (+19:21), and times near year 1 may not survive the conversion at all."""

    def to_python(self, value):
        moment = super().to_python(value)
        if moment is None:
            return None
        try:
            return moment.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise forms.ValidationError("Enter a time between the years 1 and 9999.") from exc


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class ResultFilter(filters.FilterSet):
    model = TextFilter(field_name="model__slug", help_text="Model slug")
    gpu = TextFilter(field_name="gpu__slug", help_text="GPU slug")
    runtime = filters.ChoiceFilter(field_name="configuration__runtime", choices=Runtime.choices)
    precision = filters.ChoiceFilter(
        field_name="configuration__precision", choices=Precision.choices
    )
    offload = filters.ChoiceFilter(field_name="configuration__offload", choices=Offload.choices)
    preset = filters.ChoiceFilter(field_name="configuration__preset", choices=Preset.choices)
    width = IntegerFilter(field_name="configuration__width")
    height = IntegerFilter(field_name="configuration__height")
    steps = IntegerFilter(field_name="configuration__steps")
    driver = TextFilter(field_name="driver_version", help_text="NVIDIA driver version")
    torch = TextFilter(field_name="torch_version", help_text="torch version")
    diffusers = TextFilter(field_name="diffusers_version", help_text="diffusers version")
    outcome = filters.ChoiceFilter(choices=Outcome.choices)
    synthetic = StrictBooleanFilter(
        help_text="true: full-size architecture with random weights only; false: real only"
    )
    status = filters.ChoiceFilter(field_name="submission__status", choices=SubmissionStatus.choices)
    created_after = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="On or after (ISO 8601, UTC)"
    )
    created_before = UtcDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Before (ISO 8601, UTC)"
    )

    class Meta:
        model = Result
        fields: list[str] = []

    def is_valid(self) -> bool:
        # An empty value is not a number, time, choice or boolean: say so rather than
        # quietly not filtering. (Empty text filters stay "no filter".)
        valid = super().is_valid()
        for name, value in self.data.items():
            if (
                value == ""
                and name in self.filters
                and not isinstance(self.filters[name], TextFilter)
            ):
                self.form.add_error(name, "Give a value, or leave the parameter out.")
                valid = False
        return valid
