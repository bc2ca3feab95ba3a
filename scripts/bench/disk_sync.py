#!/usr/bin/env python3
"""How long the disk takes to make a small write durable (fdatasync), as a commit waits for it.

    .venv/bin/python scripts/bench/disk_sync.py [--dir instance] [--seconds 60] [--rate 100]

Every credited heartbeat waits for its commit to reach the disk (SQLite synchronous=FULL, PostgreSQL
synchronous_commit on), so a disk that now and then takes 0.2 s to sync stalls every heartbeat of
that moment, whatever the application does. This writes 4 KiB and syncs it `--rate` times a second
for `--seconds` in a temporary file in `--dir` (put it on the disk that holds the database), then prints
the median, p99 and the longest syncs, and how many took over 50 and 100 ms.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=".", help="a folder on the disk that holds the database")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=100.0, help="syncs a second")
    args = parser.parse_args()
    syncs = []
    with tempfile.NamedTemporaryFile(dir=args.dir, prefix="kepu-sync-") as probe:
        block, end = os.urandom(4096), time.monotonic() + args.seconds
        while time.monotonic() < end:
            started = time.monotonic()
            os.write(probe.fileno(), block)
            os.fdatasync(probe.fileno())
            syncs.append(time.monotonic() - started)
            time.sleep(max(0.0, 1 / args.rate - syncs[-1]))
    syncs.sort()
    ms = [s * 1000 for s in syncs]
    print(f"{len(ms)} syncs of 4 KiB in {args.seconds:.0f} s in {os.path.abspath(args.dir)}: "
          f"median {ms[len(ms) // 2]:.2f} ms, p99 {ms[int(len(ms) * 0.99)]:.1f} ms, "
          f"longest {', '.join(f'{m:.0f}' for m in ms[:-6:-1])} ms; "
          f"over 50 ms: {sum(m > 50 for m in ms)}, over 100 ms: {sum(m > 100 for m in ms)}")


if __name__ == "__main__":
    main()
