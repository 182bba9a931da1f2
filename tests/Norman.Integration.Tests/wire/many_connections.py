#!/usr/bin/python3
"""Opens COUNT TCP connections to HOST:PORT (an echo server), sends a line on each and reads it back, holds them
all open and prints "connected COUNT"; on a line on stdin, closes them all and prints "closed".

    many_connections.py HOST PORT COUNT
"""
import asyncio
import resource
import sys

host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def one(i):
    for attempt in range(5):
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
            break
        except (OSError, asyncio.TimeoutError):
            if attempt == 4:
                raise
    line = f"{i}\n".encode()
    writer.write(line)
    await writer.drain()
    if await asyncio.wait_for(reader.readexactly(len(line)), 30) != line:
        raise RuntimeError(f"connection {i} echoed something else")
    return writer


async def main():
    writers = []
    for start in range(0, count, 500):  # in waves, as a listen backlog wants
        writers += await asyncio.gather(*(one(i) for i in range(start, min(count, start + 500))))
    print(f"connected {len(writers)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    for writer in writers:
        writer.close()
    await asyncio.gather(*(writer.wait_closed() for writer in writers), return_exceptions=True)
    print("closed", flush=True)


asyncio.run(main())
