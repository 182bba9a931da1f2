/*
 * An echo server in C on Norman's sockets (libnorman): every UDP datagram goes back to its sender, every TCP
 * connection gets back what it sends until it closes. The same program on kernel sockets would call socket(),
 * bind(), recvfrom()... : here each is norman_*, with the same arguments and errors.
 *
 *   cc -I src/Norman.Native/include examples/c/echo.c -L build/native -l:libnorman.so -o norman-echo
 *   ./norman-echo udp 7000        (or: tcp 7000; add "6" for an IPv6 socket on ::, which serves IPv4 too)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "norman.h"

static int fail(const char *call)
{
    fprintf(stderr, "norman-echo: %s: %s (%s)\n", call, strerror(errno), norman_last_error());
    return 1;
}

static void describe(int socket, const char *protocol)
{
    struct sockaddr_storage local;
    socklen_t length = sizeof local;
    char text[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (norman_getsockname(socket, (struct sockaddr *)&local, &length) == 0) {
        if (local.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&local;
            inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
            port = ntohs(in->sin_port);
        } else {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&local;
            inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
            port = ntohs(in6->sin6_port);
        }
    }
    printf("listening on %s %s port %d\n", protocol, text, port);
    fflush(stdout);
}

static int serve_udp(int socket)
{
    char buffer[2048];
    for (;;) {
        struct sockaddr_storage peer;
        socklen_t length = sizeof peer;
        ssize_t received = norman_recvfrom(socket, buffer, sizeof buffer, 0, (struct sockaddr *)&peer, &length);
        if (received < 0)
            return fail("recvfrom");
        if (norman_sendto(socket, buffer, (size_t)received, 0, (struct sockaddr *)&peer, length) < 0)
            return fail("sendto");
    }
}

static int serve_tcp(int listener)
{
    char buffer[65536];
    if (norman_listen(listener, 128) < 0)
        return fail("listen");
    describe(listener, "tcp");
    for (;;) {
        int connection = norman_accept(listener, NULL, NULL);
        if (connection < 0)
            return fail("accept");
        ssize_t received;
        while ((received = norman_recv(connection, buffer, sizeof buffer, 0)) > 0) {
            if (norman_send(connection, buffer, (size_t)received, 0) < 0) {
                fail("send");
                break;
            }
        }
        if (received < 0)
            fail("recv");
        norman_close(connection);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "udp") != 0 && strcmp(argv[1], "tcp") != 0)) {
        fprintf(stderr, "usage: %s udp|tcp PORT [6]\n", argv[0]);
        return 2;
    }
    int tcp = strcmp(argv[1], "tcp") == 0;
    int ipv6 = argc > 3 && strcmp(argv[3], "6") == 0;
    int socket = norman_socket(ipv6 ? AF_INET6 : AF_INET, tcp ? SOCK_STREAM : SOCK_DGRAM, 0);
    if (socket < 0)
        return fail("socket");
    struct sockaddr_storage local;
    memset(&local, 0, sizeof local);
    socklen_t length;
    if (ipv6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&local;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_any;
        in6->sin6_port = htons((uint16_t)atoi(argv[2]));
        length = sizeof *in6;
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&local;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_ANY);
        in->sin_port = htons((uint16_t)atoi(argv[2]));
        length = sizeof *in;
    }
    if (norman_bind(socket, (struct sockaddr *)&local, length) < 0)
        return fail("bind");
    if (tcp)
        return serve_tcp(socket);
    describe(socket, "udp");
    return serve_udp(socket);
}
