from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from executions.models import FINISHED_STATUSES, Execution
from executions.retention import BATCH_SIZE, cutoff_for, prune_finished


class Command(BaseCommand):
    help = "Delete finished execution records older than DAYS, in batches (queued and running are kept)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args, older_than: int, batch_size: int, **options):
        if older_than < 0:
            raise CommandError("--older-than must be 0 or more days.")
        cutoff = cutoff_for(older_than)
        total = Execution.objects.filter(created_at__lt=cutoff, status__in=FINISHED_STATUSES).count()
        with tqdm(total=total, unit="execution", disable=not self.stdout.isatty() or None) as bar:
            deleted = prune_finished(older_than_days=older_than, batch_size=batch_size, now=None, progress=bar.update)
        self.stdout.write(f"Deleted {deleted} execution(s) created before {cutoff:%Y-%m-%d %H:%M} UTC.")
