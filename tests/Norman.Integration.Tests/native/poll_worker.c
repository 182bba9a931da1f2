/*
 * A prefork server as C servers are built by distributions (-O2 -D_FORTIFY_SOURCE=2, where poll on an array of known
 * size is __poll_chk): it listens, then forks a worker that polls the listener it inherited before accepting, as
 * prefork workers wait. Run under `norman run`, the worker must join the listener at its poll, or the connection
 * would wait in the parent's listener, which never accepts.
 * Usage: poll_worker PORT. Prints "worker ready", serves one connection from the worker, prints "worker done STATUS".
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])) };
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 16) != 0) {
        perror("listen");
        return 1;
    }
    pid_t worker = fork();
    if (worker == 0) {
        struct pollfd watched[1] = { { .fd = listener, .events = POLLIN } };
        volatile nfds_t one = 1;
        nfds_t count = one; /* not known to the compiler: fortified, poll is checked at run time (__poll_chk) */
        poll(watched, count, 0); /* a worker's loop waits with a timeout, again and again */
        printf("worker ready\n");
        fflush(stdout);
        if (poll(watched, count, 30000) != 1) {
            printf("no connection\n");
            return 1;
        }
        int connection = accept(listener, NULL, NULL);
        static const char answer[] = "from the polling worker\n";
        if (connection < 0 || send(connection, answer, sizeof answer - 1, 0) != (ssize_t)(sizeof answer - 1)) {
            perror("accept or send");
            return 1;
        }
        close(connection);
        return 0;
    }
    int status = 0;
    waitpid(worker, &status, 0);
    printf("worker done %d\n", WEXITSTATUS(status));
    return 0;
}
