"""Models of what trust rests on besides signed results: the consensus image of each
(model, protocol, runtime, precision), and results people report by hand through the
form at /contribute/report. benchmarks.models imports them, so Django finds them there."""

from __future__ import annotations

from django.db import models
from django.urls import reverse
from klein_bench.contract import figures


class ImageConsensus(models.Model):
    """What most independent contributors' first image looks like for one model, protocol,
    runtime and precision (klein_bench.contract.consensus). Recomputed by
    benchmarks.services.consensus; absent until enough contributors agree."""

    model = models.ForeignKey("benchmarks.ImageModel", on_delete=models.CASCADE)
    protocol_version = models.CharField(max_length=32)
    runtime = models.CharField(max_length=16)
    precision = models.CharField(max_length=16)
    phash = models.CharField(max_length=16)
    n_agreeing = models.PositiveIntegerField()
    n_contributors = models.PositiveIntegerField()
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model", "protocol_version", "runtime", "precision"],
                name="unique_image_consensus",
            )
        ]
        verbose_name_plural = "image consensus"

    def __str__(self) -> str:
        return f"{self.model} {self.protocol_version} {self.runtime} {self.precision}: {self.phash}"


class ReportStatus(models.TextChoices):
    PENDING = "pending", "awaiting moderation"
    APPROVED = "approved", "approved"
    REJECTED = "rejected", "rejected"


class VramReading(models.TextChoices):
    NVIDIA_SMI = "nvidia-smi", "nvidia-smi"
    TASK_MANAGER = "task-manager", "Windows Task Manager (dedicated GPU memory)"
    COMFYUI_LOG = "comfyui-log", "ComfyUI's log"
    OTHER = "other", "another tool"


class ReportOutcome(models.TextChoices):
    RAN = "ran", "it ran"
    OUT_OF_MEMORY = "out_of_memory", "out of memory"
    ERROR = "error", "another error"


def _runtime_choices() -> list[tuple[str, str]]:
    return [*figures.RUNTIMES.items(), ("other", "another runtime")]


class SelfReportQuerySet(models.QuerySet):
    def shown(self):
        """Reports a moderator approved: the only ones pages show."""
        return self.filter(status=ReportStatus.APPROVED)

    def for_pair(self, model, gpu):
        return self.filter(model=model, gpu=gpu)


class SelfReport(models.Model):
    """A result someone typed into the report form: not measured by the agent, not signed,
    so never in a median or a verdict; shown apart once a moderator approves it."""

    model = models.ForeignKey(
        "benchmarks.ImageModel", on_delete=models.PROTECT, related_name="reports"
    )
    gpu = models.ForeignKey("benchmarks.Gpu", on_delete=models.PROTECT, related_name="reports")
    runtime = models.CharField(max_length=16, choices=_runtime_choices)
    runtime_version = models.CharField(max_length=64)
    settings = models.CharField(max_length=200, help_text="Precision, offload, size, steps")
    seconds_per_image = models.FloatField(null=True, blank=True)
    peak_vram_gb = models.FloatField(null=True, blank=True)
    vram_reading = models.CharField(max_length=16, choices=VramReading.choices, blank=True)
    outcome = models.CharField(max_length=16, choices=ReportOutcome.choices)
    notes = models.TextField(blank=True, max_length=2000)
    link = models.URLField(blank=True, max_length=500)
    status = models.CharField(
        max_length=16, choices=ReportStatus.choices, default=ReportStatus.PENDING
    )
    moderation_reason = models.TextField(blank=True)
    moderated_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True)

    objects = SelfReportQuerySet.as_manager()

    class Meta:
        ordering = ["-submitted_at", "-id"]
        indexes = [models.Index(fields=["model", "gpu", "status"], name="report_pair_status")]

    def __str__(self) -> str:
        return f"Report {self.pk}: {self.model} on {self.gpu}"

    def get_absolute_url(self) -> str:
        return reverse("checkpages:pair", args=[self.model.slug, self.gpu.slug])
