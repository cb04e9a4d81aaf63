from django.core.management.base import BaseCommand

from executions.lifecycle import requeue_stuck


class Command(BaseCommand):
    help = "Put executions left queued or running without progress back on the queue; prints how many."

    def add_arguments(self, parser):
        parser.add_argument("--stale-after", type=int, default=300, metavar="SECONDS")

    def handle(self, *args, stale_after: int, **options):
        count = requeue_stuck(stale_after=max(1, stale_after))
        self.stdout.write(f"Requeued {count} execution(s).")
