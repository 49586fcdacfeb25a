"""Helpers for the test suite and the benchmarks, kept out of the production packages.

``servers``: the real servers (daphne, Celery workers) as child processes against the test
database. ``videos``: generated recordings (and non-recordings) with known frame times.
Nothing under the apps imports this package (medvision/tests/test_import_graph.py).
"""
