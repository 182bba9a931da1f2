/*
 * fork with libnorman: a server listens, then forks a worker, as nginx's master does. The library's runtime does not
 * survive in the child, so the child loads a second copy of libnorman (dlmopen, a namespace of its own) and joins the
 * listener through it (norman_inherit_listener, the parent's doorbell as proof). The worker takes the next connection
 * and answers it; the parent, which takes no new connections once the worker joined, waits for it.
 * Usage: fork_listener PORT. Prints "listening", then the worker's answer was sent; exits 0 when all went so.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

typedef int (*inherit_fn)(int, int, int);
typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);
typedef ssize_t (*send_fn)(int, const void *, size_t, int);
typedef int (*close_fn)(int);
typedef int (*flush_fn)(int);
typedef const char *(*error_fn)(void);

/* The worker: every call through its own copy of the library. */
static int worker(int doorbell)
{
    Dl_info self;
    REQUIRE(dladdr((void *)norman_socket, &self) != 0);
    void *copy = dlmopen(LM_ID_NEWLM, self.dli_fname, RTLD_NOW | RTLD_LOCAL);
    REQUIRE(copy != NULL);
    inherit_fn inherit = (inherit_fn)dlsym(copy, "norman_inherit_listener");
    accept_fn accept_ = (accept_fn)dlsym(copy, "norman_accept");
    send_fn send_ = (send_fn)dlsym(copy, "norman_send");
    close_fn close_ = (close_fn)dlsym(copy, "norman_close");
    flush_fn flush = (flush_fn)dlsym(copy, "norman_flush");
    error_fn error = (error_fn)dlsym(copy, "norman_last_error");
    REQUIRE(inherit && accept_ && send_ && close_ && flush && error);
    int listener = inherit(AF_INET, doorbell, 0);
    if (listener < 0)
        printf("inherit: %s\n", error());
    REQUIRE(listener > 0);
    printf("worker joined\n");
    fflush(stdout);
    int connection = accept_(listener, NULL, NULL);
    if (connection < 0)
        printf("accept: %s\n", error());
    REQUIRE(connection > 0);
    const char answer[] = "from the worker\n";
    REQUIRE(send_(connection, answer, sizeof answer - 1, 0) == (ssize_t)(sizeof answer - 1));
    REQUIRE(close_(connection) == 0);
    REQUIRE(flush(5000) == 0);
    return 0;
}

int main(int argc, char **argv)
{
    REQUIRE(argc == 2);
    int listener = norman_socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener > 0);
    struct sockaddr_in address = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])) };
    REQUIRE(norman_bind(listener, (struct sockaddr *)&address, sizeof address) == 0);
    REQUIRE(norman_listen(listener, 16) == 0);
    int doorbell = norman_listener_doorbell(listener);
    REQUIRE(doorbell >= 0);
    fflush(stdout);
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0)
        _exit(worker(doorbell));
    printf("listening\n");
    fflush(stdout);
    int status;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("%d checks passed\n", checks);
    return 0;
}
