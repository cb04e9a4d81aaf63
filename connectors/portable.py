"""The portable connector document (`connector/v1`, docs/api.md §14): what export writes and import reads.

An exported document holds the connector's name, description and definition, and the services it needs
credentials for; never ids, workspace, counters, template links or secrets. Auth values, and values of headers
and query parameters that always carry credentials (Authorization, X-Api-Key, api_key ...), that hold literal
text are replaced by a reference to a credential named after the step (`{{workspace.STEP.FIELD}}`), so a
secret typed into a definition never leaves the workspace; the importer stores that credential once.
"""

import re
from typing import Any

from connectors.engine.redaction import SENSITIVE_HEADERS, SENSITIVE_QUERY_PARAMS
from connectors.models import Connector
from connectors.selectors import referenced_services

FORMAT = "connector/v1"
DOCUMENT_FIELDS = ("format", "connector", "required_credentials")
CONNECTOR_FIELDS = ("name", "description", "input_schema", "max_duration_seconds", "steps", "contact_mapping")
AUTH_SECRET_FIELDS = ("token", "value", "username", "password")
EXPRESSION = re.compile(r"{{.*?}}", re.DOTALL)
# Names of extra fields an importer refuses with a pointed message: a document never carries secrets.
SECRET_LOOKING = re.compile(r"secret|passw|token|credential|api[_-]?key|private|auth|cookie|session", re.IGNORECASE)


def export_document(connector: Connector) -> dict[str, Any]:
    steps = [_without_literal_secrets(step) for step in connector.steps]
    exported = {
        "name": connector.name,
        "description": connector.description,
        "input_schema": connector.input_schema,
        "max_duration_seconds": connector.max_duration_seconds,
        "steps": steps,
        "contact_mapping": connector.contact_mapping,
    }
    return {"format": FORMAT, "connector": exported, "required_credentials": referenced_services(exported)}


def has_literal_text(template: str) -> bool:
    """Whether a template holds text besides its `{{ }}` expressions (a literal secret, in an auth value)."""
    return bool(EXPRESSION.sub("", template).strip())


def _without_literal_secrets(step: dict[str, Any]) -> dict[str, Any]:
    name = step["name"]

    def reference(field: str) -> str:
        return f"{{{{workspace.{name}.{field}}}}}"

    auth = {
        key: reference(key) if key in AUTH_SECRET_FIELDS and value and has_literal_text(value) else value
        for key, value in step["auth"].items()
    }
    headers = {
        header: reference(header) if _sensitive(header, SENSITIVE_HEADERS, "_", "-") and has_literal_text(v) else v
        for header, v in step["headers"].items()
    }
    query = {
        param: reference(param) if _sensitive(param, SENSITIVE_QUERY_PARAMS, "-", "_") and has_literal_text(v) else v
        for param, v in step["query"].items()
    }
    return {**step, "auth": auth, "headers": headers, "query": query}


def _sensitive(name: str, names: frozenset[str], old: str, new: str) -> bool:
    return name.lower().replace(old, new) in names
