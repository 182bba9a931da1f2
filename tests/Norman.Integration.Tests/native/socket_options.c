/*
 * Socket options under `norman run`, as on Linux. SO_RCVBUF and SO_SNDBUF read back what the kernel reports for a
 * kernel socket given the same values (its default, doubled, capped by net.core.rmem_max). SO_RCVTIMEO and SO_SNDTIMEO: a blocking receive with a receive timeout gives up with
 * EAGAIN once it has passed (not before, not much after), getsockopt reads back what was set, a tv_usec out of range is
 * EDOM, and a signal during a receive with a timeout is EINTR even for an SA_RESTART handler (Linux restarts only calls
 * without one). Usage: socket_options (its socket is bound to the wildcard address, so it is Norman's).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "interposed.h"

static double seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void ring(int signal) { (void)signal; }

int main(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(7021) };
    REQUIRE(bind(fd, (struct sockaddr *)&any, sizeof any) == 0);
    REQUIRE(is_norman(fd));

    int kernel = socket(AF_INET, SOCK_DGRAM, 0); /* never bound: the kernel's, the reference */
    REQUIRE(kernel >= 0 && !is_norman(kernel));
    int asked[] = { -1, 4096, 65536, 64 << 20 }; /* -1: the default, not set */
    for (unsigned i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        for (int name = SO_SNDBUF; name <= SO_RCVBUF; name++) {
            if (asked[i] >= 0) {
                REQUIRE(setsockopt(fd, SOL_SOCKET, name, &asked[i], sizeof asked[i]) == 0);
                REQUIRE(setsockopt(kernel, SOL_SOCKET, name, &asked[i], sizeof asked[i]) == 0);
            }
            int norman = 0, reference = 0;
            socklen_t size = sizeof norman;
            REQUIRE(getsockopt(fd, SOL_SOCKET, name, &norman, &size) == 0);
            size = sizeof reference;
            REQUIRE(getsockopt(kernel, SOL_SOCKET, name, &reference, &size) == 0);
            REQUIRE(norman == reference);
        }
    }
    printf("buffer sizes read back as the kernel's\n");

    struct timeval wanted = { .tv_sec = 0, .tv_usec = 300000 }, read_back = { 0 };
    REQUIRE(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wanted, sizeof wanted) == 0);
    socklen_t size = sizeof read_back;
    REQUIRE(getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &read_back, &size) == 0 && size == sizeof read_back);
    REQUIRE(read_back.tv_sec == 0 && read_back.tv_usec == 300000);
    struct timeval bad = { .tv_sec = 0, .tv_usec = 1000000 };
    REQUIRE(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &bad, sizeof bad) == -1 && errno == EDOM);

    char buffer[64];
    double start = seconds();
    REQUIRE(recv(fd, buffer, sizeof buffer, 0) == -1 && errno == EAGAIN);
    double waited = seconds() - start;
    REQUIRE(waited >= 0.29 && waited < 3);
    printf("gave up after %.0f ms with EAGAIN\n", waited * 1000);

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = ring;
    action.sa_flags = SA_RESTART;
    REQUIRE(sigaction(SIGALRM, &action, NULL) == 0);
    wanted.tv_sec = 5;
    wanted.tv_usec = 0;
    REQUIRE(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wanted, sizeof wanted) == 0);
    struct itimerval once = { .it_value = { .tv_usec = 100000 } };
    REQUIRE(setitimer(ITIMER_REAL, &once, NULL) == 0);
    start = seconds();
    REQUIRE(recv(fd, buffer, sizeof buffer, 0) == -1 && errno == EINTR);
    REQUIRE(seconds() - start < 3);
    printf("interrupted with a timeout set: EINTR\n");
    printf("socket options: all %d checks passed\n", checks);
    return 0;
}
