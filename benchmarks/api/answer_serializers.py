"""The check's `answer`: what the check page leads with (benchmarks.services.answers)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from klein_bench.contract.catalog import preset_for
from rest_framework import serializers

from benchmarks.services import answers


class AnswerConfigurationSerializer(serializers.Serializer):
    runtime = serializers.CharField()
    precision = serializers.CharField()
    offload = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    steps = serializers.IntegerField()
    preset = serializers.CharField(allow_null=True)


class AnswerSerializer(serializers.Serializer):
    """The one answer the check page leads with (benchmarks.services.answers)."""

    source = serializers.ChoiceField(
        choices=[answers.MEASURED, answers.ESTIMATED, answers.NOT_MEASURED],
        help_text="measured: from this card's results; estimated: nobody measured the "
        "card (in this configuration), so from the estimate; none: neither",
    )
    verdict = serializers.CharField(
        help_text="A measured verdict (runs, needs_offload, does_not_fit, unknown) when "
        "source is measured, an estimate's verdict (expected_to_fit, needs_offload, "
        "may_not_fit, expected_not_to_fit) when estimated, unknown when none"
    )
    label = serializers.CharField(help_text="The verdict in the page's words")
    preset = serializers.SerializerMethodField(help_text="The ?preset= asked for, if one")
    configuration = serializers.SerializerMethodField(
        help_text="The configuration the answer rests on: the one a user of the card should "
        "run (or the preset's); null when none does"
    )

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_preset(self, obj: answers.Answer) -> str | None:
        return obj.preset or None

    @extend_schema_field(AnswerConfigurationSerializer(allow_null=True))
    def get_configuration(self, obj: answers.Answer) -> dict | None:
        if obj.summary is not None:
            c = obj.summary.configuration
            fields = (c.runtime, c.precision, c.offload, c.width, c.height, c.steps)
            preset = c.preset or None
        elif obj.estimate is not None:
            e = obj.estimate.setup
            fields = (e.runtime, e.precision, e.offload, e.width, e.height, e.steps)
            found = preset_for(e.precision, e.offload)
            preset = found.name if found else None
        else:
            return None
        names = ("runtime", "precision", "offload", "width", "height", "steps")
        return dict(zip(names, fields, strict=True)) | {"preset": preset}
