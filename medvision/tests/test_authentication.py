import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from procedures.tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_login_and_logout(clinician):
    client = Client()
    response = client.post(reverse("login"), {"username": clinician.username, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get(reverse("procedures:list")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("procedures:list")).status_code == 302


def test_repeated_failed_logins_lock_the_account(clinician, settings):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": clinician.username, "password": "wrong"})
    locked = client.post(reverse("login"), {"username": clinician.username, "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many failed log-ins" in locked.content.decode()


def test_token_endpoint_issues_a_token_for_valid_credentials(connector):
    connector.set_password(PASSWORD)
    connector.save()
    response = APIClient().post(reverse("api-token"), {"username": connector.username, "password": PASSWORD})
    assert response.status_code == 200
    assert response.json()["token"] == Token.objects.get(user=connector).key


def test_token_endpoint_explains_bad_credentials():
    response = APIClient().post(reverse("api-token"), {"username": "x", "password": "y"})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "Wrong user name or password."


def test_weak_passwords_are_refused(settings):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with pytest.raises(ValidationError):
        validate_password("short1")
    with pytest.raises(ValidationError):
        validate_password("123456789012")


def test_create_connector_prints_its_token_once_and_refuses_duplicates(capsys):
    call_command("create_connector", "epic")
    out = capsys.readouterr().out
    token = Token.objects.get(user__username="connector.epic")
    assert token.key in out
    assert token.user.groups.filter(name="ehr_connector").exists()
    assert not token.user.has_usable_password()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(reverse("api-procedure-list")).status_code == 200
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="already exists"):
        call_command("create_connector", "epic")


def test_demo_users_command_refuses_without_debug(settings):
    from django.core.management.base import CommandError

    settings.DEBUG = False
    with pytest.raises(CommandError, match="local development only"):
        call_command("create_demo_users")
