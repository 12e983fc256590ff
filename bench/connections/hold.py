#!/usr/bin/env python3
"""Opens N concurrent keep-alive connections to a gateway on loopback, asks
/healthz on each, holds them all open, asks again on each, and reports the
errors. Bounded: it stops by itself. hold.py HOST PORT N HOLD_SECONDS"""
import asyncio, json, resource, sys, time

HOST, PORT, N, HOLD = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
REQ = b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n"


async def ask(reader, writer):
    writer.write(REQ)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0].split(b":")[1])
    await asyncio.wait_for(reader.readexactly(length), 30)
    return head.startswith(b"HTTP/1.1 200")


async def one(i, opened, stats):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 30)
    except Exception:
        stats["connect_errors"] += 1
        return
    try:
        ok = await ask(reader, writer)  # read before adding: += would race across the await
        stats["first_ok"] += ok
        opened.append(1)
        while len(opened) < stats["target"] and time.monotonic() < stats["deadline"]:
            await asyncio.sleep(0.2)
        stats["peak"] = max(stats["peak"], len(opened))
        await asyncio.sleep(HOLD)
        ok = await ask(reader, writer)
        stats["second_ok"] += ok
    except Exception:
        stats["request_errors"] += 1
    finally:
        writer.close()


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, N + 1000), hard))
    stats = {"target": N, "deadline": time.monotonic() + 60, "connect_errors": 0, "request_errors": 0,
             "first_ok": 0, "second_ok": 0, "peak": 0}
    opened = []
    started = time.monotonic()
    tasks = []
    for i in range(N):
        tasks.append(asyncio.create_task(one(i, opened, stats)))
        if i % 500 == 499:
            await asyncio.sleep(0.05)
    await asyncio.gather(*tasks)
    stats["seconds"] = round(time.monotonic() - started, 1)
    del stats["deadline"]
    print(json.dumps(stats))


asyncio.run(main())
