import pytest
from django.test import Client

from medvision import health


@pytest.mark.django_db
def test_readyz_checks_database_channel_layer_and_broker():
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "channel_layer": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_names_the_failing_part(monkeypatch):
    def broken():
        raise ConnectionError("connection refused")

    monkeypatch.setitem(health.CHECKS, "broker", broken)
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["broker"].startswith("failed: ConnectionError")
    assert body["checks"]["database"] == "ok"
    assert body["message"] == "Not ready: broker unreachable."


def test_healthz_needs_nothing():
    assert Client().get("/healthz").json() == {"status": "ok"}
