"""Secret taint while rendering: whatever is rendered from a secret is registered as a secret too.

The rule is structural, not a list of encodings: a value a template reads is a secret when it comes from the
`workspace` namespace (credentials) or when it contains a secret the execution's Redactor already knows (a
token a login step returned, a credential echoed back by a server). Every text the filters make of such a value
(``| upper``, ``| base64 | base64``, ``| urlencode | urlencode``, ...) is then registered with the Redactor
before it can be sent, so every place that stores or logs it scrubs it, and places that must never hold a
secret (contact fields) can refuse it.
"""

from __future__ import annotations

from typing import Any

from connectors.engine.redaction import Redactor
from connectors.engine.templating import Reference, to_text

__all__ = ["SecretDerived", "SecretTaint", "refusing_taint"]


class SecretDerived(Exception):
    """A value derived from a secret reached a place that must not hold one; ``reference`` is its text."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"{{{{{reference}}}}} is derived from a secret")
        self.reference = reference


class SecretTaint:
    """The Taint of one execution: secrets are judged and recorded with its Redactor."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def is_secret(self, reference: Reference, value: Any) -> bool:
        if value is None or value == "":
            return False
        return reference.namespace == "workspace" or self.redactor.contains_secret(to_text(value))

    def record(self, text: str) -> None:
        self.redactor.add(text)


class _RefusingTaint(SecretTaint):
    """Raises SecretDerived instead of recording: for values that are stored where secrets may not go."""

    def is_secret(self, reference: Reference, value: Any) -> bool:
        if super().is_secret(reference, value):
            raise SecretDerived(reference.text)
        return False


def refusing_taint(redactor: Redactor) -> SecretTaint:
    """A Taint that refuses (raises SecretDerived) any value derived from a secret."""
    return _RefusingTaint(redactor)
