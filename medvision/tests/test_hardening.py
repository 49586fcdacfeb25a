"""Regression tests for the attack run's findings that belong to no single app (issue #11)."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_deeply_nested_json_is_a_json_400_not_a_server_error():
    body = "[" * 100_000
    response = APIClient().post("/api/v1/auth/token/", data=body, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "parse_error" and "nested too deeply" in error["message"]


def test_the_audit_log_filter_with_a_bad_user_id_is_not_a_server_error(qa_user):
    client = Client()
    client.force_login(qa_user)
    response = client.get("/admin/auditlog/logentry/?actor=abc")
    assert response.status_code in (200, 302)
    if response.status_code == 302:
        assert "e=1" in response["Location"]  # admin's "invalid filter" page
