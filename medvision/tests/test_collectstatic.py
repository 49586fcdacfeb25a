"""A release runs ``collectstatic`` with the deployed storage (hashed, compressed names). That
storage refuses a file whose ``sourceMappingURL`` names a map that is not shipped, so a
vendored library without its map would stop the release; this runs the real step."""

from django.core.management import call_command
from django.test import override_settings

DEPLOYED_STATIC = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}


def test_the_release_collectstatic_step_succeeds(tmp_path):
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=DEPLOYED_STATIC):
        call_command("collectstatic", interactive=False, verbosity=0)
    manifest = (tmp_path / "staticfiles.json").read_text()
    for vendored in ("vendor/tus-js-client/tus.min.js", "vendor/chartjs/chart.umd.min.js"):
        assert f'"{vendored}"' in manifest
