"""A random secret kept in a file under `.local/`, for the embedded set-up (`bin/serve`) only.

Nothing may derive a signing key from a constant committed to the repository: without `DJANGO_SECRET_KEY`,
the embedded set-up generates a random one on first start and keeps it (owner-readable only) next to the
generated encryption key, so tokens and sessions survive restarts. Production (`DJANGO_DEBUG=false`) never
reaches this: it requires `DJANGO_SECRET_KEY`.
"""

import os
import secrets
import time
from pathlib import Path


def local_secret(path: Path) -> str:
    """The secret stored in `path`, created (64 random URL-safe characters, mode 0600) if the file is missing.

    Creation is exclusive (O_EXCL): processes starting together all end with the secret of the one that won.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(48) + "\n")
    return _read(path)


def _read(path: Path) -> str:
    for _ in range(50):  # a process that lost the race may read before the winner has written
        value = path.read_text().strip()
        if value:
            return value
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty: delete it and start again")
