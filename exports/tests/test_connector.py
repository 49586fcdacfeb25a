"""EHR connector onboarding: a token-only account that reads signed sessions, and whose
token an administrator can revoke."""

import pytest
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def test_a_new_connector_reads_signed_sessions_until_its_token_is_revoked(signed, capsys):
    call_command("create_connector", "epic-test")
    token = Token.objects.get(user__username="connector.epic-test")
    assert token.key in capsys.readouterr().out
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    url = reverse("api-procedure-fhir", args=[signed.session.pk])
    assert client.get(url).status_code == 200

    token.delete()  # what "delete" on the Auth Token admin page does
    response = client.get(url)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"
    assert "Invalid token" in response.json()["error"]["message"]


def test_a_connector_account_cannot_log_in_to_the_portal(capsys):
    from django.test import Client

    call_command("create_connector", "nopw")
    user = Token.objects.get(user__username="connector.nopw").user
    assert not user.has_usable_password()
    response = Client().post(reverse("login"), {"username": user.username, "password": ""})
    assert response.status_code == 200  # the form again, not a redirect into the portal
