"""Deterministic orchestration. `workflows.registry.WORKFLOWS` is the worker's only list.

Kept empty: the workflow sandbox runs this package's `__init__` again for every workflow it
caches, so whatever it imported (every workflow module) would be rebuilt per mailbox.
"""
