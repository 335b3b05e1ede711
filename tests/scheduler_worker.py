"""A `supportbot scheduler` stand-in on a shared PostgreSQL job store, for the tests: starts the
real schedule (nightly at 03:00 UTC) with the real claims, then fires the job the way
APScheduler does when it is due, once per line it reads, and prints what this process did.

    python -m tests.scheduler_worker STATE_URL DATA_DIR

Each line read fires the job: an empty line at the real time, an ISO time as if the clock
read that (tomorrow's run without waiting for tomorrow). Prints "RAN <host>:<pid>" when this
process ran that due run, "FIRED" after every firing, and at end of input "NEXT <iso time>".
"""

from __future__ import annotations

import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

import bot.app.scheduler as scheduler_module
from bot.app.pg_state import ScheduledRunClaims, sqlalchemy_url
from bot.app.scheduler import NightlyReindex, ScheduleSettings


def main() -> None:
    url, data_dir = sys.argv[1], Path(sys.argv[2])
    clock: list[datetime | None] = [None]
    claims = ScheduledRunClaims(url)  # wired as IndexOperations wires a scheduler on state.url
    settings = ScheduleSettings("0 3 * * *", "UTC", 720 * 60, data_dir / "scheduler.sqlite",
                                jobstore_url=sqlalchemy_url(url), claim=claims.claim, starting=claims.starting,
                                now=lambda: clock[0] or datetime.now(timezone.utc))
    schedule = NightlyReindex(settings, lambda: print(f"RAN {socket.gethostname()}:{os.getpid()}", flush=True))
    next_run = schedule.start()
    print("STARTED", flush=True)
    for line in sys.stdin:  # the test lets every worker start before any fires
        clock[0] = datetime.fromisoformat(line.strip()) if line.strip() else None
        scheduler_module.run_scheduled_reindex()  # what APScheduler calls in each process when the run is due
        print("FIRED", flush=True)
    print(f"NEXT {next_run.isoformat()}", flush=True)
    schedule.shutdown()


if __name__ == "__main__":
    main()
