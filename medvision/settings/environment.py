"""Strict environment parsing.

django-environ's casts are forgiving (``DEBUG=maybe`` silently reads as False, a typo in a
number raises a bare ValueError). A clinical system should refuse to start on a value it does
not understand, and say which variable is wrong, so every read goes through ``StrictEnv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class StrictEnv(environ.Env):
    """An ``environ.Env`` whose casts fail loudly with the variable's name."""

    def bool(self, var, default=environ.Env.NOTSET):  # noqa: A003 - mirrors environ's API
        raw = self._raw(var, default)
        if isinstance(raw, bool):
            return raw
        value = str(raw).strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ImproperlyConfigured(
            f"{var} must be one of true/false, yes/no, on/off, 1/0; got {raw!r}."
        )

    def int(self, var, default=environ.Env.NOTSET, *, minimum=None, maximum=None):  # noqa: A003
        raw = self._raw(var, default)
        try:
            value = int(str(raw).strip())
        except ValueError:
            raise ImproperlyConfigured(f"{var} must be a whole number; got {raw!r}.") from None
        self._check_range(var, value, minimum, maximum)
        return value

    def float(self, var, default=environ.Env.NOTSET, *, minimum=None, maximum=None):  # noqa: A003
        raw = self._raw(var, default)
        try:
            value = float(str(raw).strip())
        except ValueError:
            raise ImproperlyConfigured(f"{var} must be a number; got {raw!r}.") from None
        self._check_range(var, value, minimum, maximum)
        return value

    def choice(self, var, choices, default=environ.Env.NOTSET):
        value = str(self._raw(var, default)).strip()
        if value not in choices:
            raise ImproperlyConfigured(
                f"{var} must be one of {', '.join(sorted(choices))}; got {value!r}."
            )
        return value

    def executable_or_empty(self, var, *, allowed_words=()):
        """A path to an executable file, one of ``allowed_words``, or empty (= default)."""
        value = str(self._raw(var, "")).strip()
        if value and value not in allowed_words and not (os.path.isfile(value) and os.access(value, os.X_OK)):
            words = f" or {' / '.join(allowed_words)}" if allowed_words else ""
            raise ImproperlyConfigured(f"{var} must be the path of an executable file{words}; "
                                       f"{value!r} is not one.")
        return value

    def url_or_empty(self, var, schemes, default=""):
        value = str(self._raw(var, default)).strip()
        if value and value.split("://", 1)[0] not in schemes:
            raise ImproperlyConfigured(
                f"{var} must be a URL starting with {' or '.join(s + '://' for s in schemes)}; "
                f"got {value!r}."
            )
        return value

    def secret(self, var, default=""):
        """A secret from ``VAR`` or from the file named by ``VAR_FILE`` (Docker/K8s secrets)."""
        file_var = f"{var}_FILE"
        path = self._raw(file_var, "")
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise ImproperlyConfigured(f"{file_var} names {path!r}, which cannot be read: {exc}.") from None
        return str(self._raw(var, default))

    def _raw(self, var, default):
        try:
            return self.get_value(var, cast=str, default=default)
        except ImproperlyConfigured:
            raise ImproperlyConfigured(f"Set the {var} environment variable.") from None

    @staticmethod
    def _check_range(var, value, minimum, maximum):
        if minimum is not None and value < minimum:
            raise ImproperlyConfigured(f"{var} must be at least {minimum}; got {value}.")
        if maximum is not None and value > maximum:
            raise ImproperlyConfigured(f"{var} must be at most {maximum}; got {value}.")


def installation_secret_key(path: Path) -> str:
    """This installation's own secret key, generated on first use and kept in ``path``
    (mode 0600). For the embedded profile, so that no key is ever shared between
    installations; a deployment sets SECRET_KEY itself."""
    import secrets

    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if len(key) >= 50:
            return key
        raise ImproperlyConfigured(f"{path} does not hold a usable secret key; delete it to have a new one made.")
    key = secrets.token_urlsafe(64)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    return key
