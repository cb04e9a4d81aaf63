"""Serializer fields of connector definitions: strict objects (unknown keys are errors), strings that refuse
other JSON types, template strings whose syntax is checked, maps of templates, HTTP methods. Used by the
definition validator (`connectors.validation`) and the other serializers that take definition-like input.
"""

import re

from rest_framework import serializers

from connectors.engine.spec import MAX_ENTRIES, MAX_HEADER_VALUE_LENGTH, MAX_TEMPLATE_LENGTH
from connectors.engine.templating import TemplateSyntaxError, compile_template


def check_template(source: str) -> None:
    """Raises ValidationError if `source` is not a valid template."""
    try:
        compile_template(source)
    except TemplateSyntaxError as error:
        raise serializers.ValidationError(str(error)) from None


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know, so a typo such as `time_out` is an error rather than silently ignored."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields)) if isinstance(data, dict) else []
        unknown_errors = {key: ["Unknown field."] for key in unknown}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as error:
            if isinstance(error.detail, dict):
                raise serializers.ValidationError({**error.detail, **unknown_errors}) from None
            raise
        if unknown_errors:
            raise serializers.ValidationError(unknown_errors)
        return value


class StringField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into strings (`5` is not `"5"`)."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        return super().to_internal_value(data)


class TemplateField(serializers.CharField):
    """A string holding a template; its syntax is checked."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_TEMPLATE_LENGTH)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Must be a string.")
        value = super().to_internal_value(data)
        check_template(value)
        return value


class TemplateMapField(serializers.DictField):
    """An object of template strings (headers, query, form bodies)."""

    def __init__(self, *, key_pattern: re.Pattern | None = None, **kwargs):
        self.key_pattern = key_pattern
        kwargs.setdefault("child", TemplateField(allow_blank=True, max_length=MAX_HEADER_VALUE_LENGTH))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > MAX_ENTRIES:
            raise serializers.ValidationError(f"At most {MAX_ENTRIES} entries.")
        if self.key_pattern is not None:
            bad = [key for key in value if not self.key_pattern.match(key)]
            if bad:
                raise serializers.ValidationError(f"Invalid name: {bad[0]!r}.")
        return value


class MethodField(serializers.ChoiceField):
    """An HTTP method, accepted in any case and stored uppercase."""

    def to_internal_value(self, data):
        return super().to_internal_value(data.upper() if isinstance(data, str) else data)
