/*
 * A non-blocking UDP sender in C on libnorman that waits for room as nginx and event loops do: epoll, edge-triggered,
 * on the socket's readiness descriptor. The test runs it on a slow wire (the peer sinks port 9), so the TX pipe fills:
 * the send that finds it full fails with EAGAIN, and EPOLLOUT must then come as an edge once the wire has drained half
 * of it, after which sends succeed again. Without that edge the program would wait forever.
 * Usage: udp_writable_edge PEER_ADDRESS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "check.h"

static double seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static char payload[1400];
    struct sockaddr_in peer;
    memset(&peer, 0, sizeof peer);
    peer.sin_family = AF_INET;
    peer.sin_port = htons(9);
    REQUIRE(argc == 2 && inet_pton(AF_INET, argv[1], &peer.sin_addr) == 1);

    int udp = norman_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(udp > 0);
    REQUIRE(norman_set_nonblocking(udp, 1) == 0);
    int readiness = norman_readiness_fd(udp);
    REQUIRE(readiness >= 0);
    int epoll = epoll_create1(EPOLL_CLOEXEC);
    REQUIRE(epoll >= 0);
    struct epoll_event event = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = 1 };
    REQUIRE(epoll_ctl(epoll, EPOLL_CTL_ADD, readiness, &event) == 0);
    struct epoll_event ready;
    REQUIRE(epoll_wait(epoll, &ready, 1, 1000) == 1 && (ready.events & EPOLLOUT)); /* the edge at registration */

    for (int round = 0; round < 3; round++) {
        /* Fill the pipe: a bounded number of sends, the last one refused. */
        int sent = 0;
        ssize_t result = 0;
        while (sent < 100000 && (result = norman_sendto(udp, payload, sizeof payload, 0, (struct sockaddr *)&peer, sizeof peer)) > 0) {
            sent++;
        }
        REQUIRE(result == -1 && errno == EAGAIN);
        REQUIRE(sent > 0 || round > 0);
        /* An edge when half of it has left on the wire, after which a send succeeds. The readiness descriptor is an
         * eventfd, always writable, so an announcement may be seen twice (its signal and its drain, when this thread
         * looks between them): as a program written for Linux does, a send refused after an edge waits for the next. */
        double start = seconds();
        int sent_again = 0, early_edges = 0;
        while (!sent_again && seconds() - start < 10) {
            int n = epoll_wait(epoll, &ready, 1, 100);
            REQUIRE(n >= 0);
            if (n == 1 && (ready.events & EPOLLOUT)) {
                result = norman_sendto(udp, payload, sizeof payload, 0, (struct sockaddr *)&peer, sizeof peer);
                REQUIRE(result == (ssize_t)sizeof payload || (result == -1 && errno == EAGAIN));
                sent_again = result > 0;
                early_edges += !sent_again;
            }
        }
        REQUIRE(sent_again);
        REQUIRE(early_edges <= 2);
        printf("round %d: %d datagrams before EAGAIN, EPOLLOUT after %.0f ms (%d edge(s) before room)\n", round, sent, (seconds() - start) * 1000, early_edges);
    }
    REQUIRE(norman_close(udp) == 0);
    printf("udp writable edge: all %d checks passed\n", checks);
    return 0;
}
