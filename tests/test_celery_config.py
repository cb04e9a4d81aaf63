"""Where `celery beat` keeps its schedule: under the git-ignored .local/, never in the project root."""

import subprocess
from pathlib import Path

from django.conf import settings

from config.celery import LocalFolderScheduler, app

PROJECT = Path(__file__).resolve().parent.parent


def test_beat_schedule_file_is_under_the_local_folder():
    schedule = Path(app.conf.beat_schedule_filename)

    assert schedule.parent == settings.LOCAL_DIR


def test_git_ignores_the_beat_schedule_and_tool_caches():
    paths = [".local/celerybeat-schedule", "celerybeat-schedule.db", ".schemathesis/x", ".mypy_cache/x"]

    ignored = subprocess.run(
        ["git", "check-ignore", *paths], cwd=PROJECT, capture_output=True, text=True, check=False
    ).stdout.split()

    assert ignored == paths


def test_beat_uses_the_scheduler_that_creates_the_missing_folder(tmp_path):
    folder = tmp_path / "fresh-clone" / ".local"

    scheduler = LocalFolderScheduler(app=app, schedule_filename=str(folder / "celerybeat-schedule"))
    scheduler.close()

    assert app.conf.beat_scheduler == "config.celery:LocalFolderScheduler"
    assert {path.name.split(".")[0] for path in folder.iterdir()} == {"celerybeat-schedule"}
