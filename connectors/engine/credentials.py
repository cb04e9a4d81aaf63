"""How the runner reaches a workspace's credentials: the `workspace` namespace of templates.

The runner knows nothing of the vault. It is given a `CredentialProvider` and exposes it to templates as a
lazy mapping, so only the services a connector actually references are fetched (and decrypted), each once per
execution, and every value a template reads is registered with the execution's redactor before it can be
placed into a request.
"""

from collections.abc import Iterator, Mapping
from typing import Protocol

from connectors.engine.redaction import Redactor


class MissingCredential(LookupError):
    """The workspace has no credential for `service`."""

    def __init__(self, service: str) -> None:
        super().__init__(service)
        self.service = service

    def __str__(self) -> str:
        return f"the workspace has no credential for service {self.service!r}; add it under /workspace/credentials"


class CredentialProvider(Protocol):
    def fields(self, service: str) -> Mapping[str, str]:
        """All fields of the service's credential. Raises MissingCredential when there is none."""
        ...


class StaticCredentialProvider:
    """Credentials given as a plain dict: for tests and for running a definition outside a workspace."""

    def __init__(self, credentials: Mapping[str, Mapping[str, str]]) -> None:
        self._credentials = credentials

    def fields(self, service: str) -> Mapping[str, str]:
        try:
            return self._credentials[service]
        except KeyError:
            raise MissingCredential(service) from None


class _SecretFields(Mapping[str, str]):
    """One credential's fields; reading a value registers it as a secret."""

    def __init__(self, fields: Mapping[str, str], redactor: Redactor) -> None:
        self._fields = fields
        self._redactor = redactor

    def __getitem__(self, name: str) -> str:
        value = self._fields[name]
        self._redactor.add(value)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


class WorkspaceNamespace(Mapping[str, Mapping[str, str]]):
    """The `workspace` template namespace: service name -> fields, fetched on first use and then cached."""

    def __init__(self, provider: CredentialProvider, redactor: Redactor) -> None:
        self._provider = provider
        self._redactor = redactor
        self._cache: dict[str, _SecretFields] = {}

    def __getitem__(self, service: str) -> Mapping[str, str]:
        if service not in self._cache:
            self._cache[service] = _SecretFields(self._provider.fields(service), self._redactor)
        return self._cache[service]

    def __iter__(self) -> Iterator[str]:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def services_used(self) -> list[str]:
        return sorted(self._cache)
