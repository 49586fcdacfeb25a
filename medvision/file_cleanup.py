"""A deleted row never leaves its file behind.

Django deletes rows, not the files their FileFields name: a recording deleted with its
session stayed on disk (a clinical file nobody can reach or account for). ``delete_files``
is connected as a post_delete receiver to every model with stored files; the files go
once the deleting transaction has committed (a rolled-back delete keeps them).
"""

from __future__ import annotations

import logging

from django.db import models, transaction

logger = logging.getLogger(__name__)


def delete_files(sender, instance, **kwargs) -> None:
    for field in instance._meta.get_fields():
        if not isinstance(field, models.FileField):
            continue
        stored = getattr(instance, field.name)
        if stored and stored.name:
            storage, name = stored.storage, stored.name
            transaction.on_commit(lambda storage=storage, name=name: _delete(storage, name))


def _delete(storage, name: str) -> None:
    try:
        storage.delete(name)
    except OSError as error:  # reported, never fatal: the orphan sweep finds it later
        logger.warning("Could not delete %s after its row was deleted: %s", name, error)
