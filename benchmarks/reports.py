"""Results people report by hand (/contribute/report): the form that checks every field,
and storing a report for moderation. Nothing here reaches a summary: a SelfReport is its
own table, shown apart on the check page once a moderator approves it.

Against spam: a field people never see (a bot fills it in), and a minimum time between
opening the form and sending it (a signed timestamp in the form, so it cannot be forged).
The per-address rate limit and CSRF are the view's and Django's.
"""

from __future__ import annotations

import time

from django import forms
from django.core import signing
from django.core.validators import URLValidator

from benchmarks.models import Gpu, ImageModel, SelfReport
from benchmarks.trust_models import ReportOutcome, VramReading

# Sent sooner after the form was opened than a person can fill it in.
MIN_FILL_SECONDS = 3
# A form older than this is stale: it asks to be opened again.
MAX_FORM_AGE_SECONDS = 24 * 3600
_SALT = "klein-bench.report-form"
# Above the largest card's memory and the slowest image any setup makes.
MAX_VRAM_GB = 512
MAX_SECONDS = 86400
# A reported peak may sit this far above the card's memory (rounding, shared memory).
VRAM_TOLERANCE = 1.05


def form_stamp(now: float | None = None) -> str:
    """The signed time the form was opened, for its hidden `started` field."""
    return signing.dumps(round(now if now is not None else time.time(), 3), salt=_SALT)


def _opened_at(stamp: str) -> float | None:
    try:
        value = signing.loads(stamp, salt=_SALT)
    except signing.BadSignature:
        return None
    return float(value) if isinstance(value, (int, float)) else None


class ReportForm(forms.ModelForm):
    model = forms.ModelChoiceField(
        queryset=ImageModel.objects.public(),
        empty_label="Choose the model",
        error_messages={
            "required": "Choose the model you ran.",
            "invalid_choice": "Choose a model from the list.",
        },
    )
    gpu = forms.ModelChoiceField(
        queryset=Gpu.objects.listed().exclude(slug="cpu"),
        label="Card",
        empty_label="Choose your card",
        error_messages={
            "required": "Choose your card.",
            "invalid_choice": "Choose a card from the list.",
        },
    )
    seconds_per_image = forms.FloatField(
        required=False,
        min_value=0.05,
        max_value=MAX_SECONDS,
        label="Seconds per image",
        help_text="From a warm run (not the first image after loading), e.g. 3.7.",
    )
    peak_vram_gb = forms.FloatField(
        required=False,
        min_value=0.1,
        max_value=MAX_VRAM_GB,
        label="Peak VRAM, GB",
        help_text="The most the card's memory showed while generating, e.g. 10.6.",
    )
    link = forms.CharField(
        required=False,
        max_length=500,
        label="Link (optional)",
        help_text="A post, screenshot or workflow that shows the run.",
    )
    # Hidden from people by the stylesheet; a program filling every field gives itself away.
    website = forms.CharField(required=False, label="Leave this field empty")
    started = forms.CharField(widget=forms.HiddenInput)

    class Meta:
        model = SelfReport
        fields = [
            "model",
            "gpu",
            "runtime",
            "runtime_version",
            "settings",
            "outcome",
            "seconds_per_image",
            "peak_vram_gb",
            "vram_reading",
            "notes",
            "link",
        ]
        labels = {
            "runtime_version": "Runtime version",
            "settings": "Settings",
            "vram_reading": "How you read the VRAM",
            "notes": "Notes (optional)",
        }
        help_texts = {
            "runtime_version": "e.g. ComfyUI 0.3.66, or diffusers 0.36.0.",
            "settings": "Precision and model file, offload, size and steps, e.g. FP8 file, "
            "no offload, 1024x1024, 4 steps.",
            "notes": "Anything else that matters: the driver, a power limit, what failed.",
        }
        widgets = {"notes": forms.Textarea(attrs={"rows": 4, "maxlength": 2000})}
        error_messages = {
            "runtime": {"required": "Choose the runtime you used."},
            "runtime_version": {"required": "Give the runtime's version, e.g. ComfyUI 0.3.66."},
            "settings": {"required": "Describe the settings: precision, offload, size and steps."},
            "outcome": {"required": "Say whether it ran."},
        }

    def __init__(self, *args, now: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.now = now if now is not None else time.time()
        self.fields["started"].initial = form_stamp(self.now)
        self.fields["vram_reading"].required = False
        self.fields["vram_reading"].choices = [("", "Choose how"), *VramReading.choices]
        self.fields["outcome"].choices = [("", "Choose the outcome"), *ReportOutcome.choices]
        self.fields["runtime"].choices = [
            ("", "Choose the runtime"),
            *self.fields["runtime"].choices[1:],
        ]

    def clean_website(self) -> str:
        if self.cleaned_data.get("website"):
            raise forms.ValidationError(
                "This field must stay empty: it is there to catch programs that fill in forms."
            )
        return ""

    def clean_started(self) -> str:
        stamp = self.cleaned_data["started"]
        opened = _opened_at(stamp)
        if opened is None:
            raise forms.ValidationError("The form was changed; open it again and fill it in.")
        age = self.now - opened
        if age < MIN_FILL_SECONDS:
            raise forms.ValidationError(
                f"The form was sent {max(age, 0):.0f} s after it was opened, sooner than a "
                "person fills it in; check the figures and send it again."
            )
        if age > MAX_FORM_AGE_SECONDS:
            raise forms.ValidationError("The form was opened over a day ago; send it again.")
        return stamp

    def stamp_for_resend(self) -> str:
        """The stamp a refused form goes back with: its own while it is valid (the time it
        was opened still counts), a new one when it was forged or is too old."""
        stamp = str(self.data.get("started", ""))
        opened = _opened_at(stamp)
        if opened is None or self.now - opened > MAX_FORM_AGE_SECONDS:
            return form_stamp(self.now)
        return stamp

    def clean_link(self) -> str:
        link = self.cleaned_data.get("link", "").strip()
        if link:
            try:
                URLValidator(schemes=["http", "https"])(link)
            except forms.ValidationError:
                raise forms.ValidationError(
                    "Give a web address starting with https:// or http://, or leave it empty."
                ) from None
        return link

    def _text_without_nul(self, name: str) -> None:
        value = self.cleaned_data.get(name)
        if isinstance(value, str) and "\x00" in value:
            self.add_error(name, "Remove the NUL character from this field.")

    def clean(self):
        data = super().clean()
        for name in ("runtime_version", "settings", "notes"):
            self._text_without_nul(name)
        outcome = data.get("outcome")
        seconds = data.get("seconds_per_image")
        if (
            outcome == ReportOutcome.RAN
            and seconds is None
            and "seconds_per_image" not in self.errors
        ):
            self.add_error(
                "seconds_per_image", "Give the seconds per image of the run that worked."
            )
        if outcome and outcome != ReportOutcome.RAN and seconds is not None:
            self.add_error("seconds_per_image", "Leave the seconds empty for a run that failed.")
        peak = data.get("peak_vram_gb")
        if peak is not None and not data.get("vram_reading"):
            self.add_error("vram_reading", "Say how you read the VRAM figure.")
        gpu = data.get("gpu")
        if peak is not None and gpu is not None and gpu.vram_mb:
            card_gb = gpu.vram_mb / 1024
            if peak > card_gb * VRAM_TOLERANCE and outcome == ReportOutcome.RAN:
                self.add_error(
                    "peak_vram_gb",
                    f"{peak:g} GB is more than the {gpu.name}'s {card_gb:.0f} GB: give the "
                    "card's own memory figure (Task Manager's dedicated GPU memory), not shared "
                    "memory.",
                )
        return data


def store(form: ReportForm) -> SelfReport:
    """Keep a valid report, awaiting moderation."""
    return form.save()
