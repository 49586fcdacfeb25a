"""Fixtures shared by the analysis tests live in the project conftest.py."""
