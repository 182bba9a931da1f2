/*
 * Scenario E through libnorman: a C program's UDP round trips to the virtual wire's echoing peer, one at a time, the
 * program busy-polling with MSG_DONTWAIT for each answer as the .NET benchmark client does. Prints p50, p99 and
 * p99.9 in microseconds on one line.  Usage: udp_pingpong PEER_ADDRESS PORT PAYLOAD_BYTES COUNT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "norman.h"

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
    inet_pton(AF_INET, argv[1], &peer.sin_addr);
    size_t payload = (size_t)atoi(argv[3]);
    int count = atoi(argv[4]), warm_up = count / 10, kept = 0;
    double *times = calloc((size_t)count, sizeof *times);
    char request[2048] = { 0 }, answer[2048];
    int s = norman_socket(AF_INET, SOCK_DGRAM, 0);
    if (s < 0 || norman_connect(s, (struct sockaddr *)&peer, sizeof peer) < 0) {
        fprintf(stderr, "udp_pingpong: %s (%s)\n", strerror(errno), norman_last_error());
        return 1;
    }
    double deadline = now_us() + 60e6;
    for (int i = 0; i < count + warm_up && now_us() < deadline; i++) {
        double start = now_us();
        if (norman_send(s, request, payload, 0) < 0)
            return 1;
        while (norman_recv(s, answer, sizeof answer, MSG_DONTWAIT) < 0) {
            if (errno != EAGAIN || now_us() - start > 1e6)
                break;
        }
        if (i >= warm_up && kept < count)
            times[kept++] = now_us() - start;
    }
    qsort(times, (size_t)kept, sizeof *times, by_value);
    printf("%.2f %.2f %.2f\n", times[kept / 2], times[(int)(kept * 0.99)], times[(int)(kept * 0.999)]);
    return 0;
}
