from django.core.validators import EmailValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts.models import Contact

MAX_CUSTOM_FIELDS = 100


@extend_schema_field(
    {"type": "string", "maxLength": 254, "anyOf": [{"format": "email"}, {"maxLength": 0}], "description": "Or empty."}
)
class OptionalEmailField(serializers.CharField):
    """An email address or an empty string, documented as such (an EmailField is documented as format: email,
    which an empty string breaks)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if value:
            # Checked here rather than as a field validator, which the schema generator would document as
            # format: email.
            EmailValidator(message=serializers.EmailField.default_error_messages["invalid"])(value)
        return value


class ContactSerializer(serializers.ModelSerializer):
    email = OptionalEmailField(max_length=254, allow_blank=True, required=False)
    custom_fields = serializers.DictField(child=serializers.JSONField(), required=False)

    class Meta:
        model = Contact
        fields = [
            "id",
            "email",
            "phone",
            "first_name",
            "last_name",
            "company",
            "job_title",
            "phone_valid",
            "custom_fields",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate_custom_fields(self, value: dict) -> dict:
        if len(value) > MAX_CUSTOM_FIELDS:
            raise serializers.ValidationError(f"At most {MAX_CUSTOM_FIELDS} custom fields.")
        if any(len(key) > 100 or not key for key in value):
            raise serializers.ValidationError("Custom field names must be 1 to 100 characters.")
        return value
