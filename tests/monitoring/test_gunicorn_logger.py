"""config/gunicorn.conf.py's logger: an access line is built only when the access logger writes it."""

import logging
import runpy
from pathlib import Path
from unittest import mock

import pytest
from gunicorn.config import Config

CONF = runpy.run_path(str(Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"))


@pytest.fixture
def logger():
    config = Config()
    config.set("logconfig_dict", CONF["logconfig_dict"])
    return CONF["logger_class"](config)


@pytest.mark.parametrize(("level", "written"), [(logging.INFO, True), (logging.WARNING, False)])
def test_an_access_line_is_built_only_when_written(logger, level, written):
    logger.access_log.setLevel(level)
    response = mock.Mock(status="202 Accepted", sent=10, headers=[])
    request = mock.Mock(headers=[], method="POST", path="/api/v1/x", query="", version=(1, 1))
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/api/v1/x",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }

    with (
        mock.patch.object(logger, "atoms", wraps=logger.atoms) as atoms,
        mock.patch.object(logger.access_log, "info") as info,
    ):
        logger.access(response, request, environ, mock.Mock(seconds=0, microseconds=1000))

    assert atoms.called is written
    assert info.called is written
