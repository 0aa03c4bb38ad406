"""A cheap closed-loop load generator: N keep-alive HTTP/1.1 connections in one asyncio loop, in its own process.

    echo '{"port": 5000, "seconds": 10, "users": [{"cookie": "session=...", "paths": {"dashboard": "/dashboard"}}]}' \\
        | python -m bench.crowd

Each user sends its next GET as soon as the last answer was read (a closed loop), over one connection, as a browser
tab does, reconnecting when the server closes it; ``Set-Cookie`` answers update its cookies. Requests are written and
answers parsed by hand (status line, headers, ``Content-Length`` body), so one request costs this process tens of
microseconds, not the milliseconds of a thread per user with ``http.client`` under the GIL: the server, not the
client, is what is measured. The answer (stdout, JSON) holds each page's times in ms, the errors, and this process's
own CPU seconds beside the wall seconds, so a reader can see the client was not the bottleneck.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time


async def _user(port: int, cookies: dict[str, str], paths: dict[str, str], offset: int, stop_at: float,
                timings: dict[str, list[float]], errors: list[str]) -> None:
    names = list(paths)
    index = offset
    reader = writer = None
    while time.perf_counter() < stop_at:
        name = names[index % len(names)]
        index += 1
        fresh = writer is None
        if fresh:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        cookie = "; ".join(f"{key}={value}" for key, value in cookies.items())
        request = (f"GET {paths[name]} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept-Language: pt-BR\r\n"
                   + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n")
        started = time.perf_counter()
        writer.write(request.encode())
        try:
            status, length, close = await _read_head(reader, cookies)
            await reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            # On a kept-alive connection the server may have closed it as this request went out (its keep-alive
            # timeout): a browser reconnects and asks again. On a fresh connection it is an error.
            if fresh:
                errors.append(f"{paths[name]}: {error!r}")
            writer.close()
            reader = writer = None
            index -= 1
            continue
        timings[name].append((time.perf_counter() - started) * 1000)
        if status != 200:
            errors.append(f"{paths[name]}: {status}")
        if close:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def _read_head(reader: asyncio.StreamReader, cookies: dict[str, str]) -> tuple[int, int, bool]:
    status = int((await reader.readuntil(b"\r\n")).split(b" ", 2)[1])
    length, close = 0, False
    while True:
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            return status, length, close
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip()
        if name == "content-length":
            length = int(value)
        elif name == "connection":
            close = value.lower() == "close"
        elif name == "set-cookie":
            key, _, rest = value.partition("=")
            cookies[key.strip()] = rest.split(";", 1)[0]
        elif name == "transfer-encoding":
            raise RuntimeError("chunked answers are not read by this client")


async def _crowd(spec: dict) -> dict:
    users = spec["users"]
    timings: dict[str, list[float]] = {name: [] for user in users for name in user["paths"]}
    errors: list[str] = []
    stop_at = time.perf_counter() + spec["seconds"]
    await asyncio.gather(*(_user(spec["port"], dict(_cookies(user["cookie"])), user["paths"], n, stop_at, timings,
                                 errors) for n, user in enumerate(users)))
    return {"timings": timings, "errors": errors}


def _cookies(header: str):
    for part in header.split(";"):
        if "=" in part:
            key, _, value = part.strip().partition("=")
            yield key, value


def run(spec: dict) -> dict:
    cpu, wall = time.process_time(), time.perf_counter()
    result = asyncio.run(_crowd(spec))
    result["client_cpu_seconds"] = time.process_time() - cpu
    result["wall_seconds"] = time.perf_counter() - wall
    return result


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
