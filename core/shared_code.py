"""One compiled copy of the workflow modules per worker process, however many workflows run.

Temporal's sandbox imports a workflow's module afresh for every workflow run it keeps in
its cache: its own module object, so one run's globals never leak into another's, and its
imports go through the sandbox's restrictions (`datetime.now()` refused, and so on). Python
then reads the module's `.pyc` again each time and makes new code objects from it, about
40 KiB per cached run of `workflows.mailbox`: 40 MB of a worker with 1,000 mailboxes
(docs/benchmarks.md §3). Code objects are immutable and hold no globals (a function binds
them to its module's), so every sandbox can execute the same ones: this finder hands the
sandbox a loader that compiles each module once. The module body still runs in each sandbox,
with its imports restricted as before (tests/workflows/test_sandbox.py).

A side effect worth having: a worker runs the workflow code it started with, even if a
deploy rewrites the files under it, instead of mixing versions between new runs and old.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from types import CodeType, ModuleType


class _OnceCompiledLoader(SourceFileLoader):
    def __init__(self, fullname: str, path: str, codes: dict[str, CodeType]) -> None:
        super().__init__(fullname, path)
        self._codes = codes

    def get_code(self, fullname: str) -> CodeType | None:
        code = self._codes.get(fullname)
        if code is None:
            code = super().get_code(fullname)
            if code is not None:
                self._codes[fullname] = code
        return code


class SharedCodeFinder(MetaPathFinder):
    """Finds the modules of `packages` (and the packages themselves) as the path finder
    would, with a loader that compiles each one once per process."""

    def __init__(self, packages: Iterable[str]) -> None:
        self.packages = tuple(packages)
        self.codes: dict[str, CodeType] = {}

    def covers(self, fullname: str) -> bool:
        return any(fullname == p or fullname.startswith(p + ".") for p in self.packages)

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not self.covers(fullname):
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not SourceFileLoader:
            return spec  # not a plain source module (a namespace package, an extension)
        assert spec.origin is not None  # a source file's loader has one
        spec.loader = _OnceCompiledLoader(fullname, spec.origin, self.codes)
        return spec


def share_workflow_code(packages: Iterable[str]) -> SharedCodeFinder:
    """Installs the finder for `packages` once per process; a second call returns the
    installed finder as it is."""
    for finder in sys.meta_path:
        if isinstance(finder, SharedCodeFinder):
            return finder
    finder = SharedCodeFinder(packages)
    sys.meta_path.insert(0, finder)
    return finder
