"""Plain helpers the tests share: data set-up and look-ups, clients, flows, payloads.

Fixtures stay in the ``conftest.py`` files; test modules import helpers from here, never from a conftest.
"""
