/*
 * What the interposer's files share: the descriptor table and the bounds around it. Everything here is hidden inside
 * libnorman-preload.so (it must not be taken for a program's own symbols).
 */
#ifndef NORMAN_INTERPOSER_H
#define NORMAN_INTERPOSER_H

#include <stdatomic.h>

#define MAX_DESCRIPTORS 65536
#define MAX_HANDLES 65536
/* The handle of a descriptor inherited across exec from a Norman program: never a library handle (the library hands out
 * handles below it), so every call on it is refused with a sentence (norman_preload.c's refuse). */
#define INHERITED_ACROSS_EXEC (MAX_HANDLES - 1)
/* How the exec'ing program names those descriptors to the program it becomes (exec.c). */
#define INHERITED_VARIABLE "NORMAN_EXEC_INHERITED"
/* And the TCP listeners it passes, which that program joins: "fd:domain:nonblocking,..." (exec.c). */
#define LISTENERS_VARIABLE "NORMAN_EXEC_LISTENERS"
/* And the TCP connections a forked child passes to the program it becomes (inetd's way), which that program takes up:
 * "fd:nonblocking,..." (exec.c). */
#define CONNECTIONS_VARIABLE "NORMAN_EXEC_CONNECTIONS"

#define HIDDEN __attribute__((visibility("hidden")))

/* Per descriptor: the Norman handle (> 0), or a kernel socket that may still become Norman's (-1), or 0. */
extern HIDDEN _Atomic int owner[MAX_DESCRIPTORS];
/* libc's fcntl, resolved by resolve_libc. */
extern HIDDEN int (*real_fcntl)(int, int, ...);

/* NORMAN_SOCKET and NORMAN_LIBRARY as the program started with them (norman_preload.c), empty when not set then. */
#define STARTED_BYTES 4096
extern HIDDEN char started_socket[STARTED_BYTES], started_library[STARTED_BYTES];

/* Resolves libc's functions, once: a constructor, and on the first call that finds one unresolved, since another
 * library's constructor may call into the interposer before this one's runs (libcap-ng's reads a file). */
HIDDEN void resolve_libc(void);
/* libc's NAME, resolved first if no constructor has yet. */
#define LIBC(name) (real_##name ? real_##name : (resolve_libc(), real_##name))

/* Before exec (norman_preload.c): whether descriptor fd is a TCP listener that goes across (the program exec'd proves
 * with fd itself that it holds the listener: the daemon knows the file), and if so its family and whether it is
 * non-blocking. With replacing (an exec, not posix_spawn) the daemon is asked to keep the listener when this process's
 * connection closes at exec; *kept is then its handle, to take that back if the exec fails (else 0). */
HIDDEN int listener_across_exec(int fd, int replacing, int *domain, int *nonblocking, int *kept);
/* The exec failed: the daemon need not keep listener h (from listener_across_exec's *kept). */
HIDDEN void exec_failed(int h);
/* In the program exec'd: descriptor fd is a listener to join (from LISTENERS_VARIABLE). */
HIDDEN void expect_listener(int fd, int domain, int nonblocking);
/* Before exec: whether descriptor fd is a TCP connection this process inherited across fork and has not taken up,
 * which the program it becomes may take up as it would have (its parent keeps it while this process lives); and if so
 * whether it is non-blocking. */
HIDDEN int connection_across_exec(int fd, int *nonblocking);
/* In the program exec'd: descriptor fd is a connection to take up (from CONNECTIONS_VARIABLE). */
HIDDEN void expect_connection(int fd, int nonblocking);

#endif
