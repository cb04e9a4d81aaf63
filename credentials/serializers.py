"""Parsing and presenting credentials: values go in, only names come out, no error ever repeats a value."""

from collections.abc import Mapping

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from credentials.models import Credential, CredentialType
from credentials.names import FIELD_NAME_RE, SERVICE_NAME_RE
from credentials.services import MAX_FIELDS, MAX_VALUE_BYTES
from credentials.types import field_errors, rate_limit_errors


class CredentialSerializer(serializers.ModelSerializer):
    """A stored credential as listed: its service and field names, type and limits, never its values."""

    fields = serializers.ListField(
        source="field_names", child=serializers.CharField(), read_only=True, help_text="Field names, sorted."
    )
    rate_limit = serializers.JSONField(
        read_only=True, allow_null=True, help_text='{"requests": N, "per_seconds": S} or null.'
    )
    token_expires_at = serializers.SerializerMethodField(
        help_text="OAuth2: when the cached access token stops being used (null without one); null for static."
    )

    class Meta:
        model = Credential
        fields = [
            "service_name",
            "type",
            "fields",
            "rate_limit",
            "token_expires_at",
            "created_at",
            "updated_at",
            "last_used_at",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "format": "date-time", "nullable": True})
    def get_token_expires_at(self, credential: Credential) -> str | None:
        if credential.type == CredentialType.STATIC or credential.token_expires_at is None:
            return None
        return serializers.DateTimeField().to_representation(credential.token_expires_at)


@extend_schema_field(
    {
        "type": "object",
        "minProperties": 1,
        "maxProperties": MAX_FIELDS,
        # OpenAPI 3.0 has no `propertyNames`; the name rule is stated in the description instead.
        "additionalProperties": {"type": "string", "minLength": 1, "maxLength": MAX_VALUE_BYTES},
        "description": (
            "Field name -> secret value; 1 to 50 fields. Names are 1 to 64 letters, digits, '_' or '-', not "
            "starting with '-'; values are non-blank strings of at most 8 KiB, encrypted and never returned."
        ),
    }
)
class CredentialFieldsField(serializers.DictField):
    """`{"FIELD": "value", ...}`: 1 to 50 fields, names usable in templates, non-blank values of <= 8 KiB.

    Errors name the field, never the value (a value is a secret even when it is wrong).
    """

    child = serializers.CharField()
    default_error_messages = {
        "not_a_dict": "Expected an object of field names to string values.",
        "empty": "Give at least one field.",
        "too_many": f"At most {MAX_FIELDS} fields.",
        "bad_name": (
            "Field names are 1 to 64 letters, digits, '_' or '-', not starting with '-' "
            "('.' separates template path segments)."
        ),
    }

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            self.fail("not_a_dict")
        if not data:
            self.fail("empty")
        if len(data) > MAX_FIELDS:
            self.fail("too_many")
        errors: dict[str, list[str]] = {}
        for name, value in data.items():
            if not isinstance(name, str) or not FIELD_NAME_RE.match(name):
                # The offending name is not repeated: a secret pasted in the wrong place would be echoed.
                raise serializers.ValidationError(self.error_messages["bad_name"], code="bad_name")
            if not isinstance(value, str):
                errors[name] = ["Must be a string."]
            elif not value.strip():
                errors[name] = ["May not be empty or blank."]
            elif len(value.encode("utf-8")) > MAX_VALUE_BYTES:
                errors[name] = [f"At most {MAX_VALUE_BYTES} bytes (UTF-8)."]
        if errors:
            raise serializers.ValidationError(errors)
        return dict(data)


class CredentialWriteSerializer(serializers.Serializer):
    """`{"service_name", "credentials": {FIELD: value}}`; any other key is refused."""

    service_name = serializers.RegexField(
        SERVICE_NAME_RE,
        max_length=64,
        error_messages={
            "invalid": "Use 1 to 64 lower-case letters, digits, '_' or '-', starting with a letter or digit."
        },
        help_text=(
            "The service the credential is for, as templates name it (`{{workspace.SERVICE.FIELD}}`): 1 to 64 "
            "lower-case letters, digits, '_' or '-', starting with a letter or digit."
        ),
    )
    type = serializers.ChoiceField(
        choices=CredentialType.choices,
        default=CredentialType.STATIC,
        help_text="static (any fields), oauth2_client_credentials or oauth2_refresh_token.",
    )
    credentials = CredentialFieldsField(write_only=True)
    rate_limit = serializers.JSONField(
        required=False,
        allow_null=True,
        default=None,
        help_text='{"requests": N, "per_seconds": S}: requests of steps using it are spaced to at most N per S s.',
    )

    def validate_rate_limit(self, value):
        problems = rate_limit_errors(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def validate(self, attrs):
        errors = field_errors(attrs["type"], attrs["credentials"])
        if errors:
            raise serializers.ValidationError({"credentials": errors})
        return attrs

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError({key: ["Unknown field."] for key in unknown})
        return super().to_internal_value(data)


class CredentialCheckSerializer(serializers.Serializer):
    service_name = serializers.CharField()
    exists = serializers.BooleanField()
