"""The voice copilot's settings are parsed as strictly as the rest."""

import pytest

from medvision.tests.test_settings import run_django


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("OPENAI_REALTIME_BASE_URL", "ftp://proxy/v1", "OPENAI_REALTIME_BASE_URL must be a URL starting with ws://"),
        ("VOICE_MAX_AUDIO_CHUNK_BYTES", "lots", "VOICE_MAX_AUDIO_CHUNK_BYTES must be a whole number"),
    ],
)
def test_a_bad_voice_setting_stops_start_up_and_names_it(variable, value, expected):
    result = run_django({variable: value})
    assert result.returncode != 0 and expected in result.stderr


def test_the_api_key_can_come_from_a_file(tmp_path):
    key = tmp_path / "openai"
    key.write_text("sk-from-file\n")
    result = run_django(
        {"OPENAI_API_KEY_FILE": str(key)},
        "shell",
        "-c",
        "from django.conf import settings; print(settings.OPENAI_API_KEY == 'sk-from-file')",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True"
