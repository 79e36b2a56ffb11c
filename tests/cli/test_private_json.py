"""dev.json holds the admin token and the children's pids; tests and operators read it while
`deskclone dev` rewrites it after restarting a killed child."""

import json
import stat
import threading
from pathlib import Path

from deskclone.children import write_private_json


def test_only_the_owner_may_read_it(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    write_private_json(path, {"admin_token": "secret"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"admin_token": "secret"}
    assert [p.name for p in tmp_path.iterdir()] == ["dev.json"]


def test_a_reader_never_sees_a_half_written_file(tmp_path: Path) -> None:
    path = tmp_path / "dev.json"
    write_private_json(path, {"pids": {"worker": 0}})
    seen: list[str] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            seen.append(path.read_text())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for pid in range(1, 2000):
            write_private_json(path, {"pids": {"worker": pid}, "padding": "x" * 4096})
    finally:
        done.set()
        reader.join()
    assert seen
    assert all(json.loads(text)["pids"]["worker"] >= 0 for text in seen)
