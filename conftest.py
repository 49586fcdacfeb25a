"""Project-wide pytest fixtures: users in each role and a session owned by a clinician."""

import os
from pathlib import Path

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


@pytest.fixture(scope="session")
def demo_model_dir():
    """The real demo model, built once and reused across runs (it is deterministic)."""
    from analysis.engine import ensure_demo_model

    path = Path(os.environ.get("MEDVISION_TEST_MODEL_DIR", Path(__file__).resolve().parent / "var" / "test-cache" / "demo-gemma3"))
    ensure_demo_model(str(path))
    return str(path)


@pytest.fixture(scope="session", autouse=True)
def _release_test_database_from_child_processes(django_db_setup, django_db_blocker):
    """Server and worker processes started by tests (and a prefork worker's children, which
    outlive their parent by a moment) may still hold a PostgreSQL connection when the test
    database is dropped; end those sessions first so the drop never fails."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    from django.db import DatabaseError

    try:
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
    except DatabaseError:
        pass  # no test database was created in this run (no test used one): nothing to release


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Throttle and rate-limit counters live in the cache (Redis in the services profile);
    each test starts with none."""
    from testing.servers import clear_shared_cache

    clear_shared_cache()


@pytest.fixture(autouse=True)
def _fresh_channel_layers():
    """Channels caches one layer object per alias for the whole process, and a Redis layer
    keeps locks and tasks bound to the event loop that first used it. Each test runs its
    own loop, so a layer left over from a slow or failed test made every later one fail
    ("asyncio.Lock ... is bound to a different event loop"). Every test gets new layers,
    and no messages or groups left by another test (the Redis ones are flushed)."""
    import asyncio

    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    for layer in list(channel_layers.backends.values()):
        flush = getattr(layer, "flush", None)
        if flush is not None:  # a Redis layer keeps messages and groups in Redis itself
            try:
                asyncio.run(flush())
            except RuntimeError:  # called from a running loop (cannot happen in a sync fixture)
                pass
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def _no_real_openai_key(settings):
    """No test may reach the real OpenAI service, whatever the shell running it has set;
    voice tests that need a key point it at a fake server on loopback."""
    settings.OPENAI_API_KEY = ""


def pytest_sessionfinish(session, exitstatus):
    """pytest-django deletes the SQLite test database file but not WAL mode's -wal/-shm
    companions; remove this process's so they do not pile up in var/."""
    from django.conf import settings

    name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3") and name:
        for suffix in ("-wal", "-shm"):
            Path(f"{name}{suffix}").unlink(missing_ok=True)
