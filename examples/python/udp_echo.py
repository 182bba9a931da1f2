#!/usr/bin/env python3
"""A UDP echo server in Python on Norman's sockets, through libnorman and ctypes (no build step, no binding code).

    NORMAN_LIB=build/native/libnorman.so python3 examples/python/udp_echo.py 7000
"""
import ctypes
import os
import socket
import struct
import sys

norman = ctypes.CDLL(os.environ.get("NORMAN_LIB", "libnorman.so"), use_errno=True)
norman.norman_last_error.restype = ctypes.c_char_p
norman.norman_recvfrom.restype = ctypes.c_ssize_t
norman.norman_sendto.restype = ctypes.c_ssize_t


def check(result, call):
    if result < 0:
        error = ctypes.get_errno()
        sys.exit(f"udp_echo: {call}: {os.strerror(error)} ({norman.norman_last_error().decode()})")
    return result


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7000
    handle = check(norman.norman_socket(socket.AF_INET, socket.SOCK_DGRAM, 0), "socket")
    # struct sockaddr_in: family (host order), port and address (network order), 8 bytes of zero.
    local = struct.pack("=H", socket.AF_INET) + struct.pack("!H4s", port, socket.inet_aton("0.0.0.0")) + bytes(8)
    check(norman.norman_bind(handle, local, len(local)), "bind")
    print(f"listening on udp port {port}", flush=True)
    buffer = ctypes.create_string_buffer(2048)
    peer = ctypes.create_string_buffer(28)
    peer_length = ctypes.c_uint32()
    while True:
        peer_length.value = len(peer)
        received = check(norman.norman_recvfrom(handle, buffer, len(buffer), 0, peer, ctypes.byref(peer_length)), "recvfrom")
        check(norman.norman_sendto(handle, buffer, received, 0, peer, peer_length), "sendto")


if __name__ == "__main__":
    main()
