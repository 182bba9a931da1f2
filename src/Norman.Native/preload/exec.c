/*
 * exec, for the interposer `norman run` preloads: a Norman socket cannot follow its program into another (its TCP stack
 * and pipes live in the program that opened it), so the program exec'd is told which of its inherited descriptors were
 * Norman sockets, in its environment (INHERITED_VARIABLE, read by this interposer there), and refuses them with a
 * sentence. Descriptors marked close-on-exec are not inherited, as on Linux. Only the stack is used on the way out: a
 * vfork child may be the caller.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
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

/* In a program started by exec from a Norman program: the descriptors that were Norman sockets there (named by the
 * exec'ing program, and still open here) are refused with a sentence, not read as the Unix sockets they now are. */
static void mark_inherited_across_exec(void)
{
    const char *named = getenv(INHERITED_VARIABLE);
    if (!named)
        return;
    for (const char *at = named; *at;) {
        char *end;
        long fd = strtol(at, &end, 10);
        if (end == at)
            break;
        if (fd >= 0 && fd < MAX_DESCRIPTORS && real_fcntl((int)fd, F_GETFD) >= 0)
            atomic_store(&owner[fd], INHERITED_ACROSS_EXEC);
        at = *end == ',' ? end + 1 : end;
    }
    unsetenv(INHERITED_VARIABLE); /* for this program's own children, it names what this one passes on */
}

/* After norman_preload.c's constructor (101), which resolved real_fcntl. */
__attribute__((constructor(102))) static void resolve_exec(void)
{
#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)
    RESOLVE(execve); RESOLVE(execvpe); RESOLVE(fexecve); RESOLVE(posix_spawn); RESOLVE(posix_spawnp);
    mark_inherited_across_exec();
}

#define MAX_NAMED 64

/* Writes "NAME=fd,fd…" of the Norman descriptors that survive exec into line; false when there are none. */
static int name_inherited(char *line, size_t room)
{
    size_t used = (size_t)snprintf(line, room, "%s=", INHERITED_VARIABLE);
    int named = 0;
    for (int fd = 0; fd < MAX_DESCRIPTORS && named < MAX_NAMED; fd++) {
        if (atomic_load(&owner[fd]) <= 0)
            continue;
        int flags = real_fcntl(fd, F_GETFD);
        if (flags < 0 || (flags & FD_CLOEXEC))
            continue;
        used += (size_t)snprintf(line + used, room - used, named ? ",%d" : "%d", fd);
        named++;
    }
    return named > 0;
}

/* envp with the line in place of any earlier one, into with (room for count(envp) + 2 pointers). */
static char *const *with_line(char *const envp[], char *line, char **with)
{
    size_t n = 0;
    size_t prefix = strlen(INHERITED_VARIABLE) + 1;
    for (size_t i = 0; envp && envp[i]; i++) {
        if (strncmp(envp[i], line, prefix) != 0)
            with[n++] = envp[i];
    }
    with[n++] = line;
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

/* Runs CALL with ENV standing for the environment to pass: envp, or a copy naming the inherited Norman descriptors. */
#define WITH_INHERITED(envp, CALL)                                                          \
    do {                                                                                    \
        char line_[sizeof INHERITED_VARIABLE + MAX_NAMED * 7];                              \
        if (!name_inherited(line_, sizeof line_)) {                                         \
            char *const *ENV = (envp);                                                      \
            return CALL;                                                                    \
        }                                                                                   \
        char *with_[count(envp) + 2];                                                       \
        char *const *ENV = with_line((envp), line_, with_);                                 \
        return CALL;                                                                        \
    } while (0)

extern char **environ;

int execve(const char *path, char *const argv[], char *const envp[]) { WITH_INHERITED(envp, real_execve(path, argv, ENV)); }
int execvpe(const char *file, char *const argv[], char *const envp[]) { WITH_INHERITED(envp, real_execvpe(file, argv, ENV)); }
int fexecve(int fd, char *const argv[], char *const envp[]) { WITH_INHERITED(envp, real_fexecve(fd, argv, ENV)); }
int execv(const char *path, char *const argv[]) { WITH_INHERITED(environ, real_execve(path, argv, ENV)); }
int execvp(const char *file, char *const argv[]) { WITH_INHERITED(environ, real_execvpe(file, argv, ENV)); }

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attributes,
                char *const argv[], char *const envp[])
{
    WITH_INHERITED(envp, real_posix_spawn(pid, path, actions, attributes, argv, ENV));
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions, const posix_spawnattr_t *attributes,
                 char *const argv[], char *const envp[])
{
    WITH_INHERITED(envp, real_posix_spawnp(pid, file, actions, attributes, argv, ENV));
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
