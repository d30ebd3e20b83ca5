"""The results domain: the catalog (models, GPUs, configurations, published claims),
contributors and their signed submissions, results, and per-configuration summaries."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from klein_bench.contract import catalog, comparability, figures


def _choices(name: str, words: dict[str, str]) -> type[models.TextChoices]:
    """TextChoices from one of the contract's tables of values and the words for them."""
    members = [(value.upper().replace("-", "_"), (value, label)) for value, label in words.items()]
    return models.TextChoices(name, members)


class ImageModelQuerySet(models.QuerySet):
    def public(self):
        return self.filter(is_test_model=False)


class ImageModel(models.Model):
    """An image-generation model that the platform benchmarks."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    hf_repo = models.CharField(max_length=200, blank=True)
    licence = models.CharField(max_length=64, blank=True)
    parameters_billion = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    default_steps = models.PositiveIntegerField()
    default_guidance = models.FloatField()
    default_width = models.PositiveIntegerField(default=1024)
    default_height = models.PositiveIntegerField(default=1024)
    description = models.TextField(blank=True)
    # Test models (the tiny random pipeline) are real data but never shown in public
    # listings by default, and never mixed with the model they imitate.
    is_test_model = models.BooleanField(default=False)
    sort_order = models.PositiveIntegerField(default=0)

    objects = ImageModelQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "slug"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("checkpages:model", args=[self.slug])


class GpuQuerySet(models.QuerySet):
    def listed(self):
        """Cards shown in public listings: not auto-created from an unknown name."""
        return self.filter(is_flagged=False)


class Gpu(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    vendor = models.CharField(max_length=32, default="NVIDIA")
    # e.g. "GeForce RTX 40", "Data centre", "CPU"; pages group cards by family.
    family = models.CharField(max_length=64, blank=True)
    # The names NVML reports for this card (nvmlDeviceGetName), matched case-insensitively.
    nvml_names = models.JSONField(default=list, blank=True)
    vram_mb = models.PositiveIntegerField(null=True, blank=True)
    architecture = models.CharField(max_length=32, blank=True)
    compute_capability = models.CharField(max_length=8, blank=True)
    sm = models.CharField(max_length=16, blank=True)
    memory_bandwidth_gbs = models.FloatField(null=True, blank=True)
    bf16_tflops = models.FloatField(null=True, blank=True, help_text="Dense BF16 tensor TFLOPS")
    # Null where the card has no FP8 tensor cores (before Ada Lovelace).
    fp8_tflops = models.FloatField(null=True, blank=True, help_text="Dense FP8 tensor TFLOPS")
    board_power_w = models.PositiveIntegerField(null=True, blank=True)
    is_laptop = models.BooleanField(default=False)
    # Created automatically from a GPU name the catalog did not know; awaits review.
    is_flagged = models.BooleanField(default=False)
    sort_order = models.PositiveIntegerField(default=0)

    objects = GpuQuerySet.as_manager()

    class Meta:
        ordering = ["sort_order", "slug"]
        verbose_name = "GPU"

    def __str__(self) -> str:
        return self.name

    @property
    def vram_gb(self) -> float | None:
        return None if self.vram_mb is None else self.vram_mb / 1024


# The configuration fields and presets are the contract's (klein_bench.contract).
Runtime = _choices("Runtime", figures.RUNTIMES)
Precision = _choices("Precision", figures.PRECISIONS)
Offload = _choices("Offload", figures.OFFLOADS)
Preset = _choices("Preset", {p.name: p.label for p in catalog.PRESETS.values()})


# Callables, so that a value added to the contract needs no migration.
def runtime_choices() -> list[tuple[str, str]]:
    return Runtime.choices


def precision_choices() -> list[tuple[str, str]]:
    return Precision.choices


def offload_choices() -> list[tuple[str, str]]:
    return Offload.choices


def preset_choices() -> list[tuple[str, str]]:
    return Preset.choices


def preset_for(precision: str, offload: str) -> str:
    """The standard preset with this precision and offload; blank when none has them."""
    preset = catalog.preset_for(precision, offload)
    return preset.name if preset else ""


class Configuration(models.Model):
    """The things that change the numbers. Results are grouped by configuration."""

    runtime = models.CharField(max_length=16, choices=runtime_choices)
    precision = models.CharField(max_length=16, choices=precision_choices)
    offload = models.CharField(max_length=16, choices=offload_choices)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    steps = models.PositiveIntegerField()
    # Derived from precision and offload; blank when no standard preset matches.
    preset = models.CharField(max_length=32, choices=preset_choices, blank=True)

    class Meta:
        ordering = ["runtime", "precision", "offload", "width", "height", "steps"]
        constraints = [
            models.UniqueConstraint(
                fields=["runtime", "precision", "offload", "width", "height", "steps"],
                name="unique_configuration",
            )
        ]

    def __str__(self) -> str:
        return self.label

    def save(self, *args, **kwargs):
        self.preset = preset_for(self.precision, self.offload)
        super().save(*args, **kwargs)

    @property
    def slug(self) -> str:
        size = f"{self.width}x{self.height}"
        return f"{self.runtime}-{self.precision}-{self.offload}-{size}-{self.steps}"

    @property
    def label(self) -> str:
        name = self.preset or f"{self.precision} {self.offload} offload"
        runtime = self.get_runtime_display()
        return f"{name} ({runtime}, {self.width}x{self.height}, {self.steps} steps)"


class PublishedClaimQuerySet(models.QuerySet):
    def for_pair(self, model, gpu):
        """Claims about this card, and the model's claims that name no single card."""
        return self.filter(model=model).filter(Q(gpu=gpu) | Q(gpu__isnull=True))


class PublishedClaim(models.Model):
    """A published figure, shown beside the community's measurements with its source."""

    model = models.ForeignKey(ImageModel, on_delete=models.CASCADE, related_name="claims")
    # Null when the claim names a class of cards ("16 GB-class") rather than one card.
    gpu = models.ForeignKey(
        Gpu, on_delete=models.CASCADE, related_name="claims", null=True, blank=True
    )
    gpu_label = models.CharField(max_length=64)
    path = models.CharField(max_length=128, help_text="How it was run, in the source's words")
    configuration = models.ForeignKey(
        Configuration, on_delete=models.SET_NULL, null=True, blank=True, related_name="claims"
    )
    figure = models.CharField(max_length=128, help_text="The claim as published")
    seconds_per_image = models.FloatField(null=True, blank=True)
    peak_vram_gb = models.FloatField(null=True, blank=True)
    # VRAM left for the model on a card that drives a display (a line on memory plots).
    usable_vram_gb = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=128)
    source_url = models.URLField(blank=True)
    note = models.TextField(blank=True)

    objects = PublishedClaimQuerySet.as_manager()

    class Meta:
        ordering = ["model", "gpu_label", "source"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "gpu_label", "path", "source"], name="unique_claim"
            )
        ]

    def __str__(self) -> str:
        return f"{self.source}: {self.gpu_label} {self.figure}"


class Contributor(models.Model):
    """A contributor is an Ed25519 key; trusted on first use and bound to its key id."""

    key_id = models.CharField(max_length=40, unique=True)
    public_key = models.CharField(max_length=64, help_text="Raw Ed25519 public key, hex")
    display_name = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.display_name or self.key_id

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class SubmissionStatus(models.TextChoices):
    ACCEPTED = "accepted", "accepted"
    FLAGGED = "flagged", "flagged by a moderator"
    REJECTED = "rejected", "rejected by a moderator"
    WITHDRAWN = "withdrawn", "withdrawn by its contributor"


# Statuses whose results count in summaries. A flagged result stays visible on its
# permalink with the moderator's reason but leaves the aggregates, like a rejected one.
COUNTED_STATUSES = (SubmissionStatus.ACCEPTED,)

Comparability = _choices(
    "Comparability",
    {k: v for k, v in comparability.CLASSES.items() if k != comparability.SELF_REPORTED},
)


def comparability_choices() -> list[tuple[str, str]]:
    return Comparability.choices


# What a summary counts: accepted, protocol-exact results whose image agrees with the
# consensus. The others stay listed, labelled, and never move a median or a verdict.
COUNTED = Q(
    submission__status__in=COUNTED_STATUSES,
    comparability=comparability.PROTOCOL_EXACT,
    image_differs=False,
)
# The same rule over a row of these columns.
COUNTED_COLUMNS = ("submission__status", "comparability", "image_differs")


def is_counted(status: str, comparability_class: str, image_differs: bool) -> bool:
    return (
        status in COUNTED_STATUSES
        and comparability_class == comparability.PROTOCOL_EXACT
        and not image_differs
    )


class Submission(models.Model):
    contributor = models.ForeignKey(
        Contributor, on_delete=models.PROTECT, related_name="submissions"
    )
    client_submission_id = models.UUIDField()
    nonce = models.CharField(max_length=64)
    # The request body exactly as received, so anyone can re-verify the signature.
    body = models.TextField()
    body_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(help_text="The envelope's creation time")
    received_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        max_length=16, choices=SubmissionStatus.choices, default=SubmissionStatus.ACCEPTED
    )
    moderation_reason = models.TextField(blank=True)
    moderated_at = models.DateTimeField(null=True, blank=True)
    # The 201 answer, replayed for an identical retry of the same submission id.
    response = models.JSONField(null=True, blank=True)
    # The contributor's signed withdrawal, kept verbatim as the proof that they asked.
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawal_reason = models.TextField(blank=True)
    withdrawal_body = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["contributor", "client_submission_id"], name="unique_submission_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contributor.key_id} {self.client_submission_id}"


class UsedNonce(models.Model):
    """A nonce a key has signed with, whatever the purpose: each is accepted once, so no
    signed document (a contribution or a withdrawal) can be replayed as another."""

    contributor = models.ForeignKey(Contributor, on_delete=models.CASCADE, related_name="nonces")
    nonce = models.CharField(max_length=64)
    purpose = models.CharField(max_length=40)
    used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contributor", "nonce"], name="unique_used_nonce")
        ]

    def __str__(self) -> str:
        return f"{self.contributor.key_id} {self.nonce}"


Outcome = _choices("Outcome", figures.OUTCOMES)
Stage = _choices("Stage", figures.STAGES)


def outcome_choices() -> list[tuple[str, str]]:
    return Outcome.choices


def stage_choices() -> list[tuple[str, str]]:
    return Stage.choices


class ResultQuerySet(models.QuerySet):
    def counted(self):
        """Results that count in summaries: accepted (not withdrawn, rejected or flagged),
        protocol-exact, and with an image that agrees with the consensus."""
        return self.filter(COUNTED)

    def apart(self):
        """Accepted results that summaries leave out and pages show apart, labelled: other
        settings (same-stack) or an image that strays from the consensus."""
        return self.filter(submission__status__in=COUNTED_STATUSES).exclude(COUNTED)

    def for_pair(self, model, gpu):
        return self.filter(model=model, gpu=gpu)

    def for_group(self, model, gpu, configuration, synthetic=False):
        return self.filter(model=model, gpu=gpu, configuration=configuration, synthetic=synthetic)


class Result(models.Model):
    submission = models.OneToOneField(Submission, on_delete=models.CASCADE, related_name="result")
    contributor = models.ForeignKey(Contributor, on_delete=models.PROTECT, related_name="results")
    model = models.ForeignKey(ImageModel, on_delete=models.PROTECT, related_name="results")
    gpu = models.ForeignKey(Gpu, on_delete=models.PROTECT, related_name="results")
    configuration = models.ForeignKey(
        Configuration, on_delete=models.PROTECT, related_name="results"
    )
    protocol_version = models.CharField(max_length=32)
    protocol_hash = models.CharField(max_length=80)
    # Full-size architecture with random weights: real speed and memory, no real image.
    synthetic = models.BooleanField(default=False)

    outcome = models.CharField(max_length=16, choices=outcome_choices)
    failed_stage = models.CharField(max_length=16, choices=stage_choices, blank=True)
    error_message = models.TextField(blank=True)

    # Seconds per image over the timed runs (warm-up excluded); null when nothing ran.
    runs = models.JSONField(default=list, help_text="Per-run timings, as submitted")
    n_runs = models.PositiveIntegerField(default=0)
    seconds_median = models.FloatField(null=True, blank=True)
    seconds_p10 = models.FloatField(null=True, blank=True)
    seconds_p90 = models.FloatField(null=True, blank=True)
    seconds_mean = models.FloatField(null=True, blank=True)
    seconds_stdev = models.FloatField(null=True, blank=True)
    seconds_cv = models.FloatField(null=True, blank=True)
    load_seconds = models.FloatField(null=True, blank=True)
    text_encoding_seconds = models.FloatField(null=True, blank=True)
    denoising_seconds = models.FloatField(null=True, blank=True)
    vae_decode_seconds = models.FloatField(null=True, blank=True)

    # Memory, MiB: one column per memory figure of the contract, added below the class.

    # How the headline peak_vram_mb (a memory figure column) was read (docs/measurements.md).
    vram_source = models.CharField(max_length=32, blank=True)
    # Where the peak fell: the phase (load, warm-up, timed) and the pipeline stage.
    peak_phase = models.CharField(max_length=16, blank=True)
    peak_stage = models.CharField(max_length=16, blank=True)
    # Per-phase peaks as reported: {"load": {"peak_vram_mb": ..., "stage": ...}, ...}.
    memory_phases = models.JSONField(default=dict, blank=True)
    # The phase a failed or spilled run stopped in.
    failed_phase = models.CharField(max_length=16, blank=True)

    # What really ran, as the payload's kernels section says (observed by the agent for
    # diffusers, read from ComfyUI's log for ComfyUI): weight and compute dtypes per
    # component, FP8 matmuls, the attention kernel, ComfyUI's loading of each model.
    kernels = models.JSONField(default=dict, blank=True)
    attention_kernel = models.CharField(max_length=32, blank=True)
    fp8_kernels_ran = models.BooleanField(null=True, blank=True)

    # The host link and the card's state: offload figures depend on the link as much as
    # the card, and a power cap or throttling changes every figure.
    pcie_generation = models.PositiveSmallIntegerField(null=True, blank=True)
    pcie_width = models.PositiveSmallIntegerField(null=True, blank=True)
    power_limit_share = models.FloatField(null=True, blank=True)
    capped = models.BooleanField(null=True, blank=True)
    throttled = models.BooleanField(null=True, blank=True)

    # Floating-point work per image (klein_bench.contract.work), and the share of the
    # card's dense tensor peak for the precision that ran that the median reached.
    work_tflop = models.FloatField(null=True, blank=True)
    transformer_tflop = models.FloatField(null=True, blank=True)
    peak_share = models.FloatField(null=True, blank=True)

    energy_joules_per_image = models.FloatField(null=True, blank=True)

    driver_version = models.CharField(max_length=32, blank=True)
    torch_version = models.CharField(max_length=64, blank=True)
    diffusers_version = models.CharField(max_length=32, blank=True)
    runtime_version = models.CharField(max_length=64, blank=True)
    agent_version = models.CharField(max_length=32, blank=True)
    drives_display = models.BooleanField(null=True, blank=True)
    # Everything else the agent reported about the machine (no personal data).
    environment = models.JSONField(default=dict, blank=True)
    telemetry = models.JSONField(default=dict, blank=True)

    image_phash = models.CharField(max_length=32, blank=True)
    thumbnail_png = models.BinaryField(null=True, blank=True)
    # Set by benchmarks.services.consensus: the image strays from what most independent
    # contributors' images of this model, runtime and precision look like.
    # db_default too, on the new columns: rows inserted in bulk by SQL (perf/dataset.py) get
    # the same values as the ORM's.
    image_differs = models.BooleanField(default=False, db_default=False)

    # klein_bench.contract.comparability: protocol-exact results alone make medians and
    # verdicts; `deviations` says, in words, what makes one other than that.
    comparability = models.CharField(
        max_length=16,
        choices=comparability_choices,
        default=comparability.PROTOCOL_EXACT,
        db_default=comparability.PROTOCOL_EXACT,
    )
    deviations = models.JSONField(
        default=list, db_default=models.Value([], output_field=models.JSONField()), blank=True
    )
    # The salted hash of the card's UUID the agent reported: results of one card under
    # several keys (a rotated key) count as one independent contributor.
    gpu_uuid_hash = models.CharField(max_length=64, blank=True, db_default="")
    # The result this one reproduces (`klein-bench reproduce ID`), as its payload says.
    reproduction_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reproductions"
    )

    # Set by aggregation: a modified z-score above 3.5 within its group.
    is_outlier = models.BooleanField(default=False)
    # Set by aggregation: whether its group's summary counts it (true), saw it and leaves
    # it out (false), or has not taken it yet (null).
    summarized = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped on every change that affects aggregates (new, withdrawn, moderated), so
    # reconcile can find groups whose summary is older than their results.
    changed_at = models.DateTimeField(auto_now=True, db_index=True)

    objects = ResultQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # A group's results, and (for reconcile) the newest change among them.
            models.Index(
                fields=["model", "gpu", "configuration", "synthetic", "changed_at"],
                name="result_group_changed",
            ),
            models.Index(fields=["created_at", "id"], name="result_created"),
            # The results a group's summary has not taken yet: few at any time.
            models.Index(
                fields=["model", "gpu", "configuration", "synthetic"],
                condition=Q(summarized__isnull=True),
                name="result_not_summarized",
            ),
        ]

    def __str__(self) -> str:
        return f"Result {self.pk}: {self.model.slug} on {self.gpu.slug}"

    def get_absolute_url(self) -> str:
        return reverse("checkpages:result", args=[self.pk])


class Verdict(models.TextChoices):
    RUNS = "runs", "runs"
    NEEDS_OFFLOAD = "needs_offload", "needs offload"
    DOES_NOT_FIT = "does_not_fit", "does not fit"
    UNKNOWN = "unknown", "unknown"


class SummaryQuerySet(models.QuerySet):
    def for_pair(self, model, gpu):
        return self.filter(model=model, gpu=gpu)

    def real(self):
        return self.filter(synthetic=False)

    def synthetic(self):
        return self.filter(synthetic=True)

    def stale(self):
        """Summaries older than the newest change to their group's results."""
        newest = Result.objects.filter(
            model=models.OuterRef("model"),
            gpu=models.OuterRef("gpu"),
            configuration=models.OuterRef("configuration"),
            synthetic=models.OuterRef("synthetic"),
        ).order_by("-changed_at")
        return self.annotate(
            results_changed_at=models.Subquery(newest.values("changed_at")[:1])
        ).filter(Q(results_changed_at__gt=models.F("computed_at")))


class Summary(models.Model):
    """Aggregates of one (model, GPU, configuration) group, read by pages and the API.

    Synthetic results (full-size architecture, random weights) form groups of their own,
    so they never mix with measurements of the real model.
    """

    model = models.ForeignKey(ImageModel, on_delete=models.CASCADE, related_name="summaries")
    gpu = models.ForeignKey(Gpu, on_delete=models.CASCADE, related_name="summaries")
    configuration = models.ForeignKey(
        Configuration, on_delete=models.CASCADE, related_name="summaries"
    )
    synthetic = models.BooleanField(default=False)
    n_results = models.PositiveIntegerField(default=0)
    # Independent contributors: distinct keys, keys that measured the same card counted once.
    n_contributors = models.PositiveIntegerField(default=0)
    # Independent contributors whose own median lies within group_stats.REPRODUCED_TOLERANCE
    # of the summary's median; `reproduced` once at least REPRODUCED_MIN_CONTRIBUTORS do.
    n_agreeing = models.PositiveIntegerField(default=0, db_default=0)
    reproduced = models.BooleanField(default=False, db_default=False)
    n_success = models.PositiveIntegerField(default=0)
    n_out_of_memory = models.PositiveIntegerField(default=0)
    n_error = models.PositiveIntegerField(default=0)
    n_outliers = models.PositiveIntegerField(default=0)
    # Successful results behind the speed figures (outliers left out).
    n_timed = models.PositiveIntegerField(default=0)
    # Failed results by outcome, then stage: {"out_of_memory": {"vae_decode": 3}}.
    failures_by_stage = models.JSONField(default=dict, blank=True)

    # Headline seconds per image: over successful, non-outlier results' medians.
    seconds_median = models.FloatField(null=True, blank=True)
    seconds_p10 = models.FloatField(null=True, blank=True)
    seconds_p90 = models.FloatField(null=True, blank=True)
    # Every non-outlier successful result's median, sorted, for distribution plots;
    # evenly spaced quantiles past group_stats.SECONDS_VALUES_CAP of them.
    seconds_values = models.JSONField(default=list, blank=True)
    # Memory, MiB: the median and largest of each aggregated memory figure of the
    # contract, two columns each, added below the class.

    energy_joules_per_image_median = models.FloatField(null=True, blank=True)

    newest_versions = models.JSONField(default=dict, blank=True)
    # Per-version medians for trend plots: {"driver": {"580.1": 2.3}, "diffusers": {...}}.
    trend = models.JSONField(default=dict, blank=True)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, default=Verdict.UNKNOWN)
    computed_at = models.DateTimeField()
    # False once new results were folded into sketches: quantiles are then within
    # group_stats.SKETCH_ACCURACY of the exact ones until reconcile recomputes the group.
    exact = models.BooleanField(default=True)

    objects = SummaryQuerySet.as_manager()

    class Meta:
        ordering = ["model", "gpu", "configuration"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "gpu", "configuration", "synthetic"], name="unique_summary_group"
            )
        ]
        verbose_name_plural = "summaries"

    def __str__(self) -> str:
        return f"{self.model.slug} on {self.gpu.slug}, {self.configuration}"


# One column per memory figure of the contract (MiB), so that a new figure needs its entry
# in klein_bench.contract.figures and a migration, not an edit here.
for _name in figures.MEMORY_FIGURES:
    Result.add_to_class(_name, models.FloatField(null=True, blank=True))
for _name in figures.AGGREGATED_MEMORY_FIGURES:
    Summary.add_to_class(f"{_name}_median", models.FloatField(null=True, blank=True))
    Summary.add_to_class(f"{_name}_max", models.FloatField(null=True, blank=True))


class SummarySketches(models.Model):
    """What a large group's summary keeps to take new results one at a time: a DDSketch
    per distribution and the spread its outlier test measures against. Pages never read
    it; see benchmarks.services.group_stats."""

    summary = models.OneToOneField(
        Summary, on_delete=models.CASCADE, primary_key=True, related_name="sketches"
    )
    # Name -> the ddsketch library's protobuf encoding, base64.
    sketches = models.JSONField(default=dict)
    # The timed results' median and median and mean absolute deviations at the group's
    # last exact computation (klein_bench.contract.stats.Spread); null without any.
    spread = models.JSONField(null=True)

    class Meta:
        verbose_name_plural = "summary sketches"

    def __str__(self) -> str:
        return f"Sketches of {self.summary}"


# Registered with the app from here: the consensus image and hand-made reports.
from benchmarks.trust_models import ImageConsensus, SelfReport  # noqa: E402, F401
