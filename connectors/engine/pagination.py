"""Pagination of one step: which request fetches the next page, and when to stop.

Four kinds (docs/connectors.md): `cursor` (a value in the body, sent back as a query parameter), `next_url`
(a URL in the body, or the `Link: <...>; rel="next"` header, read with requests' own parser), `offset` and
`page`. Pages are requested until the cursor or next link is missing or empty, a page has no items, or
`max_pages` is reached. The progress (`PageState`) is plain JSON, so the caller can checkpoint it and a
requeued execution goes on from the next page instead of fetching the earlier ones again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from requests.structures import CaseInsensitiveDict
from requests.utils import parse_header_links

from connectors.engine.http import OutboundRequest
from connectors.engine.paths import extract
from connectors.engine.spec import DEFAULT_MAX_PAGES, PaginationType

PAGINATION_TYPES = tuple(kind.value for kind in PaginationType)


class PaginationError(Exception):
    """A page does not have the shape the step's `paginate` describes (permanent)."""


@dataclass
class PageState:
    """Progress through the pages: pages fetched, their items, where the next page is, and how many
    requests the finished pages took (every attempt counts in the step's `attempts`)."""

    pages: int = 0
    items: list[Any] = field(default_factory=list)
    next: Any = None
    sent_before: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> PageState | None:
        if not data:
            return None
        return cls(
            pages=int(data.get("pages", 0)),
            items=list(data.get("items") or []),
            next=data.get("next"),
            sent_before=int(data.get("sent_before", 0)),
        )


class Paginator:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.kind: str = config["type"]
        self.config = config
        self.max_pages: int = int(config.get("max_pages", DEFAULT_MAX_PAGES))

    def start(self) -> PageState:
        if self.kind == "offset":
            return PageState(next=0)
        if self.kind == "page":
            return PageState(next=int(self.config.get("start", 1)))
        return PageState()

    def request_for(self, base: OutboundRequest, state: PageState) -> OutboundRequest:
        """The request of the next page: the step's rendered request with the page's position applied."""
        params = dict(base.params)
        url = base.url
        if self.kind == "cursor" and state.next not in (None, ""):
            params[self.config["param"]] = _text(state.next)
        elif self.kind == "next_url" and state.next:
            url = state.next
            # The next link carries its own query; the step's other parameters (auth included) stay.
            present = {name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
            params = {name: value for name, value in params.items() if name not in present}
        elif self.kind == "offset":
            params[self.config["param"]] = str(state.next)
            params[self.config["limit_param"]] = str(self.config["limit"])
        elif self.kind == "page":
            params[self.config["param"]] = str(state.next)
        return OutboundRequest(
            method=base.method, url=url, headers=dict(base.headers), params=params, body=base.body, timeout=base.timeout
        )

    def absorb(self, state: PageState, body: Any, headers: CaseInsensitiveDict[str], page_url: str) -> bool:
        """Adds a fetched page to `state` and finds the next one. Returns whether another page is due."""
        items = self._items(body)
        state.pages += 1
        state.items.extend(items)
        if not items or state.pages >= self.max_pages:
            return False
        if self.kind == "cursor":
            state.next = extract(body, self.config["cursor_path"])
            return state.next not in (None, "")
        if self.kind == "next_url":
            link = extract(body, self.config["path"]) if self.config.get("path") else _link_next(headers)
            state.next = urljoin(page_url, link) if isinstance(link, str) and link else None
            return state.next is not None
        state.next = state.next + (len(items) if self.kind == "offset" else 1)
        return True

    def _items(self, body: Any) -> list[Any]:
        path = self.config.get("items_path")
        found = extract(body, path) if path else body
        if found is None:
            return []
        if not isinstance(found, list):
            where = f"items_path {path!r}" if path else "the response body (no items_path)"
            raise PaginationError(f"{where} is not a list")
        return found

    @staticmethod
    def combined(state: PageState) -> dict[str, Any]:
        """What `extract` paths and later steps read: every page's items, in order, and the page count."""
        return {"items": state.items, "pages": state.pages}


def _link_next(headers: CaseInsensitiveDict[str]) -> str | None:
    value = headers.get("Link")
    if not value:
        return None
    for link in parse_header_links(value):
        if "next" in (link.get("rel") or "").split():
            return link.get("url") or None
    return None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
