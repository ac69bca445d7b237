"""Benchmark: the kernel's part of a live update, the floor under bench/crowd_live.py's "µs per update".

    python bench/loopback_send.py [--sockets 2000] [--rounds 50] [--size 420] [--client-procs 2] [--reader-poll-ms 0]

One process writes one `--size`-byte frame to each of `--sockets` loopback TCP sockets with a bare
`socket.send` (no event loop, no WebSocket code), `--rounds` times, 5 rounds a second; the readers wait in
epoll in `--client-procs` child processes, as bench/live_clients.py's do. It prints the writer's CPU
(utime + stime) per send: on loopback the sender's send also runs the receiving side's TCP work and wakes the
reader, all charged to the sender, so this is what the web process pays per subscriber before any Python.

With `--reader-poll-ms N` the readers do not sleep in epoll: they look (epoll with timeout 0) and, when nothing is
ready, sleep N ms. A send then finds no reader waiting and wakes nobody; the difference between the two runs is
what waking the readers costs the sender, a cost a server pays on loopback only (on a network the phones' own
kernels receive and wake).
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import socket
import time


def cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU seconds of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def read_all(address: tuple[str, int], sockets: int, expected: int, ready: int, poll: float) -> None:
    """A child: connect, say so on the pipe, read until `expected` bytes arrived (`poll` > 0: without sleeping in
    epoll, see the module's doc)."""
    selector = selectors.DefaultSelector()
    for _ in range(sockets):
        client = socket.create_connection(address)
        client.setblocking(False)
        selector.register(client, selectors.EVENT_READ)
    os.write(ready, b"k")
    got = 0
    while got < expected:
        events = selector.select(0 if poll else None)
        if not events:
            time.sleep(poll)
        for key, _ in events:
            got += len(key.fileobj.recv(1 << 16))  # type: ignore[union-attr]
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--size", type=int, default=420, help="bytes per frame (a crowd update is ~400)")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--reader-poll-ms", type=float, default=0.0,
                        help="readers poll every N ms instead of sleeping in epoll (0: they sleep in epoll)")
    args = parser.parse_args()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(args.sockets)
    per_child = args.sockets // args.client_procs
    children = []
    for _ in range(args.client_procs):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(ready_r)
            read_all(listener.getsockname(), per_child, per_child * args.rounds * args.size, ready_w,
                     args.reader_poll_ms / 1000)
        os.close(ready_w)
        children.append((pid, ready_r))
    writers = []
    for _ in range(per_child * args.client_procs):
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio and uvloop set it
        writers.append(conn)
    for _, ready_r in children:
        os.read(ready_r, 1)
    frame = b"x" * args.size
    start = cpu_seconds()
    for _ in range(args.rounds):
        for conn in writers:
            conn.send(frame)
        time.sleep(0.2)
    user, system = (b - a for a, b in zip(start, cpu_seconds(), strict=True))
    sends = args.rounds * len(writers)
    for pid, _ in children:
        os.waitpid(pid, 0)
    readers = f"readers poll every {args.reader_poll_ms:g} ms" if args.reader_poll_ms else "readers wait in epoll"
    print(f"{len(writers)} sockets ({readers}), {args.rounds} rounds of {args.size} B: writer CPU "
          f"{(user + system) / sends * 1e6:.2f} µs per send ({system / sends * 1e6:.2f} of it in the kernel); "
          f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
