import json
import time
import uuid

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from connectors.models import Connector
from core.exceptions import DomainError
from executions import services
from executions.models import Execution, Status
from executions.runtime import process_execution


class Command(BaseCommand):
    help = "Run one execution of a connector in this process (never through the queue) and print each step."

    def add_arguments(self, parser):
        parser.add_argument("connector_id")
        parser.add_argument("--input", default="{}", help="Execute input as a JSON object")
        parser.add_argument("--contact", help="Contact id for the contact namespace and mapping")

    def handle(self, *args, connector_id: str, input: str, contact: str | None, **options):
        connector = Connector.objects.filter(pk=_uuid_or_none(connector_id)).first()
        if connector is None:
            raise CommandError(f"No connector with id {connector_id}; list them in the admin or the API.")
        try:
            payload = json.loads(input)
        except ValueError as error:
            raise CommandError(f"--input is not valid JSON: {error}") from None
        try:
            execution, _created = services.execution_request(
                connector=connector, input=payload, contact_id=contact, triggered_by="command", enqueue=False
            )
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Execution {execution.id} of {connector.name!r} (version {connector.version})")
        while True:
            result = process_execution(execution.id, on_step=self._print_step)
            execution = result or Execution.objects.get(pk=execution.id)
            if execution.status != Status.QUEUED:
                break
            wait = max(0.0, (execution.run_after - timezone.now()).total_seconds())
            retry = execution.pending_retry
            self.stdout.write(
                f"  waiting {wait:.1f}s before attempt {retry.get('attempts', 0) + 1}: {retry.get('error')}"
            )
            time.sleep(wait)
        if execution.error:
            self.stdout.write(f"error: {execution.error}")
        for note in execution.notes:
            self.stdout.write(f"note: {note}")
        self.stdout.write(execution.status)
        if execution.status != Status.SUCCEEDED:
            raise SystemExit(1)

    def _print_step(self, record) -> None:
        code = (record.response or {}).get("status_code")
        parts = [f"step {record.name}: {record.status}"]
        if code is not None:
            parts.append(f"HTTP {code}")
        if record.attempts:
            parts.append(f"{record.attempts} attempt(s)")
        if record.duration_ms is not None:
            parts.append(f"{record.duration_ms} ms")
        line = ", ".join(parts)
        if record.error:
            line += f" - {record.error}"
        self.stdout.write(line)
        if record.extracted:
            self.stdout.write(f"  extracted: {json.dumps(record.extracted, ensure_ascii=False)}")


def _uuid_or_none(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
