import os

import pytest

from analysis.media import ffmpeg_binary

# Bound at import: a test may monkeypatch the module attributes with plain functions.
_CACHED = (ffmpeg_binary.ffmpeg_exe, ffmpeg_binary.ffprobe_exe, ffmpeg_binary.ffmpeg_version)


@pytest.fixture(autouse=True)
def _clear_caches(settings):
    # Start from "nothing configured" (the services test run configures both binaries).
    settings.FFMPEG_BINARY = settings.FFPROBE_BINARY = ""
    # The lookups are cached per process; other tests must not see a faked PATH.
    for fn in _CACHED:
        fn.cache_clear()
    yield
    for fn in _CACHED:
        fn.cache_clear()


def test_it_prefers_an_ffmpeg_on_path(monkeypatch):
    monkeypatch.setattr(ffmpeg_binary.shutil, "which", lambda name: f"/opt/bin/{name}")
    assert ffmpeg_binary.ffmpeg_exe() == "/opt/bin/ffmpeg"
    assert ffmpeg_binary.ffprobe_exe() == "/opt/bin/ffprobe"


def test_it_falls_back_to_the_imageio_ffmpeg_binary(monkeypatch):
    import imageio_ffmpeg

    monkeypatch.setattr(ffmpeg_binary.shutil, "which", lambda name: None)
    exe = ffmpeg_binary.ffmpeg_exe()
    assert exe == imageio_ffmpeg.get_ffmpeg_exe()
    assert os.access(exe, os.X_OK)
    assert ffmpeg_binary.ffprobe_exe() is None


def test_the_operators_choice_wins_over_path(monkeypatch, settings, tmp_path):
    monkeypatch.setattr(ffmpeg_binary.shutil, "which", lambda name: f"/usr/bin/{name}")
    settings.FFMPEG_BINARY = "/opt/ffmpeg-7/bin/ffmpeg"
    settings.FFPROBE_BINARY = "/opt/ffmpeg-7/bin/ffprobe"
    assert ffmpeg_binary.ffmpeg_exe() == "/opt/ffmpeg-7/bin/ffmpeg"
    assert ffmpeg_binary.ffprobe_exe() == "/opt/ffmpeg-7/bin/ffprobe"


def test_ffprobe_can_be_switched_off_even_when_installed(monkeypatch, settings):
    monkeypatch.setattr(ffmpeg_binary.shutil, "which", lambda name: f"/usr/bin/{name}")
    settings.FFPROBE_BINARY = "none"
    assert ffmpeg_binary.ffprobe_exe() is None


def test_without_django_settings_it_reads_the_environment():
    import subprocess
    import sys

    code = ("from analysis.media import ffmpeg_binary as b; "
            "print(b.ffmpeg_exe()); print(b.ffprobe_exe())")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(FFMPEG_BINARY="/opt/x/ffmpeg", FFPROBE_BINARY="none")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__)))))
    assert out.stdout.split() == ["/opt/x/ffmpeg", "None"]


def test_it_caches_the_lookup(monkeypatch):
    calls = []
    monkeypatch.setattr(ffmpeg_binary.shutil, "which", lambda name: calls.append(name) or "/x/ffmpeg")
    ffmpeg_binary.ffmpeg_exe()
    ffmpeg_binary.ffmpeg_exe()
    assert calls == ["ffmpeg"]


def test_it_reads_the_version_of_the_real_binary():
    major, minor = ffmpeg_binary.ffmpeg_version()
    assert major >= 4 or (major, minor) == (0, 0)  # (0, 0): git build without a version


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ((4, 4), ["-vsync", "passthrough"]),
        ((5, 1), ["-fps_mode", "passthrough"]),
        ((7, 0), ["-fps_mode", "passthrough"]),
        ((0, 0), ["-fps_mode", "passthrough"]),
    ],
)
def test_it_spells_passthrough_for_the_installed_version(monkeypatch, version, expected):
    monkeypatch.setattr(ffmpeg_binary, "ffmpeg_version", lambda: version)
    assert ffmpeg_binary.passthrough_fps_args() == expected
