"""A real OAuth2 authorization server and protected API on 127.0.0.1, for tests of OAuth2 credentials.

`/token` implements the client credentials and refresh token grants (RFC 6749) with client authentication by
HTTP Basic; refresh tokens rotate (each answer carries a new one) and a spent refresh token is refused with
`invalid_grant`, as providers with rotation do. `/api/...` answers 200 with the caller's token to a valid
`Bearer` token and 401 to an unknown or expired one. `expire_access_tokens()` expires every token issued so
far, as time would.

    with OAuthServer(client_id="cid", client_secret="cs") as server:
        server.add_refresh_token("rt-0")
        ...
        assert server.reused_refresh_tokens == []
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from urllib.parse import parse_qsl, unquote

from tests.local_server import LocalServer, RecordedRequest, Reply


def _json(status: int, body: dict) -> Reply:
    return Reply(status, headers={"Content-Type": "application/json"}, body=json.dumps(body).encode())


class OAuthServer:
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        expires_in: int = 3600,
        token_delay: float = 0.0,
        token_suffix: str = "",
    ) -> None:
        """Tokens are issued as `at-N` and `rt-N` (plus `token_suffix`, to make them unmistakable)."""
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.token_delay = token_delay
        self.token_suffix = token_suffix
        self.server = LocalServer()
        self.lock = threading.Lock()
        self.access_tokens: dict[str, float] = {}  # token -> expiry (time.monotonic)
        self.refresh_tokens: dict[str, bool] = {}  # token -> still valid
        self.token_requests: list[dict[str, str]] = []
        self.reused_refresh_tokens: list[str] = []
        self.api_calls: list[tuple[str, int]] = []  # (token, status answered)
        self._counter = itertools.count(1)
        self.server.route("/token", self._token)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def token_url(self) -> str:
        return f"{self.server.url}/token"

    def __enter__(self) -> OAuthServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def add_refresh_token(self, token: str) -> None:
        with self.lock:
            self.refresh_tokens[token] = True

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens = dict.fromkeys(self.access_tokens, 0.0)

    def protect(self, path: str, body: dict | None = None) -> None:
        """Serve `path` as a protected resource answering `body` (plus the token used) to valid tokens."""

        def respond(request: RecordedRequest) -> Reply:
            token = (request.header("Authorization") or "").removeprefix("Bearer ")
            with self.lock:
                valid = self.access_tokens.get(token, 0.0) > time.monotonic()
                self.api_calls.append((token, 200 if valid else 401))
            if not valid:
                return _json(401, {"error": "invalid_token"})
            return _json(200, {**(body or {}), "token": token})

        self.server.route(path, respond)

    def _token(self, request: RecordedRequest) -> Reply:
        if self.token_delay:
            time.sleep(self.token_delay)
        form = dict(parse_qsl(request.body.decode()))
        with self.lock:
            self.token_requests.append(form)
        basic = (request.header("Authorization") or "").removeprefix("Basic ")
        try:
            client_id, _, client_secret = base64.b64decode(basic).decode().partition(":")
        except ValueError:
            client_id = client_secret = ""
        if (unquote(client_id), unquote(client_secret)) != (self.client_id, self.client_secret):
            return _json(401, {"error": "invalid_client"})
        grant = form.get("grant_type")
        with self.lock:
            number = next(self._counter)
            answer = {
                "access_token": f"at-{number}{self.token_suffix}",
                "token_type": "Bearer",
                "expires_in": self.expires_in,
            }
            if grant == "refresh_token":
                spent = form.get("refresh_token", "")
                if not self.refresh_tokens.get(spent):
                    if spent in self.refresh_tokens:
                        self.reused_refresh_tokens.append(spent)
                    return _json(400, {"error": "invalid_grant", "error_description": f"token {spent} is spent"})
                self.refresh_tokens[spent] = False
                answer["refresh_token"] = f"rt-{number}{self.token_suffix}"
                self.refresh_tokens[answer["refresh_token"]] = True
            elif grant != "client_credentials":
                return _json(400, {"error": "unsupported_grant_type"})
            self.access_tokens[answer["access_token"]] = time.monotonic() + self.expires_in
        return _json(200, answer)
