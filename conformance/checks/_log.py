"""Checks of one area (see conformance/_framework.py)."""
