#!/usr/bin/python3
"""Blind attacks on, and a shut window against, a TCP echo server at HOST:PORT, from the kernel of a test host.

    tcp_probes.py HOST PORT blind-reset    a kernel connection exchanges a line; scapy sends a reset 100 bytes into
                                           the server's window (not at its RCV.NXT), then the connection exchanges
                                           another line. Prints "echoed again", or what went wrong
    tcp_probes.py HOST PORT blind-inject   scapy sends b'INJECTED' at the server's RCV.NXT with an ACK 2**30 behind
                                           its SND.UNA, then the connection sends a line of its own; prints
                                           "received REPR": what it read back
    tcp_probes.py HOST PORT shut-window S  a connection with a small receive buffer sends 400 KB and reads nothing
                                           for S seconds (its window shuts), then reads it all back; prints
                                           "got N bytes in T s" (T: from the first read to the last)

The attacker is told the connection's sequence numbers by the kernel itself (TCP_REPAIR), so that its guesses are
exactly those RFC 5961 speaks of.
"""
import socket
import sys
import threading
import time

from scapy.all import IP, TCP, conf, send

conf.verb = 0
host, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ = 19, 20, 21
TCP_RECV_QUEUE, TCP_SEND_QUEUE = 1, 2


def exchange(connection, line):
    connection.sendall(line)
    received = b''
    while len(received) < len(line):
        chunk = connection.recv(len(line) - len(received))
        if not chunk:
            raise ConnectionError('closed')
        received += chunk
    return received


def sequences(connection):
    """The kernel's SND.NXT and RCV.NXT for the connection: the server's RCV.NXT and SND.NXT."""
    connection.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    connection.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
    ours = connection.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ)
    connection.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)
    theirs = connection.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ)
    # Out of repair without the window probe it would send (TCP_REPAIR_OFF_NO_WP): a probe is a segment outside the
    # server's window, and the server's answer to it would use up the one answer in half a second its challenge
    # ACKs share (as Linux's tcp_invalid_ratelimit).
    connection.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, -1)
    return ours & 0xFFFFFFFF, theirs & 0xFFFFFFFF


def blind(kind):
    connection = socket.create_connection((host, port), timeout=5)
    local_address, local_port = connection.getsockname()
    exchange(connection, b'hello\n')
    r, s = sequences(connection)
    forged = IP(src=local_address, dst=host)
    if kind == 'blind-reset':
        send(forged / TCP(sport=local_port, dport=port, flags='R', seq=(r + 100) & 0xFFFFFFFF))
        try:
            print('echoed again' if exchange(connection, b'again\n') == b'again\n' else 'echoed something else', flush=True)
        except OSError as error:
            print(f'failed: {error!r}', flush=True)
    else:
        send(forged / TCP(sport=local_port, dport=port, flags='PA', seq=r, ack=(s - 2**30) & 0xFFFFFFFF) / b'INJECTED')
        connection.sendall(b'after\n')
        received = b''
        try:
            while b'after\n' not in received:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                received += chunk
            connection.settimeout(0.5)  # and whatever else comes right behind it
            received += connection.recv(4096)
        except OSError:
            pass
        print(f'received {received!r}', flush=True)


def shut_window(seconds):
    data = bytes(range(256)) * 1600  # 409,600 bytes
    connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    connection.connect((host, port))
    sender = threading.Thread(target=connection.sendall, args=(data,))
    sender.start()
    time.sleep(seconds)
    received = bytearray()
    started = time.monotonic()
    connection.settimeout(30)
    while len(received) < len(data):
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    took = time.monotonic() - started
    sender.join()
    print(f'got {len(received)} bytes in {took:.3f} s' + ('' if bytes(received) == data else ' (not the bytes sent)'), flush=True)


if mode in ('blind-reset', 'blind-inject'):
    blind(mode)
elif mode == 'shut-window':
    shut_window(float(sys.argv[4]))
else:
    sys.exit(f'unknown mode {mode}')
