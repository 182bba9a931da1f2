/*
 * Signals and a blocking receive, under `norman run`, as on Linux: a handler installed with SA_RESTART leaves the
 * receive waiting (it returns the datagram that comes after the signal), and one installed without it ends the
 * receive with EINTR. Usage: signal_restart ECHO_ADDRESS ECHO_PORT (a UDP echo server). Exits 0 when both held.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static atomic_int rings;
static int fd;
static struct sockaddr_in echo;

static void ring(int signal) { (void)signal; atomic_fetch_add(&rings, 1); }

static void handle(int flags)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = ring;
    action.sa_flags = flags;
    sigaction(SIGALRM, &action, NULL);
    struct itimerval once = { .it_value = { .tv_usec = 200000 } };
    setitimer(ITIMER_REAL, &once, NULL);
}

/* Once the signal has come (the receive is then restarted, or not), a datagram to the echo server, whose echo the
 * receive gets. Bounded: 5 s at most. */
static void *send_after_signal(void *unused)
{
    (void)unused;
    for (int i = 0; i < 500 && atomic_load(&rings) < 1; i++)
        nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
    sendto(fd, "after the signal", 16, 0, (struct sockaddr *)&echo, sizeof echo);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ECHO_ADDRESS ECHO_PORT\n", argv[0]);
        return 2;
    }
    echo.sin_family = AF_INET;
    echo.sin_port = htons(atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &echo.sin_addr);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(7016) };
    if (bind(fd, (struct sockaddr *)&any, sizeof any) != 0) {
        perror("bind");
        return 1;
    }

    handle(SA_RESTART);
    pthread_t sender;
    pthread_create(&sender, NULL, send_after_signal, NULL);
    char buffer[64];
    ssize_t got = recv(fd, buffer, sizeof buffer, 0);
    pthread_join(sender, NULL);
    if (got != 16 || memcmp(buffer, "after the signal", 16) != 0 || atomic_load(&rings) != 1) {
        fprintf(stderr, "SA_RESTART: recv gave %zd (%s) after %d signal(s)\n", got, got < 0 ? strerror(errno) : "", atomic_load(&rings));
        return 1;
    }
    printf("with SA_RESTART: restarted, then got the datagram\n");

    handle(0);
    got = recv(fd, buffer, sizeof buffer, 0);
    if (got != -1 || errno != EINTR || atomic_load(&rings) != 2) {
        fprintf(stderr, "without SA_RESTART: recv gave %zd (%s) after %d signal(s)\n", got, got < 0 ? strerror(errno) : "", atomic_load(&rings));
        return 1;
    }
    printf("without SA_RESTART: EINTR\n");
    return 0;
}
