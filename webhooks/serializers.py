from urllib.parse import urlsplit

from rest_framework import serializers

from webhooks.models import EVENTS, WebhookDelivery, WebhookEndpoint


class WebhookEndpointSerializer(serializers.ModelSerializer):
    connector = serializers.UUIDField(source="connector_id", allow_null=True, read_only=True)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "events", "connector", "is_active", "created_at"]
        read_only_fields = fields


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret: shown in this response only.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookEndpointWriteSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000)
    events = serializers.ListField(child=serializers.ChoiceField(choices=EVENTS), min_length=1, max_length=len(EVENTS))
    connector = serializers.UUIDField(required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)

    def validate_url(self, value: str) -> str:
        """Only the form is judged here; whether the address may be called is judged at each delivery."""
        try:
            parts = urlsplit(value)
        except ValueError:
            raise serializers.ValidationError("Must be an http or https URL.") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value):
            raise serializers.ValidationError("Must be an http or https URL.")
        return value

    def validate_events(self, value: list[str]) -> list[str]:
        return sorted(set(value), key=EVENTS.index)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    execution = serializers.UUIDField(source="execution_id", allow_null=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "execution",
            "status",
            "attempts",
            "response_status_code",
            "last_attempt_at",
            "next_attempt_at",
        ]
        read_only_fields = fields
