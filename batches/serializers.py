from rest_framework import serializers


class BatchItemSerializer(serializers.Serializer):
    input = serializers.JSONField(default=dict)
    contact_id = serializers.UUIDField(required=False, allow_null=True)


class BatchRequestSerializer(serializers.Serializer):
    items = BatchItemSerializer(many=True, allow_empty=True, max_length=1000)


class BatchAcceptedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    count = serializers.IntegerField()
    executions = serializers.ListField(child=serializers.UUIDField())


class BatchSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    connector = serializers.UUIDField()
    count = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
