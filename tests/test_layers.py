"""The house has floors, and imports only point down (DESIGN.md "Shape").

Every module of the product is read (not imported) and each `import`/`from` of a project room,
at any depth (a lazy import inside a function counts), is checked against the floors below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first; a room may import its own floor's other rooms only where said below.
FLOORS: list[set[str]] = [
    {"domain"},
    {"core"},
    {"store", "providers"},
    {"ingest"},
    {"activities"},
    {"workflows"},
    {"api"},
    {"deskclone", "worker"},
]
FLOOR = {room: level for level, rooms in enumerate(FLOORS) for room in rooms}
# Rooms on one floor that must not lean on each other either.
APART = {("store", "providers"), ("providers", "store"), ("worker", "deskclone")}


def imported_rooms(path: Path) -> set[tuple[str, int]]:
    """(project room, line) of every import in the file."""
    found: set[tuple[str, int]] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            room = name.split(".")[0]
            if room in FLOOR or room == "emulator":
                found.add((room, node.lineno))
    return found


def room_of(path: Path) -> str:
    relative = path.relative_to(ROOT)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def product_files() -> list[Path]:
    files = [ROOT / "worker.py"]
    for room in [*FLOOR, "emulator"]:
        if (ROOT / room).is_dir():
            files += sorted((ROOT / room).rglob("*.py"))
    return [f for f in files if "migrations" not in f.parts]


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_point_down(path: Path) -> None:
    own = room_of(path)
    wrong = []
    for room, line in sorted(imported_rooms(path)):
        if room == own:
            continue
        if own == "emulator":
            wrong.append(f"line {line}: the emulator imports {room} (it imports nothing of ours)")
        elif room == "emulator":
            if own != "deskclone":  # only the entry points run it (`deskclone emulator`)
                wrong.append(f"line {line}: the product imports the emulator")
        elif FLOOR[room] > FLOOR[own] or (own, room) in APART:
            wrong.append(f"line {line}: {own} (floor {FLOOR[own]}) imports {room} ({FLOOR[room]})")
    assert not wrong, "\n".join(wrong)


def test_every_room_is_on_a_floor() -> None:
    """A new top-level package must be given its floor here before it can be imported."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert packages - {"tests", "bench"} <= {*FLOOR, "emulator"}
