/*
 * A non-blocking TCP connect as event loops make one (curl, nginx's upstreams, libevent, asyncio), run unmodified
 * under `norman run`: O_NONBLOCK set by fcntl before connect, EINPROGRESS, the socket writable once the handshake
 * ends (epoll, edge-triggered), SO_ERROR, then an echo, read once with MSG_PEEK and FIONREAD leaving it in place, and
 * one partly discarded with MSG_TRUNC; and
 * a connect to a closed port, whose SO_ERROR is ECONNREFUSED.
 * Usage: nonblocking_connect ADDRESS OPEN_PORT CLOSED_PORT. Prints what it saw; exits 0 when all was as on Linux.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int failures;

#define CHECK(condition, ...)                                       \
    do {                                                            \
        if (!(condition)) {                                         \
            printf("FAILED %s: ", #condition);                      \
            printf(__VA_ARGS__);                                    \
            printf("\n");                                           \
            failures++;                                             \
        }                                                           \
    } while (0)

/* A socket made non-blocking the old way, connecting: returns it, with what connect said in *error. */
static int start_connect(const char *address, int port, int *error)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, address, &to.sin_addr);
    int result = connect(fd, (struct sockaddr *)&to, sizeof to);
    *error = result == 0 ? 0 : errno;
    return fd;
}

static int socket_error(int fd)
{
    int error = -1;
    socklen_t length = sizeof error;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    return error;
}

/* Reads until `expected` bytes came (or five quiet seconds, or the end), into a NUL-terminated buffer. */
static void read_echo(int fd, char *buffer, size_t size, size_t expected)
{
    size_t got = 0;
    struct pollfd readable = { .fd = fd, .events = POLLIN };
    while (got < expected && poll(&readable, 1, 5000) == 1) {
        ssize_t n = recv(fd, buffer + got, size - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buffer[got] = 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ADDRESS OPEN_PORT CLOSED_PORT\n", argv[0]);
        return 2;
    }
    int error;
    int fd = start_connect(argv[1], atoi(argv[2]), &error);
    CHECK(error == EINPROGRESS, "connect said %s", strerror(error));
    char byte;
    CHECK(recv(fd, &byte, 1, 0) < 0 && errno == EAGAIN, "recv while connecting said %s", strerror(errno));

    int poller = epoll_create1(0);
    struct epoll_event interest = { .events = EPOLLOUT | EPOLLET, .data.fd = fd }, ready;
    epoll_ctl(poller, EPOLL_CTL_ADD, fd, &interest);
    int events = epoll_wait(poller, &ready, 1, 5000);
    CHECK(events == 1 && (ready.events & EPOLLOUT), "epoll_wait gave %d events (%#x)", events, events == 1 ? ready.events : 0);
    CHECK(socket_error(fd) == 0, "SO_ERROR was %d", socket_error(fd));
    printf("connected: writable after EINPROGRESS, SO_ERROR 0\n");

    const char hello[] = "hello after EINPROGRESS\n";
    CHECK(send(fd, hello, sizeof hello - 1, 0) == (ssize_t)(sizeof hello - 1), "send said %s", strerror(errno));
    char echoed[64] = { 0 };
    read_echo(fd, echoed, sizeof echoed, sizeof hello - 1);
    struct pollfd readable = { .fd = fd, .events = POLLIN };
    CHECK(strcmp(echoed, hello) == 0, "echoed '%s'", echoed);
    printf("echoed: %s", echoed);

    /* MSG_PEEK and FIONREAD on the connection: the echo stays until it is read. */
    const char again[] = "peek at me\n";
    send(fd, again, sizeof again - 1, 0);
    int pending = 0;
    for (int tries = 0; tries < 50 && pending < (int)(sizeof again - 1); tries++) {
        poll(&readable, 1, 100);
        ioctl(fd, FIONREAD, &pending);
    }
    CHECK(pending == (int)(sizeof again - 1), "FIONREAD said %d", pending);
    char peeked[64] = { 0 };
    CHECK(recv(fd, peeked, sizeof peeked - 1, MSG_PEEK) == (ssize_t)(sizeof again - 1) && strcmp(peeked, again) == 0, "peeked '%s'", peeked);
    ioctl(fd, FIONREAD, &pending);
    CHECK(pending == (int)(sizeof again - 1), "FIONREAD after the peek said %d", pending);
    char taken[64] = { 0 };
    CHECK(recv(fd, taken, sizeof taken - 1, 0) == (ssize_t)(sizeof again - 1) && strcmp(taken, again) == 0, "read '%s'", taken);
    ioctl(fd, FIONREAD, &pending);
    CHECK(pending == 0, "FIONREAD after the read said %d", pending);
    printf("peeked: %s", peeked);

    /* MSG_TRUNC on TCP discards: the buffer may be NULL, and the rest is read as usual. */
    const char partly[] = "drop 5 of this\n";
    send(fd, partly, sizeof partly - 1, 0);
    for (int tries = 0; tries < 50 && pending < (int)(sizeof partly - 1); tries++) {
        poll(&readable, 1, 100);
        ioctl(fd, FIONREAD, &pending);
    }
    CHECK(recv(fd, NULL, 5, MSG_TRUNC) == 5, "MSG_TRUNC said %s", strerror(errno));
    char rest[64] = { 0 };
    CHECK(recv(fd, rest, sizeof rest - 1, 0) == (ssize_t)(sizeof partly - 1 - 5) && strcmp(rest, partly + 5) == 0, "after the discard: '%s'", rest);
    printf("after discarding 5: %s", rest);
    close(fd);

    /* A blocking connect from a port bound first (as rsh or an active-mode FTP client does). */
    int bound = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(7012) };
    CHECK(bind(bound, (struct sockaddr *)&local, sizeof local) == 0, "bind said %s", strerror(errno));
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    inet_pton(AF_INET, argv[1], &to.sin_addr);
    CHECK(connect(bound, (struct sockaddr *)&to, sizeof to) == 0, "connect from a bound port said %s", strerror(errno));
    struct sockaddr_in name;
    socklen_t name_length = sizeof name;
    getsockname(bound, (struct sockaddr *)&name, &name_length);
    CHECK(ntohs(name.sin_port) == 7012, "getsockname gave port %d", ntohs(name.sin_port));
    const char from_port[] = "from port 7012\n";
    send(bound, from_port, sizeof from_port - 1, 0);
    char back[64] = { 0 };
    read_echo(bound, back, sizeof back, sizeof from_port - 1);
    CHECK(strcmp(back, from_port) == 0, "the echo from the bound port was '%s'", back);
    printf("bound: %s", back);
    close(bound);

    int refused = start_connect(argv[1], atoi(argv[3]), &error);
    CHECK(error == EINPROGRESS || error == ECONNREFUSED, "connect to the closed port said %s", strerror(error));
    if (error == EINPROGRESS) {
        struct pollfd writable = { .fd = refused, .events = POLLOUT };
        CHECK(poll(&writable, 1, 5000) == 1, "the refused socket never became writable");
        error = socket_error(refused);
    }
    CHECK(error == ECONNREFUSED, "SO_ERROR after the closed port was %s", strerror(error));
    CHECK(socket_error(refused) == 0, "SO_ERROR was not taken by the first read");
    printf("refused: %s\n", strerror(error));
    close(refused);
    return failures == 0 ? 0 : 1;
}
