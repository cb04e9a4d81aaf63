from django.conf import settings
from rest_framework import serializers

from triggers.models import Trigger, TriggerType


class TriggerSerializer(serializers.ModelSerializer):
    """Type fields appear for their type only: `url` and `require_signature` for webhooks, `cron`,
    `timezone` and `next_run_at` for schedules. The signing secret is added by the create view, once."""

    url = serializers.SerializerMethodField(help_text="Webhook triggers: where to POST (no other authentication).")

    class Meta:
        model = Trigger
        fields = [
            "id",
            "type",
            "is_active",
            "input",
            "created_at",
            "last_fired_at",
            "url",
            "require_signature",
            "cron",
            "timezone",
            "next_run_at",
        ]
        read_only_fields = fields

    def get_url(self, trigger: Trigger) -> str | None:
        if trigger.type != TriggerType.WEBHOOK:
            return None
        path = f"/hooks/{trigger.token}"
        base = settings.PUBLIC_BASE_URL
        if base:
            return base.rstrip("/") + path
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def to_representation(self, trigger: Trigger) -> dict:
        data = super().to_representation(trigger)
        hidden = (
            ("cron", "timezone", "next_run_at") if trigger.type == TriggerType.WEBHOOK else ("url", "require_signature")
        )
        for name in hidden:
            data.pop(name)
        return data


class TriggerCreatedSerializer(TriggerSerializer):
    signing_secret = serializers.CharField(read_only=True, help_text="Webhook triggers: shown in this response only.")

    class Meta(TriggerSerializer.Meta):
        fields = [*TriggerSerializer.Meta.fields, "signing_secret"]
        read_only_fields = fields


class TriggerWriteSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=TriggerType.choices)
    is_active = serializers.BooleanField(required=False)
    input = serializers.DictField(required=False)
    require_signature = serializers.BooleanField(required=False)
    cron = serializers.CharField(required=False, max_length=200)
    timezone = serializers.CharField(required=False, max_length=64)


class TriggerUpdateSerializer(TriggerWriteSerializer):
    type = serializers.ChoiceField(choices=TriggerType.choices, required=False)


class HookAcceptedSerializer(serializers.Serializer):
    execution_id = serializers.UUIDField()
