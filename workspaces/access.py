"""The caller's user and memberships, kept in each process and read again only when they changed.

Every API request needs the user behind its token and the membership of the workspace it names: two queries
per request, the largest part of a fast execute call's cost (docs/performance.md). Both are kept here, per
process, valid while the user's *access generation* is unchanged. The generation is one value per user in the
shared cache (Redis in production). Anything that can change what a user may do replaces it with a new random
value once the change commits, so every process reads that user again at its next request:

- the user saved or deleted (deactivation, staff flags, a new token version: logout, password change);
- one of the user's memberships created, changed or deleted (a workspace's deletion deletes them);
- a workspace saved (the cached membership carries it).

Reading the generation is one cache GET per request: the round trip the token-version check made before.
Entries also expire after LOCAL_SECONDS, so with a process-local cache (the embedded set-up, without Redis) a
change made by another process (a `manage.py` command) reaches the server within that time; with Redis, at
the next request. Callers get copies: a request may modify its user or membership without touching the cache.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from workspaces.models import Membership, User, Workspace

GENERATION_SECONDS = 24 * 60 * 60
LOCAL_SECONDS = 30.0
MAX_USERS = 10_000  # per process; past it the cache starts over (a burst of distinct users, not a steady state)
GENERATION_ATTRIBUTE = "_access_generation"  # set on the users this module hands out


@dataclass
class _Entry:
    generation: int
    expires: float
    user: User
    memberships: dict[Any, Membership] = field(default_factory=dict)


_entries: dict[Any, _Entry] = {}
_lock = threading.Lock()


def _key(user_id: Any) -> str:
    return f"access-generation:{user_id}"


def generation(user_id: Any) -> int:
    """The user's current access generation (one cache read; a fresh random value when there is none yet)."""
    value = cache.get(_key(user_id))
    if value is None:
        cache.add(_key(user_id), secrets.randbits(62), GENERATION_SECONDS)
        value = cache.get(_key(user_id))
    return int(value)


def changed(user_id: Any) -> None:
    """The user's access changed: every process reads the user again at its next request. Replaced now, and
    again once the current transaction commits (a process may have read the old rows in between). A random
    value rather than an increment, so a generation lost with the cache can never come back."""

    def replace() -> None:
        cache.set(_key(user_id), secrets.randbits(62), GENERATION_SECONDS)

    replace()
    transaction.on_commit(replace)


def user(user_id: Any, current: int, load: Callable[[], User]) -> User:
    """A copy of the user with id `user_id` as of generation `current`, loaded by `load` when not cached."""
    entry = _valid_entry(user_id, current)
    if entry is None:
        loaded = load()
        entry = _Entry(current, time.monotonic() + LOCAL_SECONDS, loaded)
        with _lock:
            if len(_entries) >= MAX_USERS:
                _entries.clear()
            _entries[str(user_id)] = entry
    found = copy.copy(entry.user)
    setattr(found, GENERATION_ATTRIBUTE, current)
    return found


def membership(user: Any, workspace_id: Any, load: Callable[[], Membership | None]) -> Membership | None:
    """A copy of `user`'s membership in `workspace_id` (None: the user's only workspace), loaded by `load` when
    not cached. Only users handed out by `user()` are cached; a missing membership is never cached."""
    current = getattr(user, GENERATION_ATTRIBUTE, None)
    entry = _valid_entry(user.pk, current) if current is not None else None
    found = entry.memberships.get(workspace_id) if entry is not None else None
    if found is None:
        found = load()
        if found is None:
            return None
        if entry is not None:
            entry.memberships[workspace_id] = found
    result = copy.copy(found)
    result.workspace = copy.copy(found.workspace)
    return result


def forget_all() -> None:
    """Empties this process's cache (tests)."""
    with _lock:
        _entries.clear()


def _valid_entry(user_id: Any, current: int) -> _Entry | None:
    entry = _entries.get(str(user_id))  # a token's claim is a string, a model's pk is not
    if entry is None or entry.generation != current or entry.expires < time.monotonic():
        return None
    return entry


def _user_saved_or_deleted(sender: Any, instance: User, **kwargs: Any) -> None:
    changed(instance.pk)


def _membership_saved_or_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    changed(instance.user_id)


def _workspace_saved(sender: Any, instance: Workspace, created: bool = False, **kwargs: Any) -> None:
    if not created:
        for user_id in Membership.objects.filter(workspace_id=instance.pk).values_list("user_id", flat=True):
            changed(user_id)


def connect_signals() -> None:
    """Called by WorkspacesConfig.ready(). Queryset `update()`s send no signal: their callers call `changed`."""
    for signal in (post_save, post_delete):
        signal.connect(_user_saved_or_deleted, sender=User, dispatch_uid="access-user")
        signal.connect(_membership_saved_or_deleted, sender=Membership, dispatch_uid="access-membership")
    post_save.connect(_workspace_saved, sender=Workspace, dispatch_uid="access-workspace")
