/*
 * exec, for the interposer `norman run` preloads. A listening TCP socket without close-on-exec goes across: the program
 * exec'd is told (LISTENERS_VARIABLE) which descriptor it is, and joins it at its first use as a forked child does (the
 * descriptor is its proof: the daemon was given the same file at listen); where the process itself is replaced (exec, not posix_spawn), the daemon is asked first to
 * keep the listener when the process's connection closes at exec. A TCP connection a forked child inherited goes
 * across too (inetd's way: the child execs the service with it as stdin and stdout): its parent keeps it, and the
 * program exec'd is told which descriptors they are (CONNECTIONS_VARIABLE) and takes them up at their first use. Any
 * other Norman socket cannot follow its program (its TCP stack and pipes live in the program that opened it): the
 * program exec'd is told which of its inherited descriptors were Norman sockets (INHERITED_VARIABLE), and refuses them
 * with a sentence. Descriptors marked
 * close-on-exec are not inherited, as on Linux. A vfork child may be the caller: it only makes system calls
 * (listener_across_exec leaves the library alone there).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "interposer.h"

#define REAL(name) static __typeof__(name) *real_##name
REAL(execve); REAL(execvpe); REAL(fexecve); REAL(posix_spawn); REAL(posix_spawnp);

/* A list "a,b,c" of numbers separated by ':' within an entry: up to count of them from at; the end of what was read. */
static const char *numbers(const char *at, long *into, int count)
{
    for (int i = 0; i < count; i++) {
        char *end;
        into[i] = strtol(at, &end, 10);
        if (end == at)
            return NULL;
        at = end;
        if (i + 1 < count) {
            if (*at != ':')
                return NULL;
            at++;
        }
    }
    return at;
}

/* In a program started by exec from a Norman program: the listeners it passed are joined at their first use; the
 * descriptors that were other Norman sockets there (and are still open here) are refused with a sentence, not read as
 * the Unix sockets they now are. */
static void mark_inherited_across_exec(void)
{
    const char *named = getenv(INHERITED_VARIABLE);
    for (const char *at = named; at && *at;) {
        long fd;
        const char *end = numbers(at, &fd, 1);
        if (!end)
            break;
        if (fd >= 0 && fd < MAX_DESCRIPTORS && LIBC(fcntl)((int)fd, F_GETFD) >= 0)
            atomic_store(&owner[fd], INHERITED_ACROSS_EXEC);
        at = *end == ',' ? end + 1 : end;
    }
    const char *connections = getenv(CONNECTIONS_VARIABLE);
    for (const char *at = connections; at && *at;) {
        long entry[2]; /* fd, non-blocking */
        const char *end = numbers(at, entry, 2);
        if (!end)
            break;
        expect_connection((int)entry[0], (int)entry[1]);
        at = *end == ',' ? end + 1 : end;
    }
    const char *listeners = getenv(LISTENERS_VARIABLE);
    for (const char *at = listeners; at && *at;) {
        long entry[3]; /* fd, domain, non-blocking */
        const char *end = numbers(at, entry, 3);
        if (!end)
            break;
        expect_listener((int)entry[0], (int)entry[1], (int)entry[2]);
        at = *end == ',' ? end + 1 : end;
    }
    /* For this program's own children, they name what this one passes on. */
    unsetenv(INHERITED_VARIABLE);
    unsetenv(LISTENERS_VARIABLE);
    unsetenv(CONNECTIONS_VARIABLE);
}

/* After norman_preload.c's constructor (101), which resolved real_fcntl: the exec family, which no other library's
 * constructor calls before this one runs. */
__attribute__((constructor(102))) static void resolve_exec(void)
{
#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)
    RESOLVE(execve); RESOLVE(execvpe); RESOLVE(fexecve); RESOLVE(posix_spawn); RESOLVE(posix_spawnp);
    mark_inherited_across_exec();
}

#define MAX_NAMED 64

/* What an exec passes: the environment lines naming the Norman descriptors that survive it, the listeners kept, and
 * the lines that keep the program exec'd under `norman run`. */
struct passing {
    char refused[sizeof INHERITED_VARIABLE + MAX_NAMED * 7];
    char listeners[sizeof LISTENERS_VARIABLE + MAX_NAMED * 16];
    char connections[sizeof CONNECTIONS_VARIABLE + MAX_NAMED * 10];
    int kept[MAX_NAMED];
    int listener_count, refused_count, connection_count;
    char running[3][STARTED_BYTES + 256]; /* a longer LD_PRELOAD is cut: paths are shorter than PATH_MAX */
    int running_count;
};

/* NAME's value in envp, or NULL. */
static const char *value_in(char *const envp[], const char *name)
{
    size_t length = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], name, length) == 0 && envp[i][length] == '=')
            return envp[i] + length + 1;
    }
    return NULL;
}

/*
 * `norman run` applies to the programs its program execs, as the preload does on Linux as long as LD_PRELOAD is passed
 * on: a program that builds its child's environment from nothing (systemd-socket-activate, env -i) dropped it, and
 * its child ran on the kernel's sockets with the Norman listener it was given unreadable. Where envp lacks them, the
 * lines that put it back: LD_PRELOAD naming this interposer (before any the program names), NORMAN_LIBRARY and
 * NORMAN_SOCKET as the program started with them. Returns how many.
 */
static int keep_running_under_norman(struct passing *passing, char *const envp[])
{
    passing->running_count = 0;
    Dl_info self;
    if (!started_library[0] || !dladdr((void *)keep_running_under_norman, &self) || !self.dli_fname)
        return 0; /* not started by `norman run` */
    const char *preload = value_in(envp, "LD_PRELOAD");
    if (!preload || !strstr(preload, self.dli_fname))
        snprintf(passing->running[passing->running_count++], sizeof passing->running[0], "LD_PRELOAD=%s%s%s", self.dli_fname,
                 preload && *preload ? ":" : "", preload ? preload : "");
    if (!value_in(envp, "NORMAN_LIBRARY"))
        snprintf(passing->running[passing->running_count++], sizeof passing->running[0], "NORMAN_LIBRARY=%s", started_library);
    if (started_socket[0] && !value_in(envp, "NORMAN_SOCKET"))
        snprintf(passing->running[passing->running_count++], sizeof passing->running[0], "NORMAN_SOCKET=%s", started_socket);
    return passing->running_count;
}

/* Fills passing for envp from the Norman descriptors without close-on-exec; replacing: an exec (this process becomes
 * another program), not a spawn. Returns how many lines the environment needs. */
static int prepare(struct passing *passing, char *const envp[], int replacing)
{
    size_t refused_used = (size_t)snprintf(passing->refused, sizeof passing->refused, "%s=", INHERITED_VARIABLE);
    size_t listeners_used = (size_t)snprintf(passing->listeners, sizeof passing->listeners, "%s=", LISTENERS_VARIABLE);
    size_t connections_used = (size_t)snprintf(passing->connections, sizeof passing->connections, "%s=", CONNECTIONS_VARIABLE);
    passing->listener_count = passing->refused_count = passing->connection_count = 0;
    for (int fd = 0; fd < MAX_DESCRIPTORS && passing->listener_count + passing->refused_count + passing->connection_count < MAX_NAMED; fd++) {
        if (atomic_load(&owner[fd]) <= 0)
            continue;
        int flags = LIBC(fcntl)(fd, F_GETFD);
        if (flags < 0 || (flags & FD_CLOEXEC))
            continue;
        int domain, nonblocking, kept;
        if (listener_across_exec(fd, replacing, &domain, &nonblocking, &kept)) {
            int n = passing->listener_count++;
            passing->kept[n] = kept;
            listeners_used += (size_t)snprintf(passing->listeners + listeners_used, sizeof passing->listeners - listeners_used,
                                               "%s%d:%d:%d", n ? "," : "", fd, domain, nonblocking);
        } else if (replacing && connection_across_exec(fd, &nonblocking)) {
            connections_used += (size_t)snprintf(passing->connections + connections_used, sizeof passing->connections - connections_used,
                                                 "%s%d:%d", passing->connection_count++ ? "," : "", fd, nonblocking);
        } else {
            refused_used += (size_t)snprintf(passing->refused + refused_used, sizeof passing->refused - refused_used,
                                             passing->refused_count++ ? ",%d" : "%d", fd);
        }
    }
    return passing->listener_count + passing->refused_count + passing->connection_count + keep_running_under_norman(passing, envp);
}

/* After a spawn, or an exec that failed: the listeners no longer kept (exec_failed keeps errno). */
static void unwind(struct passing *passing)
{
    for (int i = 0; i < passing->listener_count; i++) {
        if (passing->kept[i])
            exec_failed(passing->kept[i]);
    }
}

/* Whether environment line entry sets the variable line sets. */
static int same_name(const char *entry, const char *line)
{
    size_t length = (size_t)(strchr(line, '=') - line) + 1;
    return strncmp(entry, line, length) == 0;
}

/* envp with passing's lines in place of any earlier ones, into with (room for count(envp) + 7 pointers). */
static char *const *with_lines(char *const envp[], struct passing *passing, char **with)
{
    const char *lines[6];
    size_t count_ = 0;
    if (passing->refused_count)
        lines[count_++] = passing->refused;
    if (passing->listener_count)
        lines[count_++] = passing->listeners;
    if (passing->connection_count)
        lines[count_++] = passing->connections;
    for (int i = 0; i < passing->running_count; i++)
        lines[count_++] = passing->running[i];
    size_t n = 0;
    for (size_t i = 0; envp && envp[i]; i++) {
        int replaced = same_name(envp[i], passing->refused) || same_name(envp[i], passing->listeners) || same_name(envp[i], passing->connections);
        for (size_t j = 0; j < count_ && !replaced; j++)
            replaced = same_name(envp[i], lines[j]);
        if (!replaced)
            with[n++] = envp[i];
    }
    for (size_t j = 0; j < count_; j++)
        with[n++] = (char *)lines[j];
    with[n] = NULL;
    return with;
}

static size_t count(char *const list[])
{
    size_t n = 0;
    while (list && list[n])
        n++;
    return n;
}

/* Runs CALL with ENV standing for the environment to pass: envp, or a copy naming the Norman descriptors it inherits;
 * REPLACING: an exec, whose return means it failed. */
#define PASSING(envp, REPLACING, CALL)                                                      \
    do {                                                                                    \
        struct passing passing_;                                                            \
        if (!prepare(&passing_, (envp), (REPLACING))) {                                     \
            char *const *ENV = (envp);                                                      \
            return CALL;                                                                    \
        }                                                                                   \
        char *with_[count(envp) + 7];                                                       \
        char *const *ENV = with_lines((envp), &passing_, with_);                            \
        int result_ = CALL;                                                                 \
        unwind(&passing_);                                                                  \
        return result_;                                                                     \
    } while (0)

extern char **environ;

int execve(const char *path, char *const argv[], char *const envp[]) { PASSING(envp, 1, real_execve(path, argv, ENV)); }
int execvpe(const char *file, char *const argv[], char *const envp[]) { PASSING(envp, 1, real_execvpe(file, argv, ENV)); }
int fexecve(int fd, char *const argv[], char *const envp[]) { PASSING(envp, 1, real_fexecve(fd, argv, ENV)); }
int execv(const char *path, char *const argv[]) { PASSING(environ, 1, real_execve(path, argv, ENV)); }
int execvp(const char *file, char *const argv[]) { PASSING(environ, 1, real_execvpe(file, argv, ENV)); }

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attributes,
                char *const argv[], char *const envp[])
{
    PASSING(envp, 0, real_posix_spawn(pid, path, actions, attributes, argv, ENV));
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attributes,
                 char *const argv[], char *const envp[])
{
    PASSING(envp, 0, real_posix_spawnp(pid, file, actions, attributes, argv, ENV));
}

/* execl, execlp and execle: their arguments gathered into an array on the stack, then as execv, execvp and execve
 * (glibc declares the first argument non-null). */
#define GATHER(first, arguments, argv)                                                      \
    size_t n_ = 1;                                                                          \
    va_start(arguments, first);                                                             \
    while (va_arg(arguments, char *))                                                       \
        n_++;                                                                               \
    va_end(arguments);                                                                      \
    char *argv[n_ + 1];                                                                     \
    argv[0] = (char *)(first);                                                              \
    va_start(arguments, first);                                                             \
    for (size_t i_ = 1; i_ <= n_; i_++)                                                     \
        argv[i_] = va_arg(arguments, char *);

int execl(const char *path, const char *first, ...)
{
    va_list arguments;
    GATHER(first, arguments, argv);
    va_end(arguments);
    return execv(path, argv);
}

int execlp(const char *file, const char *first, ...)
{
    va_list arguments;
    GATHER(first, arguments, argv);
    va_end(arguments);
    return execvp(file, argv);
}

int execle(const char *path, const char *first, ...)
{
    va_list arguments;
    GATHER(first, arguments, argv);
    char *const *envp = va_arg(arguments, char *const *);
    va_end(arguments);
    return execve(path, argv, envp);
}
