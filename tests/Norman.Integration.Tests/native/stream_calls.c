/*
 * The stream calls event loops and servers make beyond send and recv, run unmodified under `norman run`, each checked
 * against what Linux does:
 *   as a client of an echo server: TCP_NODELAY set and read back; writev and readv; sendmsg and recvmsg with two
 *   buffers each; dup, dup2 and dup3 (O_CLOEXEC) copies, any of which may be closed while the others work on;
 *   shutdown(SHUT_WR): the peer sees the end and the echo still comes back, then the end; a send after it is EPIPE,
 *   with SIGPIPE unless MSG_NOSIGNAL;
 *   as a server: accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC (both on the new descriptor, EAGAIN before data),
 *   getpeername, and a listener registered with EPOLLEXCLUSIVE reported readable when a connection waits.
 * Usage: stream_calls ECHO_ADDRESS ECHO_PORT LISTEN_PORT. Prints "listening" when the server part waits for the one
 * connection the test makes (which sends a line); prints what it saw; exits 0 when all was as on Linux.
 */
#define _GNU_SOURCE /* accept4, dup3 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static int failures;
static volatile sig_atomic_t sigpipes;

#define CHECK(condition, ...)                                       \
    do {                                                            \
        if (!(condition)) {                                         \
            printf("FAILED %s (errno %d): ", #condition, errno);    \
            printf(__VA_ARGS__);                                    \
            printf("\n");                                           \
            failures++;                                             \
        }                                                           \
    } while (0)

static void on_sigpipe(int signal) { (void)signal; sigpipes++; }

/* Reads exactly `length` bytes (or until the end, an error or five quiet seconds); how many came. */
static size_t read_fully(int fd, char *buffer, size_t length)
{
    size_t got = 0;
    struct pollfd readable = { .fd = fd, .events = POLLIN };
    while (got < length && poll(&readable, 1, 5000) == 1) {
        ssize_t n = read(fd, buffer + got, length - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static int client_part(const char *address, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1, value = 0;
    socklen_t length = sizeof value;
    CHECK(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0, "TCP_NODELAY before connect");
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, address, &to.sin_addr);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        printf("FAILED connect to %s:%d (errno %d)\n", address, port, errno);
        return 1;
    }
    CHECK(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &value, &length) == 0 && value != 0, "TCP_NODELAY reads back %d", value);

    /* writev three pieces, readv into two buffers */
    struct iovec out[3] = { { "gather ", 7 }, { "in three ", 9 }, { "pieces\n", 7 } };
    CHECK(writev(fd, out, 3) == 23, "writev");
    char first[10], second[13];
    struct iovec in[2] = { { first, sizeof first }, { second, sizeof second } };
    ssize_t n = 0;
    struct pollfd readable = { .fd = fd, .events = POLLIN };
    while (n < 23 && poll(&readable, 1, 5000) == 1) {
        ssize_t got = readv(fd, in, 2);
        if (got <= 0)
            break;
        n += got;
        /* move the iovecs on past what came (the echo may come in parts) */
        for (int i = 0; i < 2 && got > 0; i++) {
            size_t used = (size_t)got < in[i].iov_len ? (size_t)got : in[i].iov_len;
            in[i].iov_base = (char *)in[i].iov_base + used;
            in[i].iov_len -= used;
            got -= (ssize_t)used;
        }
    }
    CHECK(n == 23 && memcmp(first, "gather in ", 10) == 0 && memcmp(second, "three pieces\n", 13) == 0, "readv got %zd bytes", n);
    if (n == 23)
        printf("readv: %.10s%.13s", first, second);

    /* sendmsg and recvmsg, two buffers each */
    struct iovec message_out[2] = { { "message ", 8 }, { "in two\n", 7 } };
    struct msghdr sent = { .msg_iov = message_out, .msg_iovlen = 2 };
    CHECK(sendmsg(fd, &sent, 0) == 15, "sendmsg");
    char head[8], tail[7];
    size_t message_length = 0;
    while (message_length < 15 && poll(&readable, 1, 5000) == 1) {
        /* recvmsg into what is still missing of the two buffers */
        struct iovec message_in[2];
        int count = 0;
        if (message_length < 8)
            message_in[count++] = (struct iovec){ head + message_length, 8 - message_length };
        size_t into_tail = message_length > 8 ? message_length - 8 : 0;
        message_in[count++] = (struct iovec){ tail + into_tail, 7 - into_tail };
        struct msghdr received = { .msg_iov = message_in, .msg_iovlen = count };
        ssize_t got = recvmsg(fd, &received, 0);
        if (got <= 0)
            break;
        CHECK(received.msg_flags == 0, "recvmsg flags %d", received.msg_flags);
        message_length += (size_t)got;
    }
    CHECK(message_length == 15 && memcmp(head, "message ", 8) == 0 && memcmp(tail, "in two\n", 7) == 0, "recvmsg got %zu", message_length);
    if (message_length == 15)
        printf("recvmsg: %.8s%.7s", head, tail);

    /* copies: the socket lives while any copy does */
    int copy = dup(fd);
    CHECK(copy >= 0, "dup");
    CHECK(close(fd) == 0, "close of the first copy");
    int second_copy = dup2(copy, 100);
    int third_copy = dup3(copy, 101, O_CLOEXEC);
    CHECK(second_copy == 100 && third_copy == 101, "dup2 %d, dup3 %d", second_copy, third_copy);
    CHECK((fcntl(101, F_GETFD) & FD_CLOEXEC) != 0 && (fcntl(100, F_GETFD) & FD_CLOEXEC) == 0, "close-on-exec of the dup3 copy alone");
    CHECK(close(copy) == 0 && close(100) == 0, "closing two of the copies");
    CHECK(send(101, "through the last copy\n", 22, 0) == 22, "send through the last copy");
    char echo[64] = { 0 };
    CHECK(read_fully(101, echo, 22) == 22 && strcmp(echo, "through the last copy\n") == 0, "echo through the last copy: %s", echo);
    printf("copies: %s", echo);

    /* shutdown(SHUT_WR): the peer sees the end, its echo still comes, then the end */
    CHECK(send(101, "the last line\n", 14, 0) == 14, "send before shutdown");
    CHECK(shutdown(101, SHUT_WR) == 0, "shutdown");
    char rest[32] = { 0 };
    CHECK(read_fully(101, rest, 14) == 14 && strcmp(rest, "the last line\n") == 0, "echo after shutdown: %s", rest);
    CHECK(read_fully(101, rest, 1) == 0, "the end after the echo");
    printf("after shutdown: %s", rest);

    /* a send after shutdown: EPIPE, and SIGPIPE unless MSG_NOSIGNAL */
    signal(SIGPIPE, on_sigpipe);
    errno = 0;
    CHECK(send(101, "x", 1, MSG_NOSIGNAL) == -1 && errno == EPIPE, "send with MSG_NOSIGNAL after shutdown");
    CHECK(sigpipes == 0, "%d SIGPIPE with MSG_NOSIGNAL", (int)sigpipes);
    errno = 0;
    CHECK(send(101, "x", 1, 0) == -1 && errno == EPIPE, "send after shutdown");
    CHECK(sigpipes == 1, "%d SIGPIPE without MSG_NOSIGNAL", (int)sigpipes);
    printf("sigpipe: %d with MSG_NOSIGNAL, %d without\n", 0, (int)sigpipes);
    close(101);
    return 0;
}

static int server_part(int port)
{
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in at = { .sin_family = AF_INET, .sin_port = htons(port) };
    if (bind(listener, (struct sockaddr *)&at, sizeof at) != 0 || listen(listener, 8) != 0) {
        printf("FAILED to listen on %d (errno %d)\n", port, errno);
        return 1;
    }
    int waiting = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event interest = { .events = EPOLLIN | EPOLLEXCLUSIVE, .data.fd = listener };
    CHECK(epoll_ctl(waiting, EPOLL_CTL_ADD, listener, &interest) == 0, "EPOLLEXCLUSIVE registration");
    printf("listening\n");
    fflush(stdout);

    struct epoll_event ready;
    CHECK(epoll_wait(waiting, &ready, 1, 20000) == 1 && ready.data.fd == listener && (ready.events & EPOLLIN), "EPOLLEXCLUSIVE listener readable");
    struct sockaddr_in peer;
    socklen_t peer_length = sizeof peer;
    int connection = accept4(listener, (struct sockaddr *)&peer, &peer_length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(connection >= 0, "accept4");
    CHECK((fcntl(connection, F_GETFL) & O_NONBLOCK) != 0, "SOCK_NONBLOCK on the accepted descriptor");
    CHECK((fcntl(connection, F_GETFD) & FD_CLOEXEC) != 0, "SOCK_CLOEXEC on the accepted descriptor");
    struct sockaddr_in named;
    socklen_t named_length = sizeof named;
    CHECK(getpeername(connection, (struct sockaddr *)&named, &named_length) == 0 && named.sin_addr.s_addr == peer.sin_addr.s_addr
              && named.sin_port == peer.sin_port, "getpeername as accept4 said");
    char line[64] = { 0 };
    size_t got = read_fully(connection, line, sizeof line - 1);
    CHECK(got > 0, "the client's line");
    char from[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &peer.sin_addr, from, sizeof from);
    printf("accepted from %s: %s", from, line);
    close(connection);
    close(waiting);
    close(listener);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ECHO_ADDRESS ECHO_PORT LISTEN_PORT\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (client_part(argv[1], atoi(argv[2])) != 0 || server_part(atoi(argv[3])) != 0)
        return 1;
    printf("%s\n", failures == 0 ? "all as on Linux" : "some differ from Linux");
    return failures == 0 ? 0 : 1;
}
