import uuid

from django.db import models

from connectors.engine.spec import StepState
from connectors.models import Connector
from contacts.models import Contact
from workspaces.models import Workspace


class Status(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED_STATUSES = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


class StepStatus(models.TextChoices):
    """How a step ended; the engine's `StepState`, as a database choice."""

    SUCCEEDED = StepState.SUCCEEDED.value
    FAILED = StepState.FAILED.value
    SKIPPED = StepState.SKIPPED.value


class Execution(models.Model):
    """One run of a connector. The row is the truth about the run; a broker message only says "look at me".

    `definition` is the connector's definition as it was when the run was accepted, so a run that resumes
    after a retry or a crash keeps executing the version it started with.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The foreign keys' own indexes are left out where another index starts with the column, or made partial
    # where most rows hold NULL (Meta.indexes): each index costs a write on every INSERT and on the claim's and
    # the finish's UPDATEs, which change `status` and so are never HOT.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="executions", db_index=False)
    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="executions", db_index=False)
    connector_version = models.PositiveIntegerField()
    definition = models.JSONField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    input = models.JSONField(default=dict)
    output = models.JSONField(default=dict)
    error = models.TextField(null=True, blank=True)  # noqa: DJ001 - the API distinguishes null (no error)
    notes = models.JSONField(default=list, blank=True)
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="executions", db_index=False
    )
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker has picked the run up.")
    triggered_by = models.CharField(max_length=32, default="api")
    # NULL, not "", when absent: the unique constraint must ignore executions without a key.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    request_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    run_after = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=255, blank=True)
    requeue_count = models.PositiveIntegerField(default=0)
    cancel_requested = models.BooleanField(default=False)
    # A step waiting for its next attempt: {"index", "attempts", "error", "started_at"}; empty otherwise.
    pending_retry = models.JSONField(default=dict, blank=True)
    batch = models.ForeignKey(
        "batches.Batch", null=True, blank=True, on_delete=models.SET_NULL, related_name="executions", db_index=False
    )

    class Meta:
        ordering = ["-created_at", "id"]
        indexes = [
            models.Index(fields=["workspace", "-created_at"], name="execution_ws_created"),
            models.Index(fields=["connector", "-created_at"], name="execution_conn_created"),
            # The sweeper's: only unfinished runs are in it.
            models.Index(
                fields=["status", "run_after"],
                name="execution_unfinished",
                condition=models.Q(status__in=[Status.QUEUED, Status.RUNNING]),
            ),
            # The claim's count of the workspace's running executions (executions_claim): the runs in flight,
            # not every execution the workspace ever had.
            models.Index(
                fields=["workspace"], name="execution_running_by_ws", condition=models.Q(status=Status.RUNNING)
            ),
            models.Index(fields=["contact"], name="execution_contact", condition=models.Q(contact__isnull=False)),
            models.Index(fields=["batch"], name="execution_batch", condition=models.Q(batch__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "connector", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="unique_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.connector_id} {self.status} {self.created_at:%Y-%m-%d %H:%M:%S}"


# The recorded fields of a step, written once: the checkpoint's SQL (executions.lifecycle), the API's step
# fields (all but `sealed`, executions.serializers) and the runner's StepRecord read back on resume
# (executions.runtime) are derived from it. `execution` and `index` identify the step and are not in it.
STEP_RECORD_FIELDS = (
    "name",
    "status",
    "attempts",
    "request",
    "response",
    "extracted",
    "error",
    "started_at",
    "finished_at",
    "duration_ms",
    "sealed",
)
STEP_API_FIELDS = tuple(name for name in STEP_RECORD_FIELDS if name != "sealed")


class ExecutionStep(models.Model):
    """The checkpoint of one step: written once when the step reaches its final state."""

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="step_records")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=StepStatus.choices)
    attempts = models.PositiveSmallIntegerField(default=0)
    request = models.JSONField(default=dict)
    response = models.JSONField(null=True, blank=True)
    extracted = models.JSONField(default=dict)
    error = models.TextField(null=True, blank=True)  # noqa: DJ001 - null means the step had no error
    # Encrypted values of this step that later steps use as auth (executions.sealing); never shown.
    sealed = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["execution", "index"]
        constraints = [models.UniqueConstraint(fields=["execution", "index"], name="unique_step_index")]

    def __str__(self) -> str:
        return f"{self.name} {self.status}"


class ConnectorDailyStats(models.Model):
    """Per-connector daily rollup, updated in the transaction that finishes an execution, so statistics stay
    cheap however many executions there are."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="daily_stats")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    total_duration_ms = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connector", "date"], name="unique_connector_day")]
        ordering = ["connector", "date"]
        verbose_name_plural = "connector daily stats"

    def __str__(self) -> str:
        return f"{self.connector_id} {self.date}: {self.succeeded} ok, {self.failed} failed"


class StepDailyStats(models.Model):
    """Per connector, step and day: the requests its steps sent (every attempt and page), by status code, with
    retries, 429 answers and a latency histogram (executions.step_stats). Written once per run of an
    execution in a worker (one upsert for all its steps), read by /stats without touching step rows."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="step_daily_stats")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    date = models.DateField()
    step_name = models.CharField(max_length=64)
    requests = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    rate_limited = models.PositiveIntegerField(default=0)
    # {"200": n, ...}; requests that got no answer (connection error, timeout) are under "error".
    status_codes = models.JSONField(default=dict)
    # {bucket index: n} over executions.step_stats.LATENCY_BUCKETS_MS.
    latency = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connector", "date", "step_name"], name="unique_connector_day_step")
        ]
        ordering = ["connector", "date", "step_name"]
        verbose_name_plural = "step daily stats"

    def __str__(self) -> str:
        return f"{self.connector_id} {self.date} {self.step_name}: {self.requests} requests"


class ConnectorDurationBucket(models.Model):
    """How many finished (succeeded or failed) executions of a connector took a duration in this bucket:
    the histogram `/stats` reads its 95th percentile from, so pruning executions changes no statistic.
    Buckets are exact below one second and keep three significant digits above (executions.histogram)."""

    connector = models.ForeignKey(Connector, on_delete=models.CASCADE, related_name="+")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    bucket_ms = models.PositiveIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connector", "bucket_ms"], name="unique_connector_duration_bucket")
        ]
        ordering = ["connector", "bucket_ms"]

    def __str__(self) -> str:
        return f"{self.connector_id} {self.bucket_ms} ms: {self.count}"
