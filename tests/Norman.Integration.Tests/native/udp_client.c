/*
 * A UDP client in C on libnorman against the virtual wire's peer, which echoes datagrams sent to its port 7 (the test
 * arranges it): connect, send, MSG_PEEK, MSG_TRUNC, recvfrom's source and getpeername, as on kernel sockets.
 * Usage: udp_client PEER_ADDRESS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"

int main(int argc, char **argv)
{
    static const char message[] = "hello norman";
    char buffer[64];
    struct sockaddr_in peer;
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_port = htons(7);
    REQUIRE(argc == 2 && inet_pton(AF_INET, argv[1], &peer.sin_addr) == 1);

    int udp = norman_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(udp > 0);
    REQUIRE(norman_connect(udp, (struct sockaddr *)&peer, sizeof peer) == 0);
    struct sockaddr_in named;
    socklen_t length = sizeof named;
    REQUIRE(norman_getpeername(udp, (struct sockaddr *)&named, &length) == 0);
    REQUIRE(length == sizeof named && named.sin_port == htons(7) && named.sin_addr.s_addr == peer.sin_addr.s_addr);
    length = sizeof named;
    REQUIRE(norman_getsockname(udp, (struct sockaddr *)&named, &length) == 0 && named.sin_port != 0); /* bound by connect */

    REQUIRE(norman_send(udp, message, sizeof message - 1, 0) == (ssize_t)sizeof message - 1);
    /* MSG_PEEK leaves the datagram where it is; MSG_TRUNC says how long it was, beyond what the buffer took. */
    REQUIRE(norman_recv(udp, buffer, sizeof buffer, MSG_PEEK) == (ssize_t)sizeof message - 1);
    REQUIRE(memcmp(buffer, message, sizeof message - 1) == 0);
    REQUIRE(norman_recv(udp, buffer, 5, MSG_PEEK | MSG_TRUNC) == (ssize_t)sizeof message - 1);
    struct sockaddr_in source;
    length = sizeof source;
    memset(buffer, 0, sizeof buffer);
    REQUIRE(norman_recvfrom(udp, buffer, 5, 0, (struct sockaddr *)&source, &length) == 5); /* cut, as recv cuts */
    REQUIRE(memcmp(buffer, "hello", 5) == 0 && buffer[5] == 0);
    REQUIRE(length == sizeof source && source.sin_port == htons(7) && source.sin_addr.s_addr == peer.sin_addr.s_addr);
    REQUIRE(norman_recv(udp, buffer, sizeof buffer, MSG_DONTWAIT) == -1 && errno == EAGAIN); /* the cut rest is gone */

    /* A burst: every datagram comes back once, in order. */
    for (int i = 0; i < 100; i++) {
        int n = snprintf(buffer, sizeof buffer, "datagram %d", i);
        REQUIRE(norman_send(udp, buffer, (size_t)n, 0) == n);
    }
    for (int i = 0; i < 100; i++) {
        char expected[32];
        int n = snprintf(expected, sizeof expected, "datagram %d", i);
        ssize_t received = norman_recv(udp, buffer, sizeof buffer, 0);
        REQUIRE(received == n && memcmp(buffer, expected, (size_t)n) == 0);
    }
    REQUIRE(norman_close(udp) == 0);
    printf("udp client: all %d checks passed\n", checks);
    return 0;
}
