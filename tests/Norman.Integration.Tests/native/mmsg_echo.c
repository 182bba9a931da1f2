/*
 * sendmmsg and recvmmsg as a DNS or QUIC server batches datagrams, run unmodified under `norman run`: three datagrams
 * out in one sendmmsg to an echo server, their echoes back through recvmmsg with MSG_WAITFORONE, each intact and with
 * its sender. Usage: mmsg_echo ADDRESS PORT. Exits 0 when all came back as sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define COUNT 3

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s ADDRESS PORT\n", argv[0]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
    inet_pton(AF_INET, argv[1], &to.sin_addr);

    char payloads[COUNT][32];
    struct iovec out[COUNT];
    struct mmsghdr sending[COUNT];
    memset(sending, 0, sizeof sending);
    for (int i = 0; i < COUNT; i++) {
        snprintf(payloads[i], sizeof payloads[i], "datagram %d of a batch", i);
        out[i] = (struct iovec){ .iov_base = payloads[i], .iov_len = strlen(payloads[i]) };
        sending[i].msg_hdr = (struct msghdr){ .msg_name = &to, .msg_namelen = sizeof to, .msg_iov = &out[i], .msg_iovlen = 1 };
    }
    int sent = sendmmsg(fd, sending, COUNT, 0);
    if (sent != COUNT || sending[COUNT - 1].msg_len != strlen(payloads[COUNT - 1])) {
        printf("sendmmsg sent %d\n", sent);
        return 1;
    }

    char buffers[COUNT][64];
    struct iovec in[COUNT];
    struct sockaddr_in from[COUNT];
    int got = 0, calls = 0;
    while (got < COUNT) {
        struct pollfd readable = { .fd = fd, .events = POLLIN };
        if (poll(&readable, 1, 5000) != 1) {
            printf("only %d echoes came back\n", got);
            return 1;
        }
        struct mmsghdr receiving[COUNT];
        memset(receiving, 0, sizeof receiving);
        for (int i = got; i < COUNT; i++) {
            in[i] = (struct iovec){ .iov_base = buffers[i], .iov_len = sizeof buffers[i] - 1 };
            receiving[i - got].msg_hdr = (struct msghdr){ .msg_name = &from[i], .msg_namelen = sizeof from[i], .msg_iov = &in[i], .msg_iovlen = 1 };
        }
        int n = recvmmsg(fd, receiving, COUNT - got, MSG_WAITFORONE, NULL);
        if (n < 1) {
            perror("recvmmsg");
            return 1;
        }
        for (int i = 0; i < n; i++)
            buffers[got + i][receiving[i].msg_len] = 0;
        got += n;
        calls++;
    }
    for (int i = 0; i < COUNT; i++) {
        if (strcmp(buffers[i], payloads[i]) != 0 || from[i].sin_port != to.sin_port || from[i].sin_addr.s_addr != to.sin_addr.s_addr) {
            printf("echo %d was '%s' from port %d\n", i, buffers[i], ntohs(from[i].sin_port));
            return 1;
        }
    }
    printf("%d datagrams out in one sendmmsg, back in %d recvmmsg calls\n", COUNT, calls);
    close(fd);
    return 0;
}
