"""Steps whose URL takes its host from the caller: `http://{{input.host}}/x`.

Such a step is allowed (dynamic hosts are real: per-tenant subdomains, regional endpoints), but whoever fills
the host chooses where the request goes, and with it the step's auth and headers (credentials included). The
connector's admin page shows a warning for each such step (docs/security.md).
"""

import re
from dataclasses import dataclass
from typing import Any

from connectors.engine.templating import compile_template

# Values from these namespaces are chosen by the caller (input, contact) or by a server (steps); `workspace`
# values are credentials the workspace set itself.
CALLER_NAMESPACES = frozenset({"input", "contact", "steps"})
_EXPRESSION = re.compile(r"\{\{.*?\}\}", re.DOTALL)


@dataclass(frozen=True)
class DynamicHost:
    step: str
    references: tuple[str, ...]
    sends_auth: bool

    def warning(self) -> str:
        filled_by = ", ".join(f"{{{{{reference}}}}}" for reference in self.references)
        consequence = "and the step's auth and headers go there too" if self.sends_auth else "and its headers go there"
        return (
            f"Step {self.step!r} takes its host from {filled_by}: whoever fills it chooses where the request "
            f"goes, {consequence}."
        )


def host_expressions(url: str) -> list[str]:
    """The `{{...}}` expressions of a URL template that fill its scheme or host (empty for a literal host)."""
    expressions = list(_EXPRESSION.finditer(url))
    if not expressions:
        return []
    prefix = url[: expressions[0].start()]
    if "://" not in prefix:
        end = len(url)  # the scheme itself comes from an expression: so does everything after it
    else:
        host_start = prefix.index("://") + 3
        literal_end = [m.start() for m in re.finditer(r"[/?#]", url) if m.start() >= host_start]
        inside = [(m.start(), m.end()) for m in expressions]
        outside = [p for p in literal_end if not any(start <= p < stop for start, stop in inside)]
        end = outside[0] if outside else len(url)
    return [m.group() for m in expressions if m.start() < end]


def dynamic_hosts(definition: dict[str, Any]) -> list[DynamicHost]:
    """Each step whose host is filled from a caller-chosen namespace."""
    found = []
    for step in definition.get("steps") or ():
        references = [
            reference.text
            for expression in host_expressions(step.get("url", ""))
            for reference in compile_template(expression).references
            if reference.namespace in CALLER_NAMESPACES
        ]
        if references:
            auth = (step.get("auth") or {}).get("type", "none") != "none"
            found.append(DynamicHost(step=step["name"], references=tuple(references), sends_auth=auth))
    return found
