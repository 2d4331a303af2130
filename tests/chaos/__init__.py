"""Chaos runs: many jobs through a real pool while worker processes are SIGKILLed at random.

``python -m tests.chaos --jobs 100000 --kill-every 2`` runs one from the project root;
``tests/test_chaos.py`` runs a short one in the default suite.
"""
