from django.conf import settings
from django.core.management.base import BaseCommand

from executions import lifecycle


class Command(BaseCommand):
    help = "Put executions left queued or running without progress back on the queue; prints how many."

    def add_arguments(self, parser):
        parser.add_argument(
            "--stale-after",
            type=int,
            default=settings.CONNECTORS_REQUEUE_STALE_AFTER_SECONDS,
            metavar="SECONDS",
            help="Requeue executions without progress for this long (default: CONNECTORS_REQUEUE_STALE_AFTER_SECONDS).",
        )

    def handle(self, *args, stale_after: int, **options):
        count = lifecycle.requeue_stuck(stale_after=max(1, stale_after))
        self.stdout.write(f"Requeued {count} execution(s).")
