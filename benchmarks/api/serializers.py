"""What the REST API shows of the catalog, results and summaries (read-only)."""

from __future__ import annotations

import base64

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from klein_bench.contract.figures import AGGREGATED_MEMORY_FIGURES, MEMORY_FIGURES
from rest_framework import serializers

from benchmarks import site
from benchmarks.api.answer_serializers import AnswerSerializer
from benchmarks.api.trust_serializers import ReproductionSerializer
from benchmarks.models import (
    Comparability,
    Configuration,
    Gpu,
    ImageModel,
    Preset,
    PublishedClaim,
    Result,
    Stage,
    SubmissionStatus,
    Summary,
    Verdict,
)
from benchmarks.services import answers, estimates, reproductions
from benchmarks.services.group_stats import (
    REPRODUCED_MIN_CONTRIBUTORS,
    REPRODUCED_TOLERANCE,
    SECONDS_VALUES_CAP,
    SKETCH_ACCURACY,
)


def absolute(serializer: serializers.Serializer, path: str) -> str:
    """The path at this site's address (benchmarks.site.site_url of the request)."""
    return site.absolute(path, serializer.context.get("request"))


class ImageModelSerializer(serializers.ModelSerializer):
    parameters_billion = serializers.FloatField(allow_null=True)
    url = serializers.SerializerMethodField(help_text="The model's check page")

    class Meta:
        model = ImageModel
        fields = [
            "slug",
            "name",
            "hf_repo",
            "licence",
            "parameters_billion",
            "default_steps",
            "default_guidance",
            "default_width",
            "default_height",
            "description",
            "is_test_model",
            "url",
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, obj: ImageModel) -> str:
        return absolute(self, obj.get_absolute_url())


class GpuSerializer(serializers.ModelSerializer):
    class Meta:
        model = Gpu
        fields = [
            "slug",
            "name",
            "vendor",
            "family",
            "vram_mb",
            "architecture",
            "compute_capability",
            "sm",
            "memory_bandwidth_gbs",
            "bf16_tflops",
            "board_power_w",
            "is_laptop",
            "is_flagged",
        ]
        extra_kwargs = {
            "is_flagged": {
                "help_text": "Created from a GPU name the catalog did not know; awaits review"
            }
        }


class ConfigurationSerializer(serializers.ModelSerializer):
    slug = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)
    preset = serializers.SerializerMethodField()

    class Meta:
        model = Configuration
        fields = [
            "slug",
            "label",
            "runtime",
            "precision",
            "offload",
            "width",
            "height",
            "steps",
            "preset",
        ]

    # "No value" is null, never "": the schema then needs no "BlankEnum" beside the enum.
    @extend_schema_field(
        serializers.ChoiceField(
            choices=Preset.choices,
            allow_null=True,
            help_text="The standard preset with this precision and offload; null if none",
        )
    )
    def get_preset(self, obj: Configuration) -> str | None:
        return obj.preset or None


class SummarySerializer(serializers.ModelSerializer):
    configuration = ConfigurationSerializer()
    failures_by_stage = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text='Failed results by outcome, then stage: {"out_of_memory": {"vae_decode": 3}, '
        '"error": {"load": 1}}',
    )
    seconds_values = serializers.ListField(
        child=serializers.FloatField(),
        help_text="Non-outlier successful results' median seconds per image, sorted "
        f"(evenly spaced quantiles past {SECONDS_VALUES_CAP} results)",
    )
    newest_versions = serializers.DictField(
        child=serializers.CharField(), help_text="driver, torch, diffusers, runtime, agent"
    )
    trend = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()),
        help_text='Median seconds per image by version: {"driver": {"580.95.05": 2.1}, ...}',
    )
    verdict = serializers.SerializerMethodField()

    @extend_schema_field(
        serializers.ChoiceField(
            choices=Verdict.choices,
            help_text="As the check page shows it: a median peak above the card's memory "
            "(runs that only finished by spilling into system memory) is does_not_fit",
        )
    )
    def get_verdict(self, obj: Summary) -> str:
        return answers.verdict_of(obj, self.context.get("capacity_mib"))

    class Meta:
        model = Summary
        fields = [
            "configuration",
            "synthetic",
            "verdict",
            "n_results",
            "n_contributors",
            "n_agreeing",
            "reproduced",
            "n_success",
            "n_out_of_memory",
            "n_error",
            "n_outliers",
            "n_timed",
            "failures_by_stage",
            "seconds_median",
            "seconds_p10",
            "seconds_p90",
            "seconds_values",
            *(f"{name}_{kind}" for name in AGGREGATED_MEMORY_FIGURES for kind in ("median", "max")),
            "energy_joules_per_image_median",
            "newest_versions",
            "trend",
            "computed_at",
            "exact",
        ]
        extra_kwargs = {
            "n_timed": {"help_text": "Successful results behind the speed figures"},
            "n_contributors": {
                "help_text": "Independent contributors: distinct signing keys, keys whose "
                "results name the same card (its salted UUID hash) counted once"
            },
            "n_agreeing": {
                "help_text": "Independent contributors whose own median lies within "
                f"{REPRODUCED_TOLERANCE:.0%} of seconds_median"
            },
            "reproduced": {
                "help_text": f"At least {REPRODUCED_MIN_CONTRIBUTORS} independent contributors "
                "agree (n_agreeing)"
            },
            "exact": {
                "help_text": "false: new results were folded into quantile sketches since the "
                f"last exact computation, so medians and quantiles are within "
                f"{SKETCH_ACCURACY:.1%} of the exact ones until the next (minutes)"
            },
        }


class ClaimSerializer(serializers.ModelSerializer):
    gpu = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)
    configuration = ConfigurationSerializer(allow_null=True)

    class Meta:
        model = PublishedClaim
        fields = [
            "gpu",
            "gpu_label",
            "path",
            "configuration",
            "figure",
            "seconds_per_image",
            "peak_vram_gb",
            "usable_vram_gb",
            "source",
            "source_url",
            "note",
        ]


class RangeSerializer(serializers.Serializer):
    value = serializers.FloatField(help_text="The estimate")
    low = serializers.FloatField()
    high = serializers.FloatField()


class EstimatedConfigurationSerializer(serializers.Serializer):
    runtime = serializers.CharField(source="setup.runtime")
    precision = serializers.CharField(source="setup.precision")
    offload = serializers.CharField(source="setup.offload")
    width = serializers.IntegerField(source="setup.width")
    height = serializers.IntegerField(source="setup.height")
    steps = serializers.IntegerField(source="setup.steps")
    peak_vram_mb = RangeSerializer(source="memory.mib", help_text="Peak GPU memory, MiB")
    memory_basis = serializers.ChoiceField(
        source="memory.basis",
        choices=[estimates.MEASURED, estimates.ARCHITECTURE_ONLY],
        help_text="measured: the same configuration measured on other cards calibrates the "
        "formula; architecture_only: nobody has measured it",
    )
    memory_cards = serializers.ListField(
        source="memory.cards", child=serializers.CharField(), help_text="GPU slugs"
    )
    fit = serializers.SerializerMethodField()
    verdict = serializers.SerializerMethodField()
    seconds_per_image = serializers.SerializerMethodField(
        help_text="Null when the card has no tensor peak or the configuration is not "
        "expected to fit"
    )
    speed_basis = serializers.SerializerMethodField(
        help_text="same_architecture, other_architectures or architecture_only"
    )
    speed_cards = serializers.SerializerMethodField(help_text="GPU slugs")
    efficiency = serializers.SerializerMethodField(
        help_text="The share of the card's least possible time assumed (from those cards)"
    )

    @extend_schema_field(
        serializers.ChoiceField(
            choices=[estimates.FITS, estimates.TIGHT, estimates.DOES_NOT_FIT],
            allow_null=True,
            help_text="Against the card's memory (and what a display leaves, where known); "
            "null when the card's memory is unknown",
        )
    )
    def get_fit(self, obj) -> str | None:
        return obj.memory.fit or None

    @extend_schema_field(
        serializers.ChoiceField(
            choices=list(estimates.VERDICT_LABELS),
            allow_null=True,
            help_text="This configuration's estimated verdict, from its fit: expected_to_fit "
            "(fully resident), needs_offload (fits with offload), may_not_fit (tight), "
            "expected_not_to_fit; null when the card's memory is unknown",
        )
    )
    def get_verdict(self, obj) -> str | None:
        return estimates.configuration_verdict(obj) or None

    @extend_schema_field(RangeSerializer(allow_null=True))
    def get_seconds_per_image(self, obj) -> dict | None:
        return RangeSerializer(obj.speed.seconds).data if obj.speed else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_speed_basis(self, obj) -> str | None:
        return obj.speed.basis if obj.speed else None

    def get_speed_cards(self, obj) -> list[str]:
        return list(obj.speed.cards) if obj.speed else []

    @extend_schema_field(RangeSerializer(allow_null=True))
    def get_efficiency(self, obj) -> dict | None:
        return RangeSerializer(obj.speed.efficiency).data if obj.speed else None


class EstimateSerializer(serializers.Serializer):
    """Estimates for a pair, kept apart from the measured summaries (docs/estimates.md)."""

    verdict = serializers.SerializerMethodField()
    lead = serializers.SerializerMethodField(
        help_text="Index in configurations of the one the verdict is about"
    )
    configurations = EstimatedConfigurationSerializer(source="estimates", many=True)

    @extend_schema_field(
        serializers.ChoiceField(
            choices=list(estimates.VERDICT_LABELS),
            allow_null=True,
            help_text="The best of the estimated configurations' verdicts: expected_to_fit "
            "(fully resident), needs_offload, may_not_fit, expected_not_to_fit; null when the "
            "card's memory is unknown",
        )
    )
    def get_verdict(self, obj) -> str | None:
        return obj.verdict or None

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_lead(self, obj) -> int | None:
        return obj.estimates.index(obj.lead) if obj.lead is not None else None


class CheckSerializer(serializers.Serializer):
    model = ImageModelSerializer()
    gpu = GpuSerializer()
    verdict = serializers.ChoiceField(
        choices=Verdict.choices,
        help_text="Over real summaries at the model's default resolution and steps: "
        "runs > needs_offload > does_not_fit > unknown",
    )
    summaries = SummarySerializer(
        many=True, help_text="One per configuration; synthetic ones are marked and separate"
    )
    claims = ClaimSerializer(
        many=True, help_text="Published figures for this card, and model-wide ones (gpu null)"
    )
    answer = AnswerSerializer(
        help_text="What the check page leads with: measured beats estimated (the same "
        "answer as the page's headline, table and the overview's cell)"
    )
    estimate = EstimateSerializer(
        allow_null=True,
        help_text="Estimates (never measurements) for the configurations this card has no "
        "result in; null for a test model, a model of unknown architecture, or a CPU",
    )


class ResultSerializer(serializers.ModelSerializer):
    """One result, flat, as in lists and CSV exports."""

    permalink = serializers.SerializerMethodField()
    status = serializers.ChoiceField(
        source="submission.status",
        choices=SubmissionStatus.choices,
        help_text="Only accepted results count in summaries",
    )
    model = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    gpu = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    runtime = serializers.CharField(source="configuration.runtime")
    precision = serializers.CharField(source="configuration.precision")
    offload = serializers.CharField(source="configuration.offload")
    preset = serializers.CharField(source="configuration.preset")
    width = serializers.IntegerField(source="configuration.width")
    height = serializers.IntegerField(source="configuration.height")
    steps = serializers.IntegerField(source="configuration.steps")
    contributor = serializers.CharField(source="contributor.key_id", help_text="Key id")
    failed_stage = serializers.SerializerMethodField()
    comparability = serializers.ChoiceField(
        choices=Comparability.choices,
        help_text="protocol-exact results alone make summaries and verdicts; same-stack "
        "ones ran other settings (deviations says which) and are shown apart",
    )
    deviations = serializers.ListField(
        child=serializers.CharField(), help_text="What makes it other than protocol-exact"
    )
    image_differs = serializers.BooleanField(
        help_text="Its image strays from the consensus of other contributors' images, so "
        "summaries leave it out"
    )
    reproduction_of = serializers.IntegerField(
        source="reproduction_of_id",
        read_only=True,
        allow_null=True,
        help_text="The id of the result this one reproduces, or null",
    )

    class Meta:
        model = Result
        fields = [
            "id",
            "permalink",
            "status",
            "created_at",
            "model",
            "gpu",
            "runtime",
            "precision",
            "offload",
            "preset",
            "width",
            "height",
            "steps",
            "synthetic",
            "protocol_version",
            "outcome",
            "failed_stage",
            "n_runs",
            "seconds_median",
            "seconds_p10",
            "seconds_p90",
            "seconds_mean",
            "seconds_stdev",
            "seconds_cv",
            "load_seconds",
            "text_encoding_seconds",
            "denoising_seconds",
            "vae_decode_seconds",
            *MEMORY_FIGURES,
            "vram_source",
            "peak_phase",
            "peak_stage",
            "failed_phase",
            "attention_kernel",
            "fp8_kernels_ran",
            "pcie_generation",
            "pcie_width",
            "power_limit_share",
            "capped",
            "throttled",
            "work_tflop",
            "transformer_tflop",
            "peak_share",
            "energy_joules_per_image",
            "driver_version",
            "torch_version",
            "diffusers_version",
            "runtime_version",
            "agent_version",
            "drives_display",
            "is_outlier",
            "comparability",
            "deviations",
            "image_differs",
            "reproduction_of",
            "contributor",
        ]

    @extend_schema_field(OpenApiTypes.URI)
    def get_permalink(self, obj: Result) -> str:
        return absolute(self, reverse("checkpages:result", args=[obj.pk]))

    @extend_schema_field(
        serializers.ChoiceField(
            choices=Stage.choices,
            allow_null=True,
            help_text="Where a failed run stopped; null for a success",
        )
    )
    def get_failed_stage(self, obj: Result) -> str | None:
        return obj.failed_stage or None


class RunSerializer(serializers.Serializer):
    seconds = serializers.FloatField()
    text_encoding_seconds = serializers.FloatField(allow_null=True, default=None)
    denoising_seconds = serializers.FloatField(allow_null=True, default=None)
    vae_decode_seconds = serializers.FloatField(allow_null=True, default=None)
    wall_seconds = serializers.FloatField(allow_null=True, default=None)
    prompt_index = serializers.IntegerField(allow_null=True, default=None)
    seed = serializers.IntegerField(allow_null=True, default=None)
    energy_joules = serializers.FloatField(allow_null=True, default=None)


class SignedSubmissionSerializer(serializers.Serializer):
    """The signed document exactly as received, and the key that signed it."""

    submission_id = serializers.UUIDField(source="client_submission_id")
    key_id = serializers.CharField(source="contributor.key_id")
    public_key = serializers.CharField(
        source="contributor.public_key", help_text="Raw Ed25519 public key, hex"
    )
    body = serializers.CharField(
        help_text="The request body verbatim: verify its signature with public_key "
        "(docs/protocol.md)"
    )
    body_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField(help_text="The envelope's created_at")
    received_at = serializers.DateTimeField()


class ResultDetailSerializer(ResultSerializer):
    """Everything about one result, with the signed document so anyone can re-verify it."""

    status_reason = serializers.SerializerMethodField(
        help_text="Why a moderator flagged or rejected it, or why its contributor withdrew it"
    )
    runs = RunSerializer(many=True, help_text="Per-run timings, as submitted")
    environment = serializers.DictField(help_text="Software, OS and GPU details, as reported")
    telemetry = serializers.DictField(help_text="Clocks, temperature, power, as reported")
    memory_phases = serializers.DictField(
        help_text="Peaks per phase (load, warmup, timed) and the stage each fell in"
    )
    kernels = serializers.DictField(
        help_text="What really ran, as submitted (the payload's kernels section): where it "
        "was read (observed by the agent, or ComfyUI's log), the model file, weight and "
        "compute dtypes per component, matmul dtypes and FP8 kernel counts where observed, "
        "whether FP8 matmuls ran, the attention kernel, how ComfyUI loaded each model"
    )
    thumbnail_png = serializers.SerializerMethodField(help_text="Base64 PNG, at most 128x128")
    submission = SignedSubmissionSerializer()
    reproductions = serializers.SerializerMethodField(
        help_text="Results sent as reproductions of this one (klein-bench reproduce), oldest first"
    )

    class Meta(ResultSerializer.Meta):
        fields = [
            *ResultSerializer.Meta.fields,
            "status_reason",
            "protocol_hash",
            "error_message",
            "runs",
            "environment",
            "telemetry",
            "memory_phases",
            "kernels",
            "image_phash",
            "thumbnail_png",
            "changed_at",
            "reproductions",
            "submission",
        ]

    def get_status_reason(self, obj: Result) -> str:
        if obj.submission.status == SubmissionStatus.WITHDRAWN:
            return obj.submission.withdrawal_reason
        return obj.submission.moderation_reason

    @extend_schema_field(ReproductionSerializer(many=True))
    def get_reproductions(self, obj: Result) -> list[dict]:
        found = [{"copy": copy, "found": agreed} for copy, agreed in reproductions.of(obj)]
        return ReproductionSerializer(found, many=True).data

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_thumbnail_png(self, obj: Result) -> str | None:
        data = obj.thumbnail_png
        return base64.b64encode(bytes(data)).decode("ascii") if data else None
