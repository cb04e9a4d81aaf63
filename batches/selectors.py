from django.db.models import Count

from batches.models import Batch
from executions.models import Execution, Status


def batch_progress(batch: Batch) -> dict:
    """The batch with its executions counted per status: one aggregate query."""
    counts = dict(
        Execution.objects.filter(batch=batch)
        .order_by()
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {
        "id": batch.id,
        "connector": batch.connector_id,
        "count": batch.count,
        **{status: counts.get(status, 0) for status in Status.values},
        "created_at": batch.created_at,
        "finished_at": batch.finished_at,
    }
