/*
 * libnorman's calls fail as the BSD calls they mirror do: the errno a C program checks, and a sentence in
 * norman_last_error(). Run against a daemon (NORMAN_SOCKET); prints one line per check and exits non-zero on the
 * first that fails.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"

#define EXPECT(call, expected_errno)                                                                      \
    do {                                                                                                  \
        errno = 0;                                                                                        \
        long result_ = (long)(call);                                                                      \
        if (result_ != -1 || errno != (expected_errno) || norman_last_error()[0] == '\0') {               \
            printf("FAIL %s: returned %ld, errno %d (%s), wanted -1 and %s; message: %s\n", #call, result_, \
                   errno, strerror(errno), #expected_errno, norman_last_error());                         \
            return 1;                                                                                     \
        }                                                                                                 \
        printf("ok %s -> %s: %s\n", #call, #expected_errno, norman_last_error());                        \
        checks++;                                                                                         \
    } while (0)

static struct sockaddr_in ipv4(const char *address, int port)
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, address, &in.sin_addr);
    return in;
}

int main(void)
{
    char buffer[64];
    struct sockaddr_in any = ipv4("0.0.0.0", 7100);

    EXPECT(norman_socket(AF_UNIX, SOCK_DGRAM, 0), EAFNOSUPPORT);
    EXPECT(norman_socket(AF_INET, SOCK_RAW, 0), ESOCKTNOSUPPORT);
    EXPECT(norman_socket(AF_INET, SOCK_DGRAM, IPPROTO_TCP), EPROTONOSUPPORT);
    EXPECT(norman_send(4242, "x", 1, 0), EBADF);
    EXPECT(norman_close(4242), EBADF);

    int udp = norman_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(udp > 0);
    EXPECT(norman_recv(udp, buffer, sizeof buffer, 0), EINVAL); /* not bound yet */
    EXPECT(norman_bind(udp, (struct sockaddr *)&any, 8), EINVAL);
    struct sockaddr_in6 six;
    memset(&six, 0, sizeof six);
    six.sin6_family = AF_INET6;
    EXPECT(norman_bind(udp, (struct sockaddr *)&six, sizeof six), EAFNOSUPPORT);
    REQUIRE(norman_bind(udp, (struct sockaddr *)&any, sizeof any) == 0);
    EXPECT(norman_recv(udp, buffer, sizeof buffer, MSG_DONTWAIT), EAGAIN);
    EXPECT(norman_recv(udp, buffer, sizeof buffer, MSG_OOB), EOPNOTSUPP);
    EXPECT(norman_send(udp, "x", 1, 0), EDESTADDRREQ);
    EXPECT(norman_getpeername(udp, (struct sockaddr *)&six, &(socklen_t){sizeof six}), ENOTCONN);

    /* getsockname writes no more than it is given and says how much there was, as getsockname(2). */
    unsigned char name[16];
    memset(name, 0xAA, sizeof name);
    socklen_t length = 4;
    REQUIRE(norman_getsockname(udp, (struct sockaddr *)name, &length) == 0);
    REQUIRE(length == sizeof(struct sockaddr_in));
    REQUIRE(name[0] == AF_INET && name[2] == (7100 >> 8) && name[3] == (7100 & 0xff) && name[4] == 0xAA);

    int again = norman_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(again > udp);
    EXPECT(norman_bind(again, (struct sockaddr *)&any, sizeof any), EADDRINUSE);
    REQUIRE(norman_close(again) == 0);

    /* SO_REUSEPORT: two sockets that both ask share a port; one that does not is refused, as on Linux. */
    struct sockaddr_in grouped = ipv4("0.0.0.0", 7102);
    int on = 1, first = norman_socket(AF_INET, SOCK_DGRAM, 0), second = norman_socket(AF_INET, SOCK_DGRAM, 0);
    int outsider = norman_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(norman_setsockopt(first, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
    REQUIRE(norman_setsockopt(second, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == 0);
    REQUIRE(norman_bind(first, (struct sockaddr *)&grouped, sizeof grouped) == 0);
    REQUIRE(norman_bind(second, (struct sockaddr *)&grouped, sizeof grouped) == 0);
    EXPECT(norman_bind(outsider, (struct sockaddr *)&grouped, sizeof grouped), EADDRINUSE);
    REQUIRE(norman_close(first) == 0 && norman_close(second) == 0 && norman_close(outsider) == 0);

    int nonblocking = norman_socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in other = ipv4("0.0.0.0", 7101);
    REQUIRE(norman_bind(nonblocking, (struct sockaddr *)&other, sizeof other) == 0);
    EXPECT(norman_recvfrom(nonblocking, buffer, sizeof buffer, 0, NULL, NULL), EAGAIN);

    /* A closed handle is free again, and the lowest free one is handed out next, as descriptors are. */
    REQUIRE(norman_close(udp) == 0);
    EXPECT(norman_recv(udp, buffer, sizeof buffer, MSG_DONTWAIT), EBADF);
    int reused = norman_socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(reused == udp);
    REQUIRE(norman_bind(reused, (struct sockaddr *)&any, sizeof any) == 0); /* the port was released with the socket */

    int tcp = norman_socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(tcp > 0);
    EXPECT(norman_recv(tcp, buffer, sizeof buffer, 0), ENOTCONN);
    EXPECT(norman_accept(tcp, NULL, NULL), EINVAL);
    EXPECT(norman_shutdown(tcp, SHUT_WR), ENOTCONN);
    struct sockaddr_in listen_on = ipv4("0.0.0.0", 7102);
    REQUIRE(norman_bind(tcp, (struct sockaddr *)&listen_on, sizeof listen_on) == 0);
    REQUIRE(norman_listen(tcp, 16) == 0);
    EXPECT(norman_send(tcp, "x", 1, 0), ENOTCONN);
    EXPECT(norman_connect(tcp, (struct sockaddr *)&listen_on, sizeof listen_on), EISCONN);
    int nonblocking_tcp = norman_socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in listen_too = ipv4("0.0.0.0", 7103);
    REQUIRE(norman_bind(nonblocking_tcp, (struct sockaddr *)&listen_too, sizeof listen_too) == 0);
    REQUIRE(norman_listen(nonblocking_tcp, 16) == 0);
    EXPECT(norman_accept(nonblocking_tcp, NULL, NULL), EAGAIN);
    int taken = norman_socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(norman_bind(taken, (struct sockaddr *)&listen_on, sizeof listen_on) == 0); /* held only at listen */
    EXPECT(norman_listen(taken, 16), EADDRINUSE);

    printf("all %d checks passed\n", checks);
    return 0;
}
