/*
 * Threads sharing one libnorman UDP socket, as a server's workers share theirs: four send 200 datagrams each to the
 * virtual wire's echoing peer (port 7), four receive, blocking, until all 800 answers are in. Each must come back
 * once and whole: the socket's single-producer, single-consumer rings must be taken in turn.
 * Usage: udp_threads PEER_ADDRESS
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"

#define THREADS 4
#define EACH 200

static int socket_handle;
static struct sockaddr_in peer;
static _Atomic int seen[THREADS * EACH];
static _Atomic int received, malformed;

static void *send_all(void *argument)
{
    int thread = (int)(long)argument;
    char message[32];
    for (int i = 0; i < EACH; i++) {
        int n = snprintf(message, sizeof message, "datagram %d", thread * EACH + i);
        if (norman_sendto(socket_handle, message, (size_t)n, 0, (struct sockaddr *)&peer, sizeof peer) != n)
            atomic_fetch_add(&malformed, 1);
    }
    return NULL;
}

static void *receive_some(void *argument)
{
    (void)argument;
    char buffer[64];
    while (atomic_load(&received) < THREADS * EACH) {
        ssize_t n = norman_recv(socket_handle, buffer, sizeof buffer - 1, MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN)
                atomic_fetch_add(&malformed, 1);
            continue;
        }
        buffer[n] = 0;
        int number;
        if (sscanf(buffer, "datagram %d", &number) != 1 || number < 0 || number >= THREADS * EACH)
            atomic_fetch_add(&malformed, 1);
        else
            atomic_fetch_add(&seen[number], 1);
        atomic_fetch_add(&received, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    peer.sin_family = AF_INET;
    peer.sin_port = htons(7);
    REQUIRE(argc == 2 && inet_pton(AF_INET, argv[1], &peer.sin_addr) == 1);
    socket_handle = norman_socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(7200) };
    REQUIRE(norman_bind(socket_handle, (struct sockaddr *)&local, sizeof local) == 0);
    pthread_t threads[2 * THREADS];
    for (long t = 0; t < THREADS; t++) {
        REQUIRE(pthread_create(&threads[t], NULL, receive_some, NULL) == 0);
        REQUIRE(pthread_create(&threads[THREADS + t], NULL, send_all, (void *)t) == 0);
    }
    for (int t = 0; t < 2 * THREADS; t++)
        pthread_join(threads[t], NULL);
    REQUIRE(atomic_load(&malformed) == 0);
    for (int i = 0; i < THREADS * EACH; i++)
        REQUIRE(atomic_load(&seen[i]) == 1);
    printf("%d datagrams each back once from %d threads: all %d checks passed\n", THREADS * EACH, THREADS, checks);
    return 0;
}
