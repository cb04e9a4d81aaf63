from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from executions.models import FINISHED_STATUSES, Execution

BATCH_SIZE = 1000


class Command(BaseCommand):
    help = "Delete finished execution records older than DAYS, in batches (queued and running are kept)."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)

    def handle(self, *args, older_than: int, batch_size: int, **options):
        if older_than < 0:
            raise CommandError("--older-than must be 0 or more days.")
        cutoff = timezone.now() - timedelta(days=older_than)
        old = Execution.objects.filter(created_at__lt=cutoff, status__in=FINISHED_STATUSES)
        total = old.count()
        deleted = 0
        with tqdm(total=total, unit="execution", disable=not self.stdout.isatty() or None) as bar:
            while True:
                ids = list(old.values_list("id", flat=True)[: max(1, batch_size)])
                if not ids:
                    break
                Execution.objects.filter(id__in=ids, status__in=FINISHED_STATUSES).delete()
                deleted += len(ids)
                bar.update(len(ids))
        self.stdout.write(f"Deleted {deleted} execution(s) created before {cutoff:%Y-%m-%d %H:%M} UTC.")
