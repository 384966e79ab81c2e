#!/usr/bin/env python3
"""What a burst of connections leaves in a service's memory when a few of them stay open.

Usage: loadtest/burst-survivors.py PID [PORT] [SEED] [random|old] [CYCLES]

PID is the service's process (its anonymous resident memory, RssAnon, is what is read) and PORT
its HTTP port (default 8080); the requests are `GET /healthz`. 25 keep-alive connections poll
it every half second for 20 s, then each cycle opens 300 more at once, sends three requests
on each, and keeps 25 of all the open ones: chosen at random (`random`, the default: as a load
generator's pool or fans' phones keep some of a burst's connections) or the 25 from before the
burst (`old`). Those poll for 30 s; the line printed per cycle is the memory at the burst's
peak and the median of the last 10 s. A service whose allocator gives a burst back shows the
same figure after every cycle, near the start's; one whose surviving connections pin the
burst's pages shows `random` well above `old`. Used for BENCHMARKS.md's "Connections that
outlive a burst" (the gateway on the release build, started on its own with
`MARQUEE_ENV=local`, Redis running).
"""
import asyncio
import random
import statistics
import sys

PID = int(sys.argv[1])
PORT = int(sys.argv[2]) if len(sys.argv) > 2 else 8080
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 1
MODE = sys.argv[4] if len(sys.argv) > 4 else "random"
CYCLES = int(sys.argv[5]) if len(sys.argv) > 5 else 8
KEEP, BURST = 25, 300
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: marquee\r\n\r\n"


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


async def poll(conns, secs):
    loop = asyncio.get_running_loop()
    end = loop.time() + secs
    readings = []
    while loop.time() < end:
        await asyncio.gather(*(ask(c) for c in conns))
        readings.append(anonymous_kib())
        await asyncio.sleep(0.5)
    return readings


async def main():
    random.seed(SEED)
    keep = [await opened() for _ in range(KEEP)]
    readings = await poll(keep, 20)
    print(f"start: {statistics.median(readings[-10:]):.0f} KiB", flush=True)
    for cycle in range(CYCLES):
        burst = await asyncio.gather(*(opened() for _ in range(BURST)))
        for _ in range(3):
            await asyncio.gather(*(ask(c) for c in burst))
        if MODE == "old":
            gone = burst
        else:
            every = burst + keep
            random.shuffle(every)
            keep, gone = every[:KEEP], every[KEEP:]
        for _, writer in gone:
            writer.close()
        peak = anonymous_kib()
        readings = await poll(keep, 30)
        settled = statistics.median(readings[-20:])
        print(f"cycle {cycle}: peak {peak} KiB, after {settled:.0f} KiB", flush=True)


asyncio.run(main())
