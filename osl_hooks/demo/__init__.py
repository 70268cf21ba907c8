"""Offline builders for genuine conda/Python environments, used by the tests and the local demo."""
