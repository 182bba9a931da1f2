/*
 * EPOLLONESHOT on a Norman socket under `norman run`, as on Linux: a datagram's arrival is reported once, then nothing
 * while the socket stays readable, until EPOLL_CTL_MOD re-arms it (then at once, being still readable). Usage:
 * epoll_oneshot ECHO_ADDRESS ECHO_PORT (a UDP echo server). Exits 0 when all held.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "check.h"
#include "interposed.h"

int main(int argc, char **argv)
{
    REQUIRE(argc == 3);
    struct sockaddr_in echo = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    REQUIRE(inet_pton(AF_INET, argv[1], &echo.sin_addr) == 1);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(7022) };
    REQUIRE(bind(fd, (struct sockaddr *)&any, sizeof any) == 0);
    REQUIRE(is_norman(fd));

    int epoll = epoll_create1(0);
    struct epoll_event interest = { .events = EPOLLIN | EPOLLONESHOT, .data.fd = fd }, ready;
    REQUIRE(epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &interest) == 0);
    REQUIRE(epoll_wait(epoll, &ready, 1, 0) == 0); /* nothing yet */
    REQUIRE(sendto(fd, "one", 3, 0, (struct sockaddr *)&echo, sizeof echo) == 3);
    REQUIRE(epoll_wait(epoll, &ready, 1, 5000) == 1 && ready.data.fd == fd && (ready.events & EPOLLIN));
    REQUIRE(epoll_wait(epoll, &ready, 1, 100) == 0); /* still readable, but disarmed */
    REQUIRE(epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &interest) == 0);
    REQUIRE(epoll_wait(epoll, &ready, 1, 0) == 1 && (ready.events & EPOLLIN)); /* re-armed: still readable */
    char buffer[16];
    REQUIRE(recv(fd, buffer, sizeof buffer, 0) == 3);
    printf("epoll oneshot: all %d checks passed\n", checks);
    return 0;
}
