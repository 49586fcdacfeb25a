"""Start-up configuration: bad values stop the process with a message naming the variable."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = secrets.token_urlsafe(64)


def run_django(env_overrides, *args):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}
    env.update(env_overrides)
    env["DJANGO_SETTINGS_MODULE"] = "medvision.settings"
    cmd = [sys.executable, "manage.py", *args] if args else [sys.executable, "-c", "import django; django.setup()"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("DEBUG", "maybe", "DEBUG must be one of"),
        ("ANALYZER_BATCH_SIZE", "four", "ANALYZER_BATCH_SIZE must be a whole number"),
        ("ANALYZER_BATCH_SIZE", "0", "ANALYZER_BATCH_SIZE must be at least 1"),
        ("ANALYZER_BACKEND", "magic", "ANALYZER_BACKEND must be one of"),
        ("ANALYZER_ENGINE", "turbo", "ANALYZER_ENGINE must be one of auto, fast, reference"),
        ("ANALYZER_JUMP_FORWARD", "sometimes", "ANALYZER_JUMP_FORWARD must be one of"),
        ("ANALYZER_CONTEXT_TOKENS", "-1", "ANALYZER_CONTEXT_TOKENS must be at least 0"),
        ("DATABASE_URL", "mysql://db/medvision", "DATABASE_URL must be a URL starting with"),
        ("REDIS_URL", "localhost:6379", "REDIS_URL must be a URL starting with"),
        ("SECRET_KEY_FILE", "/nonexistent/secret", "SECRET_KEY_FILE names '/nonexistent/secret'"),
        ("VOICE_AUDIO_MAX_REALTIME_FACTOR", "0.5", "VOICE_AUDIO_MAX_REALTIME_FACTOR must be 0 (no limit) or at least 1"),
        ("FFMPEG_BINARY", "/nonexistent/ffmpeg", "FFMPEG_BINARY must be the path of an executable file"),
        ("FFPROBE_BINARY", "/", "FFPROBE_BINARY must be the path of an executable file or none"),
    ],
)
def test_it_refuses_to_start_on_a_bad_value_and_names_it(variable, value, expected):
    result = run_django({variable: value})
    assert result.returncode != 0
    assert expected in result.stderr


SERVICES = {"REDIS_URL": "redis://127.0.0.1:6379/15"}  # nothing connects during these checks


def print_setting(env, expression):
    result = run_django(env, "shell", "-c", f"from django.conf import settings; print({expression})")
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_debug_is_off_unless_asked_for():
    assert print_setting({}, "settings.DEBUG") == "False"
    assert print_setting({"DEBUG": "true"}, "settings.DEBUG") == "True"


def test_a_services_process_refuses_to_start_without_a_secret_key():
    """There is no built-in key to fall back on: a shared public key would let anyone
    forge sessions and signed cookies."""
    for debug in ("false", "true"):
        result = run_django({**SERVICES, "DEBUG": debug, "ALLOWED_HOSTS": "medvision.hospital.test"})
        assert result.returncode != 0
        assert "SECRET_KEY (or SECRET_KEY_FILE) must be set in the services profile" in result.stderr


def test_the_embedded_profile_makes_its_own_key_once(tmp_path):
    env = {"VAR_DIR": str(tmp_path)}
    first = print_setting(env, "settings.SECRET_KEY")
    assert len(first) >= 50 and first == print_setting(env, "settings.SECRET_KEY")
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first != print_setting({"VAR_DIR": str(tmp_path / "other")}, "settings.SECRET_KEY")


def test_production_needs_allowed_hosts():
    result = run_django({**SERVICES, "SECRET_KEY": GOOD_SECRET})
    assert result.returncode != 0
    assert "ALLOWED_HOSTS must list" in result.stderr


def test_a_weak_secret_key_is_refused():
    result = run_django({**SERVICES, "SECRET_KEY": "short", "ALLOWED_HOSTS": "medvision.hospital.test"})
    assert result.returncode != 0
    assert "at least 50 random characters" in result.stderr


def test_a_deployment_gets_https_settings_and_the_embedded_profile_plain_http():
    deployed = {**SERVICES, "SECRET_KEY": GOOD_SECRET, "ALLOWED_HOSTS": "medvision.hospital.test"}
    check = "(settings.SECURE_SSL_REDIRECT, settings.SESSION_COOKIE_SECURE, settings.SECURE_HSTS_SECONDS > 0)"
    assert print_setting(deployed, check) == "(True, True, True)"
    assert print_setting({}, "getattr(settings, 'SECURE_SSL_REDIRECT', False)") == "False"


def test_production_flag_passes_check_deploy_without_warnings():
    result = run_django(
        {**SERVICES, "SECRET_KEY": GOOD_SECRET, "ALLOWED_HOSTS": "medvision.hospital.test"},
        "check", "--deploy", "--fail-level", "WARNING",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_secret_key_can_come_from_a_file(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(GOOD_SECRET + "\n")
    result = run_django(
        {"DEBUG": "false", "SECRET_KEY_FILE": str(secret_file), "ALLOWED_HOSTS": "h.test"},
        "shell", "-c", "from django.conf import settings; print(settings.SECRET_KEY == '%s')" % GOOD_SECRET,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_profile_under_test_is_the_one_intended(settings):
    """The test script runs the suite twice; make sure each run is really that profile."""
    profile = os.environ.get("MEDVISION_PROFILE_UNDER_TEST", "embedded")
    engine = settings.DATABASES["default"]["ENGINE"]
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    if profile == "services":
        assert engine == "django.db.backends.postgresql"
        assert layer == "channels_redis.core.RedisChannelLayer"
        assert settings.CELERY_BROKER_URL.startswith("redis://")
    else:
        assert engine == "django.db.backends.sqlite3"
        assert layer == "channels.layers.InMemoryChannelLayer"
        assert settings.CELERY_BROKER_URL == "memory://"


def test_env_example_documents_every_variable_settings_read():
    import re

    settings_src = (ROOT / "medvision/settings/__init__.py").read_text()
    read = set(re.findall(r'env\.\w+\(\s*"([A-Z0-9_]+)"', settings_src))
    read |= {f"{name}_FILE" for name in re.findall(r'env\.secret\(\s*"([A-Z0-9_]+)"', settings_src)}
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert read - documented == set(), f"Undocumented in .env.example: {sorted(read - documented)}"


def test_sqlite_from_database_url_waits_for_the_write_lock_like_the_default(tmp_path):
    # Test servers (and operators) may name SQLite by URL; without these options a deferred
    # transaction fails at once with "database is locked" when the worker thread writes.
    result = run_django(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/medvision.sqlite3"}, "shell", "-c",
        "from django.conf import settings; o = settings.DATABASES['default']['OPTIONS']; "
        "print(o['transaction_mode'], o['timeout'], o['init_command'])",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == ["IMMEDIATE", "20", "PRAGMA", "journal_mode=WAL;"]
