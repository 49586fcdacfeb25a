"""Benchmark-only support code (not used by the app): ``bench_support`` (building the
analyzer under test, frames, machine description, tables, results files),
``medgemma_shape`` (a random-weight model with MedGemma-4B's architecture) and
``engine_variants`` (the engine set up the ways only a benchmark needs, from the
production classes as they are).

The scripts in ``benchmarks/`` run as ``python benchmarks/<script>.py`` from the repository
root and put the root on ``sys.path``, so they import this as ``benchmarks.support``.
"""
