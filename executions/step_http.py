"""The HTTP features of steps for one execution: what the runner's hooks get from outside the engine.

OAuth2 tokens (credentials.oauth), the outbound rate budget (executions.ratelimit), the per-step statistics
collector (executions.step_stats, also the one place requests are counted) and the execution id that seeds
`Idempotency-Key` values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.engine.runner import Runner
from credentials.oauth import VaultTokenSource
from credentials.provider import VaultCredentialProvider
from executions.ratelimit import CredentialRateBudget, get_limiter
from executions.step_stats import StepStatsCollector


@dataclass
class StepHttp:
    tokens: VaultTokenSource
    budget: CredentialRateBudget
    stats: StepStatsCollector
    run_key: str

    @classmethod
    def for_execution(cls, execution: Any, provider: VaultCredentialProvider, runner: Runner) -> StepHttp:
        return cls(
            tokens=VaultTokenSource(provider, runner.client),
            budget=CredentialRateBudget(execution.workspace_id, provider, get_limiter()),
            stats=StepStatsCollector(),
            run_key=str(execution.id),
        )

    def hooks(self) -> dict[str, Any]:
        """Keyword arguments for connectors.engine.runner.Hooks."""
        return {"tokens": self.tokens, "budget": self.budget, "on_request": self.stats, "run_key": self.run_key}

    def flush(self, execution: Any) -> None:
        self.stats.flush(connector_id=execution.connector_id, workspace_id=execution.workspace_id)


def trial_hooks(workspace_id: Any, provider: VaultCredentialProvider, runner: Runner) -> dict[str, Any]:
    """Hooks for a test run: the same OAuth2 tokens (a rotated refresh token must be kept even then) and rate
    budget as executions, but no statistics and a fresh Idempotency-Key per run."""
    return {
        "tokens": VaultTokenSource(provider, runner.client),
        "budget": CredentialRateBudget(workspace_id, provider, get_limiter()),
    }
