"""Re-encrypt every stored credential with the primary key of CONNECTORS_ENCRYPTION_KEYS (README, Configuration).

Safe to interrupt, to run again and to run in several processes at once (see services.rotate_credentials).
"""

import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from credentials.crypto import ENV_VAR
from credentials.services import credential_key_usage, credentials_to_rotate, get_keyring, rotate_credentials


class Command(BaseCommand):
    help = (
        f"Re-encrypt every credential with the primary (first) key of {ENV_VAR}, in batches, then report "
        "which old key ids no credential uses any more."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Credentials re-encrypted per transaction (default 500).",
        )

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        keyring = get_keyring()
        primary = keyring.primary_key_id
        total = credentials_to_rotate(keyring)
        if total:
            self.stdout.write(f"Re-encrypting {total} credential(s) with the primary key {primary!r}.")
        else:
            self.stdout.write(f"Nothing to re-encrypt: no credential uses another configured key than {primary!r}.")

        # The bar goes to the real stdout stream (OutputWrapper would add line endings), only on a terminal.
        stream = options.get("stdout") or sys.stdout
        rotated = 0
        failures = []
        with tqdm(total=total, unit="credential", file=stream, disable=not stream.isatty() or not total) as bar:
            for batch in rotate_credentials(batch_size=batch_size, keyring=keyring):
                rotated += batch.rotated
                failures.extend(batch.failures)
                bar.update(batch.processed)
        if total:
            self.stdout.write(f"Re-encrypted {rotated} credential(s) with key {primary!r}.")

        usage = credential_key_usage()
        self.stdout.write(
            "Credentials per key id: " + (", ".join(f"{key_id}: {n}" for key_id, n in usage.items()) or "none") + "."
        )
        for key_id in keyring.key_ids[1:]:
            if not usage.get(key_id):
                self.stdout.write(
                    f"No credential uses key id {key_id!r} any more: you can remove it from {ENV_VAR} once "
                    "every process runs with the current key list."
                )

        problems = [
            f"credential {f.credential_id} (service {f.service_name!r}, workspace {f.workspace_id}) could "
            f"not be decrypted with key id {f.key_id!r}: {f.reason}. Delete it and store it again through "
            "the API."
            for f in failures
        ]
        for key_id, count in usage.items():
            if key_id == primary:
                continue
            if key_id not in keyring.key_ids:
                problems.append(
                    f"{count} credential(s) use key id {key_id!r}, which is not configured in {ENV_VAR}: add "
                    "that key back after the primary and run this command again, or delete those credentials."
                )
                continue
            locked = count - sum(1 for f in failures if f.key_id == key_id)
            if locked > 0:
                problems.append(
                    f"{locked} credential(s) still use key id {key_id!r}: they were locked by another "
                    "process (perhaps another rotate_encryption_key) or written by a process with the old "
                    "key list; run this command again once every process uses the new key list."
                )
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            raise CommandError(
                f"{len(problems)} problem(s) left credentials on old keys; do not remove those keys from {ENV_VAR} yet."
            )
