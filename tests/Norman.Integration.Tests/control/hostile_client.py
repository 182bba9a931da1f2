#!/usr/bin/env python3
"""A hostile control-socket client for the integration tests, written from docs/control-protocol.md alone.

    hostile_client.py connect-many PATH N      open N connections and keep them; print "opened N", then
                                               "refused R" (connections the daemon answered with a refusal)
                                               and wait for stdin to close
    hostile_client.py oversize PATH BYTES      declare a request of BYTES bytes, send 10 of them; print the
                                               daemon's error code, or "none" if it answered nothing
    hostile_client.py pending PATH N BYTES     N connections, each declaring BYTES and sending 10 of them;
                                               print "refused R" (how many the daemon refused), wait for stdin
    hostile_client.py no-read PATH N [OP]      send N requests (OP, default 'sockets') without reading an answer,
                                               then read until the daemon closes; print "closed after B bytes"
    hostile_client.py connect-then-root PATH   (started as root) connect as uid 65534 with root kept as the
                                               saved uid, take root back, print "ready", wait for stdin

Each message is a 4-byte little-endian length and that many bytes of JSON.
"""
import json
import os
import select
import socket
import struct
import sys
import time


def frame(request):
    body = json.dumps(request).encode()
    return struct.pack('<i', len(body)) + body


def read_answer(connection, timeout=10):
    connection.settimeout(timeout)
    prefix = b''
    while len(prefix) < 4:
        chunk = connection.recv(4 - len(prefix))
        if not chunk:
            return None
        prefix += chunk
    (length,) = struct.unpack('<i', prefix)
    body = b''
    while len(body) < length:
        chunk = connection.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return json.loads(body)


def connect(path):
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(path)
    return connection


def count_answered(connections, wait=2.0):
    """How many of the connections the daemon has answered unasked (a refusal) or closed, within a short wait."""
    deadline = time.monotonic() + wait
    answered = set()
    while time.monotonic() < deadline and len(answered) < len(connections):
        waiting = [c for c in connections if c.fileno() not in answered]
        ready, _, _ = select.select(waiting, [], [], max(0.0, deadline - time.monotonic()))
        answered.update(c.fileno() for c in ready)
    return len(answered)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == 'connect-many':
        count = int(sys.argv[3])
        held = [connect(path) for _ in range(count)]
        print(f'opened {len(held)}', flush=True)
        print(f'refused {count_answered(held)}', flush=True)
        sys.stdin.read()
    elif mode == 'oversize':
        connection = connect(path)
        connection.sendall(struct.pack('<i', int(sys.argv[3])) + b'{"op":"hel')
        answer = read_answer(connection)
        print(answer['error']['code'] if answer and answer.get('error') else 'none', flush=True)
    elif mode == 'pending':
        count, size = int(sys.argv[3]), int(sys.argv[4])
        held = []
        for _ in range(count):
            connection = connect(path)
            connection.sendall(struct.pack('<i', size) + b'{"op":"hel')
            held.append(connection)
        print(f'refused {count_answered(held)}', flush=True)
        sys.stdin.read()
    elif mode == 'no-read':
        connection = connect(path)
        request = frame({'version': 1, 'id': 1, 'op': sys.argv[4] if len(sys.argv) > 4 else 'sockets'})
        connection.settimeout(30)
        sent = 0
        try:
            for _ in range(int(sys.argv[3])):
                connection.sendall(request)
                sent += 1
        except OSError:
            pass
        received = 0
        connection.settimeout(20)
        while True:
            try:
                chunk = connection.recv(65536)
            except socket.timeout:
                print(f'still open after {received} bytes', flush=True)
                return
            except OSError:
                break
            if not chunk:
                break
            received += len(chunk)
        print(f'closed after {received} bytes', flush=True)
    elif mode == 'connect-then-root':
        os.setresgid(65534, 65534, 0)
        os.setresuid(65534, 65534, 0)
        connection = connect(path)
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)
        print('ready', flush=True)
        sys.stdin.read()
        connection.close()
    else:
        print(f'unknown mode {mode}', file=sys.stderr)
        sys.exit(2)


if __name__ == '__main__':
    main()
