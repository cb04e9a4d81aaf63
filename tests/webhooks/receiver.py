"""A receiver as a customer would write one: it verifies each delivery with the reference `standardwebhooks`
package and answers 400 to a bad signature, or the scripted status for a good one."""

import json

from standardwebhooks import Webhook, WebhookVerificationError

from tests.local_server import RecordedRequest, Reply


class VerifyingReceiver:
    def __init__(self, secret: str, statuses: list[int] | None = None) -> None:
        self.webhook = Webhook(secret)
        self.statuses = list(statuses or [204])
        self.verified: list[dict] = []
        self.refused = 0

    def __call__(self, request: RecordedRequest) -> Reply:
        try:
            payload = self.webhook.verify(request.body, request.headers)
        except WebhookVerificationError:
            self.refused += 1
            return Reply(400, body=b"bad signature")
        self.verified.append({"payload": payload, "webhook-id": request.header("webhook-id")})
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return Reply(status, body=json.dumps({"ok": status < 300}).encode())
