"""Project-wide pytest fixtures: users in each role and a session owned by a clinician."""

import pytest

from procedures.tests.factories import ProcedureSessionFactory, UserFactory


@pytest.fixture
def clinician(db):
    return UserFactory(role="clinician", username="dr.owner")


@pytest.fixture
def other_clinician(db):
    return UserFactory(role="clinician", username="dr.other")


@pytest.fixture
def qa_user(db):
    return UserFactory(role="qa_reviewer", username="qa.reviewer", is_staff=True)


@pytest.fixture
def connector(db):
    return UserFactory(role="ehr_connector", username="connector.ehr")


@pytest.fixture
def admin_user(db):
    return UserFactory(username="root.admin", is_staff=True, is_superuser=True)


@pytest.fixture
def session(clinician):
    return ProcedureSessionFactory(clinician=clinician)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs ~0.3 s per user; tests don't need it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def media_root(settings, tmp_path):
    """Clinical files written by a test go to a private temporary folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT
