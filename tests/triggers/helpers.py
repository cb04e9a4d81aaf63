"""Signing hooks the way a Standard Webhooks sender does (with the reference `standardwebhooks` package)."""

import json
import time
from datetime import UTC, datetime

from standardwebhooks import Webhook


def signed_headers(secret: str, body: bytes, *, msg_id: str = "msg_1", timestamp: float | None = None) -> dict:
    moment = datetime.fromtimestamp(timestamp if timestamp is not None else time.time(), tz=UTC)
    signature = Webhook(secret).sign(msg_id, moment, body)
    return {
        "HTTP_WEBHOOK_ID": msg_id,
        "HTTP_WEBHOOK_TIMESTAMP": str(int(moment.timestamp())),
        "HTTP_WEBHOOK_SIGNATURE": signature,
    }


def post_hook(client, url: str, payload, **headers):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.generic("POST", url, body, content_type="application/json", **headers)
