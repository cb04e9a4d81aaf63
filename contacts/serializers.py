from rest_framework import serializers

from contacts.models import Contact

MAX_CUSTOM_FIELDS = 100


class ContactSerializer(serializers.ModelSerializer):
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
