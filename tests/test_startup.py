"""core.startup: a process's start-up objects are frozen out of the collector's scans, by the gunicorn hook and
the worker's signals; the start-up's garbage is collected, not frozen."""

import gc
import runpy
import sys
import weakref
from pathlib import Path

import pytest
from celery.signals import worker_process_init, worker_ready

import config.celery  # noqa: F401  (connects the worker's signals)
from core.startup import freeze_startup_objects

CONF = runpy.run_path(str(Path(__file__).resolve().parents[1] / "config" / "gunicorn.conf.py"))


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture(autouse=True)
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def in_collected_generations(obj: object) -> bool:
    return any(id(o) == id(obj) for generation in range(3) for o in gc.get_objects(generation))


def test_live_objects_are_frozen_and_the_garbage_is_collected():
    live = Node()
    garbage = Node()
    garbage.other = Node()
    garbage.other.other = garbage  # a cycle: only the cyclic collector frees it
    dead = weakref.ref(garbage)
    del garbage

    frozen = freeze_startup_objects()

    # Another thread of the test process may free a frozen object in between (never freeze one), so the count
    # can only have fallen since.
    assert 0 < gc.get_freeze_count() <= frozen
    assert dead() is None
    assert not in_collected_generations(live)
    assert in_collected_generations(Node())  # what is created afterwards is collected as before


def test_the_gunicorn_hook_loads_the_urlconf_and_freezes(monkeypatch, settings):
    from django.urls import clear_url_caches

    monkeypatch.delitem(sys.modules, settings.ROOT_URLCONF, raising=False)
    clear_url_caches()
    try:
        CONF["post_worker_init"](worker=None)

        assert settings.ROOT_URLCONF in sys.modules  # the URLconf and its views, loaded before freezing
        assert gc.get_freeze_count() > 0
    finally:
        clear_url_caches()  # the resolver goes back to the URLconf module the other tests use


@pytest.mark.parametrize("signal", [worker_ready, worker_process_init], ids=["worker_ready", "worker_process_init"])
def test_the_worker_signals_freeze(signal):
    assert gc.get_freeze_count() == 0

    signal.send(sender=None)

    assert gc.get_freeze_count() > 0
