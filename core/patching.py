"""The one PATCH rule of resources whose body is validated as a whole (connectors, templates).

A PATCH replaces the top-level fields it names (a nested object such as `steps` is replaced, not merged) and
the result is validated as if it had been PUT: nested steps get their defaults, the stored definition is
always the normalized one, and cross-field rules (contact_mapping against the steps) are checked against what
will be stored. docs/api.md, "Connectors".
"""

from collections.abc import Mapping
from typing import Any


def patched(current: Mapping[str, Any], data: Any) -> Any:
    """The body a PATCH is validated as: `current` (the resource as the API shows it) with `data`'s fields
    replaced. Anything but an object is returned as is, for the serializer to refuse."""
    return {**current, **data} if isinstance(data, dict) else data
