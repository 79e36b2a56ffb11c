"""Can one process hold 1,000 IMAP IDLE connections? The watch alone (providers/imap/idle.py),
N of them on one event loop against one real Dovecot, no Temporal and no database.

    .venv/bin/python -m bench.idle_hold [--mailboxes 1000] [--idle-seconds 30] [--probes 50]

Measured: seconds until every watch is live (`all_live_s`) and the CPU that took; the process's
RSS before and with them (`rss_per_watch_kib`); its CPU share while they sit idle
(`idle_cpu_percent`); `--probes` mails APPENDed to as many users, and how long until their
watch saw the EXISTS (`exists_p50_ms`, `exists_max_ms`, `exists_missed`); Dovecot's process
count. JSON on the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

from bench.imap_push import INOTIFY_LIMIT, PASSWORD, running_dovecot
from emulator.dovecot import Dovecot
from providers.imap import idle


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


async def hold(dovecot: Dovecot, count: int, idle_seconds: float, probes: int) -> dict[str, Any]:

    rss_before = rss_mb()
    live = 0
    all_live = asyncio.Event()
    seen: dict[int, float] = {}

    def watcher(n: int) -> Any:
        async def on_live() -> None:
            nonlocal live
            live += 1
            if live == count:
                all_live.set()

        async def on_new_mail() -> None:
            seen.setdefault(n, time.monotonic())

        account = idle.IdleAccount(dovecot.host, dovecot.port, "none", f"b{n}", PASSWORD)
        return idle.watch(account, on_new_mail, on_live, renew_seconds=25 * 60)

    cpu_start, started = cpu_seconds(), time.monotonic()
    tasks = [asyncio.create_task(watcher(n)) for n in range(count)]
    await asyncio.wait_for(all_live.wait(), 600)
    all_live_s, connect_cpu = time.monotonic() - started, cpu_seconds() - cpu_start
    cpu_idle_start = cpu_seconds()
    await asyncio.sleep(idle_seconds)
    idle_cpu = (cpu_seconds() - cpu_idle_start) / idle_seconds
    rss_with = rss_mb()
    sent: dict[int, float] = {}
    for n in range(0, count, max(1, count // probes)):
        sent[n] = time.monotonic()
        await asyncio.to_thread(dovecot.append, f"b{n}", b"Subject: probe\r\n\r\nprobe\r\n")
    await asyncio.sleep(3)
    waits = sorted((seen[n] - at) * 1000 for n, at in sent.items() if n in seen)
    processes = dovecot.process_count()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "mailboxes": count,
        "all_live_s": round(all_live_s, 1),
        "connect_cpu_s": round(connect_cpu, 1),
        "rss_before_mb": round(rss_before, 1),
        "rss_with_mb": round(rss_with, 1),
        "rss_per_watch_kib": round((rss_with - rss_before) * 1024 / count, 1),
        "idle_cpu_percent": round(idle_cpu * 100, 2),
        "exists_p50_ms": round(statistics.median(waits), 1) if waits else None,
        "exists_max_ms": round(max(waits), 1) if waits else None,
        "exists_missed": len(sent) - len(waits),
        "dovecot_processes": processes,
        "inotify_max_user_instances": int(INOTIFY_LIMIT.read_text()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mailboxes", type=int, default=1000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--probes", type=int, default=50)
    args = parser.parse_args()
    with running_dovecot(args.mailboxes) as dovecot:
        result = asyncio.run(hold(dovecot, args.mailboxes, args.idle_seconds, args.probes))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
