#!/usr/bin/env python3
"""How long a burst's memory stays in a service once the burst is over.

Usage: loadtest/burst-decay.py PID [PORT]

PID is the service's process (its anonymous resident memory, RssAnon, is read) and PORT its
HTTP port (default 8080); the requests are `GET /healthz`. 25 keep-alive connections poll it
throughout; five times, 300 more connections open at once, send three requests each and
close, and the memory is read 0, 1, 2, 5, 10 and 20 s after they close. Prints each cycle
and the median of the five at each mark. Used for BENCHMARKS.md's "How long a burst's
memory stays" (the gateway on the release build, started on its own with
`MARQUEE_ENV=local`, Redis running).
"""
import asyncio
import statistics
import sys

PID = int(sys.argv[1])
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: marquee\r\n\r\n"
MARKS = [0, 1, 2, 5, 10, 20]


def anonymous_kib():
    with open(f"/proc/{PID}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise RuntimeError("no RssAnon")


async def ask(conn):
    reader, writer = conn
    writer.write(REQUEST)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)


async def opened():
    conn = await asyncio.open_connection("127.0.0.1", PORT)
    await ask(conn)
    return conn


async def main():
    loop = asyncio.get_running_loop()
    keep = [await opened() for _ in range(25)]
    for _ in range(20):
        await asyncio.gather(*(ask(c) for c in keep))
        await asyncio.sleep(0.5)
    print(f"start: {anonymous_kib()} KiB", flush=True)
    rows = []
    for cycle in range(5):
        burst = await asyncio.gather(*(opened() for _ in range(300)))
        for _ in range(3):
            await asyncio.gather(*(ask(c) for c in burst))
        for _, writer in burst:
            writer.close()
        closed = loop.time()
        row = []
        for mark in MARKS:
            while loop.time() - closed < mark:
                await asyncio.gather(*(ask(c) for c in keep))
                await asyncio.sleep(0.25)
            row.append(anonymous_kib())
        rows.append(row)
        print(f"cycle {cycle}: " + ", ".join(f"{m} s {v}" for m, v in zip(MARKS, row)), flush=True)
    medians = [statistics.median(r[i] for r in rows) for i in range(len(MARKS))]
    print("median: " + ", ".join(f"{m} s {v:.0f}" for m, v in zip(MARKS, medians)), flush=True)


asyncio.run(main())
