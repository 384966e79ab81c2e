#!/usr/bin/env python3
"""What bursts of connections leave in a running service's memory (its anonymous resident
memory, RssAnon, read from /proc). The requests are `GET /healthz`; 25 keep-alive connections
poll it every half second throughout, and each cycle opens 300 more at once and sends three
requests on each. Used for BENCHMARKS.md's "Connections that outlive a burst" and "How long a
burst's memory stays" (the gateway on the release build, started on its own with
`MARQUEE_ENV=local`, Redis running).

Usage:
  loadtest/connection-bursts.py survivors PID [PORT] [SEED] [random|old] [CYCLES]
      After each burst, 25 of all the open connections stay open: chosen at random (`random`,
      the default: as a load generator's pool or fans' phones keep some of a burst's
      connections) or the 25 from before the burst (`old`); the rest close. Prints the memory
      at the burst's peak and the median of the 10 s that end 30 s after it. A service whose
      allocator gives a burst back shows the same figure after every cycle, near the start's;
      one whose surviving connections pin the burst's pages shows `random` well above `old`.
      CYCLES defaults to 8.
  loadtest/connection-bursts.py decay PID [PORT]
      Five bursts, each closing whole; prints the memory 0, 1, 2, 5, 10 and 20 s after each
      closes, then the median of the five at each mark.
"""
import asyncio
import random
import statistics
import sys

KEEP, BURST = 25, 300
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: marquee\r\n\r\n"
MARKS = [0, 1, 2, 5, 10, 20]


class Service:
    def __init__(self, pid, port):
        self.pid, self.port = pid, port

    def anonymous_kib(self):
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
        raise RuntimeError("no RssAnon")

    async def opened(self):
        conn = await asyncio.open_connection("127.0.0.1", self.port)
        await ask(conn)
        return conn

    async def burst(self):
        """BURST new connections, three requests answered on each."""
        conns = await asyncio.gather(*(self.opened() for _ in range(BURST)))
        for _ in range(3):
            await asyncio.gather(*(ask(c) for c in conns))
        return conns

    async def poll(self, conns, secs):
        """`conns` poll every half second for `secs`; the memory read after each round."""
        loop = asyncio.get_running_loop()
        end = loop.time() + secs
        readings = []
        while loop.time() < end:
            await asyncio.gather(*(ask(c) for c in conns))
            readings.append(self.anonymous_kib())
            await asyncio.sleep(0.5)
        return readings


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


async def survivors(service, seed, mode, cycles):
    random.seed(seed)
    keep = [await service.opened() for _ in range(KEEP)]
    readings = await service.poll(keep, 20)
    print(f"start: {statistics.median(readings[-10:]):.0f} KiB", flush=True)
    for cycle in range(cycles):
        burst = await service.burst()
        if mode == "old":
            gone = burst
        else:
            every = burst + keep
            random.shuffle(every)
            keep, gone = every[:KEEP], every[KEEP:]
        for _, writer in gone:
            writer.close()
        peak = service.anonymous_kib()
        readings = await service.poll(keep, 30)
        settled = statistics.median(readings[-20:])
        print(f"cycle {cycle}: peak {peak} KiB, after {settled:.0f} KiB", flush=True)


async def decay(service):
    loop = asyncio.get_running_loop()
    keep = [await service.opened() for _ in range(KEEP)]
    readings = await service.poll(keep, 10)
    print(f"start: {readings[-1]} KiB", flush=True)
    rows = []
    for cycle in range(5):
        for _, writer in await service.burst():
            writer.close()
        closed = loop.time()
        row = []
        for mark in MARKS:
            while loop.time() - closed < mark:
                await asyncio.gather(*(ask(c) for c in keep))
                await asyncio.sleep(0.25)
            row.append(service.anonymous_kib())
        rows.append(row)
        print(f"cycle {cycle}: " + ", ".join(f"{m} s {v}" for m, v in zip(MARKS, row)), flush=True)
    medians = [statistics.median(r[i] for r in rows) for i in range(len(MARKS))]
    print("median: " + ", ".join(f"{m} s {v:.0f}" for m, v in zip(MARKS, medians)), flush=True)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("survivors", "decay"):
        sys.exit(__doc__)
    service = Service(int(argv[2]), int(argv[3]) if len(argv) > 3 else 8080)
    if argv[1] == "survivors":
        seed = int(argv[4]) if len(argv) > 4 else 1
        mode = argv[5] if len(argv) > 5 else "random"
        if mode not in ("random", "old"):
            sys.exit(__doc__)
        cycles = int(argv[6]) if len(argv) > 6 else 8
        asyncio.run(survivors(service, seed, mode, cycles))
    else:
        asyncio.run(decay(service))


main(sys.argv)
