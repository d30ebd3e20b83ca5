"""What the REST API shows of trust: the consensus images, and a result's reproductions."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from klein_bench.contract import consensus
from rest_framework import serializers

from benchmarks.models import ImageConsensus
from benchmarks.services.group_stats import REPRODUCED_TOLERANCE
from benchmarks.site import absolute


class ConsensusImageSerializer(serializers.ModelSerializer):
    protocol = serializers.CharField(source="protocol_version")

    class Meta:
        model = ImageConsensus
        fields = [
            "protocol",
            "runtime",
            "precision",
            "phash",
            "n_agreeing",
            "n_contributors",
            "computed_at",
        ]
        extra_kwargs = {
            "phash": {"help_text": "64-bit perceptual hash of the first timed image, hex"},
            "n_agreeing": {"help_text": "Independent contributors whose image lies near it"},
            "n_contributors": {"help_text": "Independent contributors with an image hash"},
        }


class ConsensusSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="The model's slug")
    threshold_bits = serializers.SerializerMethodField(
        help_text="An image whose hash differs from the consensus in more bits is flagged"
    )
    min_contributors = serializers.SerializerMethodField(
        help_text="Independent contributors who must agree (and be a majority) first"
    )
    images = ConsensusImageSerializer(many=True)

    def get_threshold_bits(self, obj) -> int:
        return consensus.THRESHOLD_BITS

    def get_min_contributors(self, obj) -> int:
        return consensus.MIN_CONTRIBUTORS


class ReproductionSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="copy.pk")
    permalink = serializers.SerializerMethodField()
    gpu = serializers.CharField(source="copy.gpu.slug")
    status = serializers.CharField(source="copy.submission.status")
    agrees = serializers.BooleanField(
        source="found.agrees",
        allow_null=True,
        help_text="On the same card: the same outcome and a median within "
        f"{REPRODUCED_TOLERANCE:.0%}; null on another card (not compared)",
    )
    apart = serializers.FloatField(
        source="found.apart",
        allow_null=True,
        help_text="Medians' distance, share of the original's",
    )

    @extend_schema_field(OpenApiTypes.URI)
    def get_permalink(self, obj) -> str:
        return absolute(
            reverse("checkpages:result", args=[obj["copy"].pk]), self.context.get("request")
        )
