"""A TCP proxy on loopback that delays every reply by a fixed time: ``python proxy.py LISTEN TARGET DELAY_MS``.

Requests go to the target at once; each chunk of the reply is held for
``DELAY_MS`` before it is passed on, in order, so every round trip through
the proxy is that much longer (asyncio's timers resolve to about a
millisecond, which is the delay the benchmark asks for). With ``DELAY_MS`` 0
it measures what the proxy alone costs.
"""

from __future__ import annotations

import asyncio
import sys


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _delayed_replies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay_s: float) -> None:
    """Replies are timestamped on arrival and released in order once their delay has passed."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def release() -> None:
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)

    releaser = asyncio.create_task(release())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay_s, data))
    except ConnectionError:
        pass
    finally:
        while not queue.empty():
            await asyncio.sleep(delay_s)
        releaser.cancel()
        writer.close()


async def main(listen: int, target: int, delay_ms: float) -> None:
    delay_s = delay_ms / 1000.0

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        await asyncio.gather(_forward(client_r, server_w), _delayed_replies(server_r, client_w, delay_s))

    server = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
