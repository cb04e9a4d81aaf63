"""Celery tasks of batches: the fan-out of an accepted batch."""

from celery import shared_task

from batches import dispatch


@shared_task(ignore_result=True, acks_late=True)
def start_batch(batch_id: str, max_duration: int) -> int:
    """Enqueues the batch's queued executions; a duplicate delivery only sends duplicate nudges, which the
    claim settles (and a lost message is covered by the stuck-execution sweeper)."""
    return dispatch.enqueue_executions(batch_id, max_duration=max_duration)
