"""Input and output shapes of the template marketplace (docs/api.md §10).

`ConnectorTemplateSerializer` both presents a template and validates staff writes. Its `definition` is the
connector validator itself (`connectors.validation.DefinitionSerializer`), nested, so a template saves exactly
what a connector would accept and its errors read `{"definition": {"steps": [{}, {"url": ["..."]}]}}`.
"""

from typing import Any

from django.utils.text import slugify
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from connectors.definition_fields import StrictSerializer, StringField
from connectors.engine.spec import DEFAULT_MAX_DURATION_SECONDS
from connectors.serializers import ConnectorSerializer
from connectors.validation import DefinitionSerializer
from credentials.names import FIELD_NAME_RE, SERVICE_NAME_RE
from templates_market.models import ConnectorTemplate

MAX_TAGS = 20
MAX_TAG_LENGTH = 50
MAX_REQUIRED_CREDENTIALS = 20
MAX_CREDENTIAL_FIELDS = 20


class RequiredCredentialSerializer(StrictSerializer):
    """One service a template needs a workspace credential for, and how to get it."""

    service_name = serializers.RegexField(
        SERVICE_NAME_RE,
        error_messages={"invalid": "Use lowercase letters, digits, _ and -, starting with a letter or digit."},
    )
    fields = serializers.ListField(
        child=serializers.RegexField(
            FIELD_NAME_RE,
            error_messages={"invalid": "Field names use letters, digits, _ and - (not first), at most 64."},
        ),
        allow_empty=False,
        max_length=MAX_CREDENTIAL_FIELDS,
    )
    help = StringField(allow_blank=True, default="", max_length=2000, trim_whitespace=False)

    def validate_fields(self, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Field names must be unique.")
        return value


class TagsField(serializers.ListField):
    child = StringField(max_length=MAX_TAG_LENGTH)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_TAGS)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(set(value)) != len(value):
            raise serializers.ValidationError("Tags must be unique.")
        return value


def _definition_representation(definition: dict) -> dict:
    return {
        "input_schema": definition.get("input_schema", {}),
        "max_duration_seconds": definition.get("max_duration_seconds", DEFAULT_MAX_DURATION_SECONDS),
        "steps": definition.get("steps", []),
        "contact_mapping": definition.get("contact_mapping", {}),
    }


class TemplateDefinitionSerializer(DefinitionSerializer):
    """A template's connector definition, validated exactly as a connector's; shown with every default filled in."""

    def to_representation(self, instance: dict) -> dict:
        return _definition_representation(instance)


class ConnectorTemplateSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = StringField(max_length=200)
    slug = serializers.SlugField(
        max_length=100,
        required=False,
        validators=[UniqueValidator(ConnectorTemplate.objects.all(), message="A template with this slug exists.")],
        help_text="Unique; derived from the name when omitted.",
    )
    description = StringField(max_length=5000, allow_blank=True, default="")
    category = StringField(max_length=100, allow_blank=True, default="")
    tags = TagsField(default=list)
    definition = TemplateDefinitionSerializer()
    required_credentials = RequiredCredentialSerializer(many=True, default=list, max_length=MAX_REQUIRED_CREDENTIALS)
    is_public = serializers.BooleanField(default=True)
    is_featured = serializers.BooleanField(default=False)
    is_official = serializers.BooleanField(default=False)
    install_count = serializers.IntegerField(read_only=True)
    rating_average = serializers.FloatField(read_only=True, allow_null=True)
    rating_count = serializers.IntegerField(read_only=True)
    version = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def validate_required_credentials(self, value: list) -> list[dict]:
        seen: set[str] = set()
        errors: list[dict] = []
        for item in value:
            errors.append({"service_name": ["This service is listed twice."]} if item["service_name"] in seen else {})
            seen.add(item["service_name"])
        if any(errors):
            raise serializers.ValidationError(errors)
        return [dict(item) for item in value]

    def validate(self, attrs: dict) -> dict:
        if "definition" in attrs:
            attrs["definition"] = plain(attrs["definition"])
        return attrs


def plain(value: Any) -> Any:
    """`value` with every OrderedDict turned into a dict, as it will read back from the JSON column."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def default_slug(name: str) -> str:
    return slugify(name)[:90].strip("-") or "template"


class TemplateInstallSerializer(serializers.Serializer):
    name = StringField(
        max_length=200,
        required=False,
        help_text="Name of the new connector; defaults to the template's name.",
    )


class TemplateRateSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    review = StringField(max_length=5000, allow_blank=True, default="")


class RatingSummarySerializer(serializers.Serializer):
    rating_average = serializers.FloatField(allow_null=True)
    rating_count = serializers.IntegerField()


def error_paths(detail: Any, prefix: str = "") -> list[tuple[str, str]]:
    """DRF error detail flattened to (path, message) pairs, e.g. ("definition.steps[1].url", "...")."""
    if isinstance(detail, dict):
        found = []
        for key, item in detail.items():
            found += error_paths(item, f"{prefix}.{key}" if prefix else str(key))
        return found
    if isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            return [(prefix or "non_field_errors", str(item)) for item in detail]
        found = []
        for index, item in enumerate(detail):
            found += error_paths(item, f"{prefix}[{index}]")
        return found
    return [(prefix or "non_field_errors", str(detail))]


class TemplateInstallResultSerializer(serializers.Serializer):
    connector = ConnectorSerializer(help_text="The new connector, as GET /api/v1/connectors/{id} shows it.")
    missing_credentials = serializers.ListField(
        child=serializers.CharField(),
        help_text="Required services the workspace has no credential for yet; add them before executing.",
    )
