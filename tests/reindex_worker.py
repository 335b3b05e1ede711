"""A real re-index in its own process that pauses once a chosen progress stage is done, so tests can
act while it holds the lock midway (ask again from another process, or SIGKILL it).

    python -m tests.reindex_worker DATA_DIR DOCS_DIR STAGE

Prints "PAUSED <stage> <done>/<total>" when it reaches STAGE, waits for a line on stdin,
then finishes and prints "DONE v<version>".
"""

from __future__ import annotations

import sys
from pathlib import Path

from bot.app.config import load_settings
from bot.app.application import App


def main() -> None:
    data_dir, docs_dir, pause_at = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    app = App(load_settings(None, data_dir=data_dir, docs=[str(docs_dir)]))
    paused = False

    def progress(stage: str, done: int, total: int) -> None:
        nonlocal paused
        if stage == pause_at and not paused and done >= total > 0:  # the stage done, the next not begun
            paused = True
            print(f"PAUSED {stage} {done}/{total}", flush=True)
            sys.stdin.readline()

    report = app.index_ops.index(progress=progress, started_by="worker:alice", trigger="cli")
    print(f"DONE v{report.version}", flush=True)


if __name__ == "__main__":
    main()
