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

#define HIDDEN __attribute__((visibility("hidden")))

/* Per descriptor: the Norman handle (> 0), or a kernel socket that may still become Norman's (-1), or 0. */
extern HIDDEN _Atomic int owner[MAX_DESCRIPTORS];
/* libc's fcntl, resolved by norman_preload.c's constructor (priority 101) before any other runs. */
extern HIDDEN int (*real_fcntl)(int, int, ...);

#endif
