"""``atomic_dir`` with writers of the same folder at once: a WebShop env server's first envs, made on
several threads, each built the shared search index and saved it to the same cache entry; one lost the
race between checking for the folder and renaming its own onto it (OSError, Directory not empty),
and its create answered 500."""
from __future__ import annotations

import threading

from sdar_gym.io import atomic_dir


def test_concurrent_writers_of_one_folder_all_succeed(tmp_path):
    target, errors, writers, rounds = tmp_path / "entry", [], 8, 200
    barrier = threading.Barrier(writers)

    def write(i: int) -> None:
        for r in range(rounds):
            barrier.wait()
            try:
                with atomic_dir(target) as tmp:
                    (tmp / "data").write_text(f"{i} {r}")
            except OSError as e:
                errors.append(e)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]  # no temp or moved-aside folder left
    assert (target / "data").read_text().endswith(f" {rounds - 1}")  # one whole write of the last round


def test_a_file_in_the_way_is_replaced(tmp_path):
    (tmp_path / "entry").write_text("old")
    with atomic_dir(tmp_path / "entry") as tmp:
        (tmp / "data").write_text("new")
    assert (tmp_path / "entry" / "data").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]
