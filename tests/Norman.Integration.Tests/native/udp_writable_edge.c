/*
 * A non-blocking UDP sender in C on libnorman that waits for room as nginx and event loops do: epoll, edge-triggered,
 * on the socket's readiness descriptor. The test runs it on a slow wire (the peer sinks port 9), so the TX pipe fills:
 * the send that finds it full fails with EAGAIN; poll then says the socket is not writable, and EPOLLOUT must come as one
 * edge once the wire has drained half of it, after which sends succeed again. Without that edge the program would wait
 * forever; with an early one it would spin.
 * Usage: udp_writable_edge PEER_ADDRESS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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
        /* Level-triggered, as poll and select see it: not writable while the pipe is full (nor readable: nothing came). */
        struct pollfd level = { .fd = readiness, .events = POLLIN | POLLOUT };
        REQUIRE(poll(&level, 1, 0) == 0);
        /* Edge-triggered: one EPOLLOUT edge when half of it has left on the wire, none before, and then a send succeeds. */
        double start = seconds();
        int woken = 0;
        while (!woken && seconds() - start < 10) {
            int n = epoll_wait(epoll, &ready, 1, 100);
            REQUIRE(n >= 0);
            woken = n == 1;
        }
        REQUIRE(woken && ready.events == EPOLLOUT);
        REQUIRE(poll(&level, 1, 0) == 1 && level.revents == POLLOUT);
        REQUIRE(norman_sendto(udp, payload, sizeof payload, 0, (struct sockaddr *)&peer, sizeof peer) == (ssize_t)sizeof payload);
        printf("round %d: %d datagrams before EAGAIN, EPOLLOUT after %.0f ms\n", round, sent, (seconds() - start) * 1000);
    }
    REQUIRE(norman_close(udp) == 0);
    printf("udp writable edge: all %d checks passed\n", checks);
    return 0;
}
