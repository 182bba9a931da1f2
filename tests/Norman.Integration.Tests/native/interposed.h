/* For the C test programs run under `norman run`: whether a descriptor is Norman's. */
#ifndef NORMAN_TEST_INTERPOSED_H
#define NORMAN_TEST_INTERPOSED_H

#include <stdio.h>
#include <unistd.h>

/* Under `norman run` a Norman socket's descriptor is one end of a Unix socketpair, listed in /proc/net/unix; a kernel
 * UDP or TCP socket is not. */
static int is_norman(int fd)
{
    char link[64], target[64], line[512];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t length = readlink(link, target, sizeof target - 1);
    if (length <= 0)
        return 0;
    target[length] = 0;
    unsigned long inode;
    if (sscanf(target, "socket:[%lu]", &inode) != 1)
        return 0;
    FILE *unix_sockets = fopen("/proc/self/net/unix", "r");
    int found = 0;
    while (unix_sockets && !found && fgets(line, sizeof line, unix_sockets)) {
        unsigned long listed;
        found = sscanf(line, "%*s %*s %*s %*s %*s %*s %lu", &listed) == 1 && listed == inode;
    }
    if (unix_sockets)
        fclose(unix_sockets);
    return found;
}

#endif
