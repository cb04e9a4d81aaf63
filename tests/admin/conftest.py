"""Fixtures for the SaaS console tests: a logged-in staff browser session and a connector per workspace."""

import pytest
from django.test import Client

from tests.factories import ConnectorFactory


@pytest.fixture
def staff_client(staff) -> Client:
    client = Client()
    client.force_login(staff)
    return client


@pytest.fixture
def acme_connector(acme):
    return ConnectorFactory(workspace=acme, name="Acme phone check")


@pytest.fixture
def globex_connector(globex):
    return ConnectorFactory(workspace=globex, name="Globex enrich")
