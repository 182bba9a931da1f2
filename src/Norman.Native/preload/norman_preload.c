/*
 * The interposer `norman run` preloads (LD_PRELOAD): it gives a program's IPv4 and IPv6 UDP and TCP sockets to Norman
 * (libnorman, loaded on first use) and hands every other descriptor to libc untouched.
 *
 * A socket starts as the kernel's. It becomes Norman's at the first call that names an address that is not loopback:
 * bind, connect, sendto, or listen (which binds the wildcard). Then the descriptor number the program holds is
 * replaced (dup3) by a dup of the Norman socket's readiness descriptor, readable and writable exactly while the socket
 * is, so poll, select and epoll work on it unchanged; the socket calls on it go to norman_*. Loopback stays the kernel's, as
 * Onload leaves it: Norman has no loopback, and a resolver on 127.0.0.53 must keep working.
 *
 * Never re-entered: while this thread is inside libnorman (whose runtime makes its own libc calls), every call goes
 * straight to libc. The table is an array indexed by descriptor, read without locks.
 *
 * Not supported yet, each said once on stderr when met: Norman sockets in a child after fork but for listeners, which
 * the child joins, and TCP connections its parent closed, which it takes up, both through a copy of the library of its
 * own (the first copy's runtime does not survive fork: docs/interposer.md); Norman sockets inherited across exec but
 * for listeners and a forked child's connections, which the program exec'd joins or takes up as a forked child does
 * (the exec'ing program names them to the program it becomes, whose interposer refuses the others; the exec family
 * and posix_spawn are interposed for that); socket options beyond the common ones (accepted and ignored). The exec
 * family is exec.c's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "interposer.h"

#define BOUNCE_BYTES 65536

/* owner[fd] (interposer.h): a kernel socket that may still become Norman's. */
#define CANDIDATE (-1)
_Atomic int owner[MAX_DESCRIPTORS];
static int candidate_type[MAX_DESCRIPTORS]; /* the socket(2) type and domain of a candidate, packed */
static int candidate_domain[MAX_DESCRIPTORS];
static _Atomic int copies[MAX_HANDLES]; /* descriptors naming each handle (dup) */
static _Atomic int nonblocking[MAX_HANDLES];
static int socket_type[MAX_HANDLES]; /* SOCK_STREAM or SOCK_DGRAM, for getsockopt(SO_TYPE) */
/*
 * The on/off options a program sets and may read back, which Linux keeps as set: kept per handle, a bit each, so that
 * getsockopt says what was set. The library takes the first three (they change what bind does); Norman's stack sends
 * at once and keeps connections alive whatever the last two say.
 */
static const struct { int level, name; } on_off[] = {
    { SOL_SOCKET, SO_REUSEADDR }, { SOL_SOCKET, SO_REUSEPORT }, { IPPROTO_IPV6, IPV6_V6ONLY },
    { SOL_SOCKET, SO_KEEPALIVE }, { IPPROTO_TCP, TCP_NODELAY },
};
#define ON_OFF_OPTIONS ((int)(sizeof on_off / sizeof on_off[0]))
#define LIBRARY_TAKES 3
static _Atomic unsigned on_off_set[MAX_HANDLES];
/* SO_RCVTIMEO and SO_SNDTIMEO in microseconds (0: wait for ever), kept here where the waiting is done. */
#define RECEIVING 0
#define SENDING 1
static _Atomic long long timeout_us[MAX_HANDLES][2];
/* SO_RCVBUF and SO_SNDBUF as the kernel would report them for such a socket (they do not size Norman's pipes). */
static _Atomic int buffer_bytes[MAX_HANDLES][2];
static __thread int inside; /* this thread is inside libnorman: straight to libc */
static int forked_child;
static pid_t process_pid; /* this process's, set at start and in a forked child: a vfork child, whose memory is its parent's, differs */
/* A forked child that loaded its own copy of the library (to serve a listener it inherited): its handles are that
 * copy's; the parent's, at the descriptors that still name them, are FORKED_AWAY. */
static int child_copy;
#define FORKED_AWAY (MAX_HANDLES - 2)
/* A listener's family, recorded at listen (0: not a listener). A process that inherits the listener's descriptor, by
 * fork or across exec, proves with that descriptor that it holds the listener: the library named the same file to the
 * daemon at listen (listener-holder). */
static int listener_domain[MAX_HANDLES];
/* Whether this process has had a listener (or was exec'd with one): then a forked child may wait on one it inherited. */
static _Atomic int had_listener;
/* By descriptor, a listener this process inherited and has still to join: its family (0: none) and O_NONBLOCK. */
static int inherited_domain[MAX_DESCRIPTORS], inherited_nonblocking[MAX_DESCRIPTORS];
/* By descriptor, a TCP connection a forked child inherited and has still to take up (claim): its parent keeps it when
 * it closes its copy, while the children forked since live. */
static int inherited_connection[MAX_DESCRIPTORS];

/*
 * Children forked while this process had the library: their pidfds and the fork's number. A TCP connection open at a
 * fork may be held by such a child, so the program's close of it keeps it for them while any lives (norman_close_for_
 * children), as Linux keeps a connection while any descriptor for it is open.
 */
#define MAX_CHILDREN 64
static struct { int pidfd; unsigned fork; } children[MAX_CHILDREN]; /* fork 0: an empty place */
static unsigned forks;                                             /* forks so far */
static unsigned opened_at[MAX_HANDLES];                            /* forks when each handle opened */
static pthread_mutex_t children_lock = PTHREAD_MUTEX_INITIALIZER;

#define REAL(name) static __typeof__(name) *real_##name
REAL(socket); REAL(bind); REAL(listen); REAL(accept); REAL(accept4); REAL(connect); REAL(send); REAL(sendto);
REAL(recv); REAL(recvfrom); REAL(read); REAL(write); REAL(close); REAL(getsockname); REAL(getpeername);
REAL(setsockopt); REAL(getsockopt); REAL(shutdown); REAL(dup); REAL(dup2); REAL(dup3); REAL(readv); REAL(writev);
REAL(sendmsg); REAL(recvmsg); REAL(sendmmsg); REAL(recvmmsg); REAL(sendfile); REAL(epoll_ctl); REAL(poll); REAL(ppoll);
REAL(select); REAL(pselect); REAL(fork);
static int (*real_poll_chk)(struct pollfd *, nfds_t, int, size_t);
static int (*real_ppoll_chk)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *, size_t);
int (*real_fcntl)(int, int, ...);
static int (*real_ioctl)(int, unsigned long, ...);

static int (*n_socket)(int, int, int);
static int (*n_bind)(int, const struct sockaddr *, socklen_t);
static int (*n_listen)(int, int);
static int (*n_accept)(int, struct sockaddr *, socklen_t *);
static int (*n_connect)(int, const struct sockaddr *, socklen_t);
static ssize_t (*n_sendto)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
static ssize_t (*n_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static int (*n_shutdown)(int, int);
static int (*n_getsockname)(int, struct sockaddr *, socklen_t *);
static int (*n_getpeername)(int, struct sockaddr *, socklen_t *);
static int (*n_close)(int);
static int (*n_readiness_fd)(int);
static int (*n_wakeup_fd)(int);
static int (*n_set_nonblocking)(int, int);
static const char *(*n_last_error)(void);
static int (*n_flush)(int);
static int (*n_setsockopt)(int, int, int, const void *, socklen_t);
static int (*n_socket_error)(int);
static int (*n_readable_bytes)(int);
static int (*n_inherit_listener)(int, int, int);
static int (*n_keep_across_exec)(int, int);
static int (*n_claim_connection)(int);
static int (*n_close_for_children)(int, int *, int);

static void say_once(_Atomic int *said, const char *format, ...)
{
    if (atomic_exchange(said, 1))
        return;
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "norman run: ");
    vfprintf(stderr, format, arguments);
    fprintf(stderr, "\n");
    va_end(arguments);
}

/* In a forked child, no copy of the library runs yet: the parent's (or, in a grandchild, its parent's own copy) is dead here. */
static void in_child(void)
{
    forked_child = 1;
    child_copy = 0;
    process_pid = getpid();
    for (int i = 0; i < MAX_CHILDREN; i++) /* its parent's children are not its own */
        if (children[i].fork) {
            LIBC(close)(children[i].pidfd);
            children[i].fork = 0;
        }
}

static void *library;

/* At exit, as the kernel closes a process's descriptors: every Norman socket still open is closed (a FIN after what was
 * written; a reset where data was left unread), and what the program wrote is delivered before the process (and its
 * TCP stack) ends, as the kernel would deliver it after the process; at most ten seconds. An atexit handler registered
 * once the library is loaded: it runs before any library's destructor, while the runtime is whole. */
static void flush_at_exit(void)
{
    /* Not in a vfork child (its parent's memory, its parent's library) nor in a forked child without a copy of its own. */
    if (!library || (forked_child && !child_copy) || !n_flush || getpid() != process_pid)
        return;
    inside = 1;
    for (int h = 1; h < INHERITED_ACROSS_EXEC; h++) {
        if (atomic_exchange(&copies[h], 0) > 0)
            n_close(h);
    }
    int left = n_flush(10000);
    inside = 0;
    if (left > 0)
        fprintf(stderr, "norman run: %d closed connection(s) had not delivered everything after 10 s at exit\n", left);
}

/* _exit skips atexit: a forked child ends with it after serving (Python's ForkingMixIn, os._exit), and what it wrote
 * would die with its stack unsent. The same flush as at exit first. */
void _exit(int status)
{
    flush_at_exit();
    syscall(SYS_exit_group, status);
    __builtin_unreachable();
}

void _Exit(int status) { _exit(status); }

__attribute__((constructor(101))) void resolve_libc(void)
{
    static _Atomic int resolved;
    if (atomic_exchange(&resolved, 1))
        return;
#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)
    RESOLVE(socket); RESOLVE(bind); RESOLVE(listen); RESOLVE(accept); RESOLVE(accept4); RESOLVE(connect);
    RESOLVE(send); RESOLVE(sendto); RESOLVE(recv); RESOLVE(recvfrom); RESOLVE(read); RESOLVE(write); RESOLVE(close);
    RESOLVE(getsockname); RESOLVE(getpeername); RESOLVE(setsockopt); RESOLVE(getsockopt); RESOLVE(shutdown);
    RESOLVE(dup); RESOLVE(dup2); RESOLVE(dup3); RESOLVE(readv); RESOLVE(writev); RESOLVE(sendmsg); RESOLVE(recvmsg); RESOLVE(sendfile);
    RESOLVE(sendmmsg); RESOLVE(recvmmsg); RESOLVE(epoll_ctl); RESOLVE(poll); RESOLVE(ppoll); RESOLVE(select); RESOLVE(pselect);
    real_poll_chk = dlsym(RTLD_NEXT, "__poll_chk");
    real_ppoll_chk = dlsym(RTLD_NEXT, "__ppoll_chk");
    RESOLVE(fcntl); RESOLVE(ioctl); RESOLVE(fork);
    process_pid = getpid();
    pthread_atfork(NULL, NULL, in_child);
}

static pthread_once_t loaded = PTHREAD_ONCE_INIT;

/* The library's entry points, from the copy loaded now (the program's, or a forked child's own). */
static void resolve_norman(void)
{
#define NORMAN(name) n_##name = dlsym(library, "norman_" #name)
    NORMAN(socket); NORMAN(bind); NORMAN(listen); NORMAN(accept); NORMAN(connect); NORMAN(sendto); NORMAN(recvfrom);
    NORMAN(shutdown); NORMAN(getsockname); NORMAN(getpeername); NORMAN(close); NORMAN(readiness_fd); NORMAN(wakeup_fd);
    NORMAN(set_nonblocking); NORMAN(last_error); NORMAN(flush); NORMAN(setsockopt); NORMAN(socket_error); NORMAN(readable_bytes);
    NORMAN(inherit_listener); NORMAN(keep_across_exec); NORMAN(claim_connection); NORMAN(close_for_children);
}

/* The daemon's socket and the library as the program started with them (`norman run` sets both): a server may clear
 * its workers' environment (nginx keeps only TZ), and a child loads the library, which reads the environment the
 * process has then, later. Without NORMAN_LIBRARY the interposer takes no socket. */
char started_socket[STARTED_BYTES], started_library[STARTED_BYTES];

__attribute__((constructor(103))) static void remember_environment(void)
{
    const char *path = getenv("NORMAN_SOCKET");
    if (path && strlen(path) < sizeof started_socket)
        strcpy(started_socket, path);
    path = getenv("NORMAN_LIBRARY");
    if (path && strlen(path) < sizeof started_library)
        strcpy(started_library, path);
}

static void load_norman(void)
{
    const char *path = started_library[0] ? started_library : getenv("NORMAN_LIBRARY");
    if (started_socket[0] && !getenv("NORMAN_SOCKET"))
        setenv("NORMAN_SOCKET", started_socket, 1);
    library = dlopen(path ? path : "libnorman.so", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        fprintf(stderr, "norman run: cannot load libnorman (%s): %s\n", path ? path : "libnorman.so", dlerror());
        return;
    }
    resolve_norman();
    atexit(flush_at_exit);
}

static int norman_ready(void)
{
    pthread_once(&loaded, load_norman);
    return library != NULL;
}

/* The handle behind a descriptor, or 0 (not Norman's, or this thread is inside the library). */
static int handle_of(int fd)
{
    if (inside || fd < 0 || fd >= MAX_DESCRIPTORS)
        return 0;
    int h = atomic_load_explicit(&owner[fd], memory_order_acquire);
    return h > 0 ? h : 0;
}

static int is_candidate(int fd)
{
    return !inside && fd >= 0 && fd < MAX_DESCRIPTORS && atomic_load(&owner[fd]) == CANDIDATE;
}

static _Atomic int said_fork, said_exec;

/* Whether a Norman descriptor cannot be used here: in a forked child (the library cannot run there), or inherited
 * across exec (its socket lived in the program that exec'd this one). */
static int unusable(int h) { return (forked_child && !child_copy) || h == INHERITED_ACROSS_EXEC || h == FORKED_AWAY; }

/* A call on an unusable descriptor: refused clearly, EBADF. */
static int refuse(int h)
{
    if (h == INHERITED_ACROSS_EXEC)
        say_once(&said_exec, "process %d was started by exec from a Norman program, and the Norman sockets it inherited "
                             "cannot be used in it but for listening TCP sockets and the TCP connections a forked child passes on "
                             "(inetd's way): a Norman socket lives in the program that opened it "
                             "(its TCP stack and pipes do not survive exec; docs/interposer.md). Open the socket here, or "
                             "mark it close-on-exec",
                 (int)getpid());
    else
        say_once(&said_fork, "process %d was forked from a Norman program: of the Norman sockets it inherited it may use a "
                             "listening TCP socket, which it joins, and a TCP connection its parent has closed, which it takes up; "
                             "not a UDP socket, nor a connection its parent still uses (the library's runtime does not survive "
                             "fork; docs/interposer.md); its new sockets are Norman's, through a copy of the library of its own",
                 (int)getpid());
    errno = EBADF;
    return -1;
}

#define ENTER() (inside = 1)
#define LEAVE(result) (inside = 0, (result))

static _Atomic int said_limit;

/*
 * A bind or connect the daemon refused for a limit (its user's sockets or pipe memory, the daemon's descriptors): the
 * program says only "Cannot allocate memory", so the daemon's sentence (which limit, and the daemon's option that
 * raises it) is said once on stderr. Returns result, errno kept.
 */
static int said_if_limit(int result)
{
    if (result < 0 && (errno == ENOMEM || errno == EMFILE) && n_last_error) {
        int error = errno;
        int was_inside = inside;
        inside = 1;
        const char *why = n_last_error();
        inside = was_inside;
        say_once(&said_limit, "process %d: %s", (int)getpid(), why && *why ? why : strerror(error));
        errno = error;
    }
    return result;
}

static int is_loopback(const struct sockaddr *address, socklen_t length)
{
    if (address && address->sa_family == AF_INET && length >= sizeof(struct sockaddr_in))
        return (ntohl(((const struct sockaddr_in *)address)->sin_addr.s_addr) >> 24) == 127;
    if (address && address->sa_family == AF_INET6 && length >= sizeof(struct sockaddr_in6)) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)address)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/*
 * When a call on handle h that may wait for direction (RECEIVING, SENDING) must give up: its SO_RCVTIMEO or SO_SNDTIMEO
 * from now, in until; NULL when it waits for ever.
 */
static struct timespec *deadline(int h, int direction, struct timespec *until)
{
    long long us = atomic_load(&timeout_us[h][direction]);
    if (us <= 0)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, until);
    long long ns = until->tv_nsec + (us % 1000000) * 1000;
    until->tv_sec += us / 1000000 + ns / 1000000000;
    until->tv_nsec = ns % 1000000000;
    return until;
}

/* The time left until a deadline (none left: zero). */
static struct timespec left_until(const struct timespec *until)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long ns = (long long)(until->tv_sec - now.tv_sec) * 1000000000 + (until->tv_nsec - now.tv_nsec);
    if (ns < 0)
        ns = 0;
    return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

/*
 * After a signal ended a wait: Linux restarts a socket call whose signal's handler was installed with SA_RESTART (and no
 * timeout set). Which signal came is not known here, so the call restarts only if every handler installed asks for it;
 * otherwise it fails with EINTR, as Python's handlers (never SA_RESTART) expect.
 */
static int restarts_after_signal(void)
{
    for (int signal = 1; signal < NSIG; signal++) {
        struct sigaction action;
        if (signal == SIGKILL || signal == SIGSTOP || sigaction(signal, NULL, &action) != 0)
            continue;
        if (action.sa_handler != SIG_DFL && action.sa_handler != SIG_IGN && !(action.sa_flags & SA_RESTART))
            return 0;
    }
    return 1;
}

/*
 * Waits in the kernel until the program's descriptor is ready for events: it is readable and writable exactly when the
 * Norman socket is, so every blocking call is a non-blocking one into the library and this wait, on the program's
 * thread. A signal ends the wait with EINTR, as it ends a kernel socket's (the library never waits: its runtime would
 * hold the thread past a signal). A UDP socket's wait also watches the daemon's own wake-up (one hand-off, not two
 * through the library's watcher thread: sockperf's p50 was 28.3 µs through it, 21.4 without). With a deadline (the
 * socket's SO_RCVTIMEO or SO_SNDTIMEO) it gives up then with EAGAIN, and a signal is never restarted past it, as on
 * Linux. Returns 0, or -1 with errno EINTR or EAGAIN.
 */
static int wait_for(int fd, int h, short events, const struct timespec *until)
{
    ENTER();
    int wakeup = socket_type[h] == SOCK_DGRAM ? n_wakeup_fd(h) : -1;
    inside = 0;
    struct pollfd ready[2] = { { .fd = fd, .events = events }, { .fd = wakeup, .events = POLLIN } };
    for (;;) {
        struct timespec left = until ? left_until(until) : (struct timespec){ 0 };
        int n = LIBC(ppoll)(ready, wakeup >= 0 ? 2 : 1, until ? &left : NULL, NULL);
        if (n > 0)
            return 0;
        if (n == 0) {
            errno = EAGAIN;
            return -1;
        }
        if (errno != EINTR || until || !restarts_after_signal())
            return -1;
    }
}

/* Whether a call on handle h with these flags waits: the program's O_NONBLOCK, or MSG_DONTWAIT, says it may not. */
static int waits(int h, int flags) { return !atomic_load(&nonblocking[h]) && !(flags & MSG_DONTWAIT); }

/*
 * Makes a candidate Norman's: a Norman socket of the same domain and type, whose readiness descriptor replaces the
 * kernel socket at the program's descriptor number (keeping its close-on-exec flag). Returns the handle, or 0 with
 * errno set (then the descriptor is still the kernel's socket).
 */
static int library_for_this_process(void);

/* The on/off options (on_off) set on a kernel socket, a bit each; one the socket does not have (IPV6_V6ONLY on IPv4) is off. */
static unsigned on_off_of_kernel_socket(int fd)
{
    unsigned set = 0;
    for (int i = 0; i < ON_OFF_OPTIONS; i++) {
        int value = 0;
        socklen_t size = sizeof value;
        if (LIBC(getsockopt)(fd, on_off[i].level, on_off[i].name, &value, &size) == 0 && value)
            set |= 1u << i;
    }
    return set;
}

static int on_off_index(int level, int name)
{
    for (int i = 0; i < ON_OFF_OPTIONS; i++)
        if (on_off[i].level == level && on_off[i].name == name)
            return i;
    return -1;
}

static int adopt(int fd)
{
    if (!library_for_this_process()) {
        errno = EAFNOSUPPORT;
        return 0;
    }
    /* O_NONBLOCK set on the kernel's socket before it became Norman's (fcntl, ioctl FIONBIO) carries over. */
    int status = LIBC(fcntl)(fd, F_GETFL);
    int type = candidate_type[fd] | (status >= 0 && (status & O_NONBLOCK) ? SOCK_NONBLOCK : 0);
    unsigned options = on_off_of_kernel_socket(fd); /* set while it was the kernel's: they carry over */
    ENTER();
    int h = n_socket(candidate_domain[fd], candidate_type[fd] | SOCK_NONBLOCK, 0); /* the waiting is done here */
    int readiness = h > 0 ? n_readiness_fd(h) : -1;
    int on = 1;
    for (int i = 0; i < LIBRARY_TAKES && h > 0; i++)
        if (options & 1u << i)
            n_setsockopt(h, on_off[i].level, on_off[i].name, &on, sizeof on);
    inside = 0;
    if (h <= 0 || readiness < 0 || h >= FORKED_AWAY) {
        int error = errno;
        fprintf(stderr, "norman run: cannot give descriptor %d to Norman: %s\n", fd, n_last_error());
        if (h > 0) {
            ENTER();
            n_close(h);
            inside = 0;
        }
        errno = error;
        return 0;
    }
    int cloexec = LIBC(fcntl)(fd, F_GETFD) & FD_CLOEXEC;
    /* SO_RCVTIMEO, SO_SNDTIMEO, SO_RCVBUF and SO_SNDBUF set while it was the kernel's carry over. */
    long long kernel_timeout[2];
    int kernel_buffer[2];
    for (int direction = RECEIVING; direction <= SENDING; direction++) {
        struct timeval set = { 0 };
        socklen_t size = sizeof set;
        LIBC(getsockopt)(fd, SOL_SOCKET, direction == RECEIVING ? SO_RCVTIMEO_OLD : SO_SNDTIMEO_OLD, &set, &size);
        kernel_timeout[direction] = (long long)set.tv_sec * 1000000 + set.tv_usec;
        size = sizeof kernel_buffer[direction];
        kernel_buffer[direction] = 0;
        LIBC(getsockopt)(fd, SOL_SOCKET, direction == RECEIVING ? SO_RCVBUF : SO_SNDBUF, &kernel_buffer[direction], &size);
    }
    if (LIBC(dup3)(readiness, fd, cloexec ? O_CLOEXEC : 0) < 0) {
        int error = errno;
        ENTER();
        n_close(h);
        inside = 0;
        errno = error;
        return 0;
    }
    atomic_store(&copies[h], 1);
    atomic_store(&nonblocking[h], (type & SOCK_NONBLOCK) != 0);
    atomic_store(&timeout_us[h][RECEIVING], kernel_timeout[RECEIVING]);
    atomic_store(&timeout_us[h][SENDING], kernel_timeout[SENDING]);
    atomic_store(&buffer_bytes[h][RECEIVING], kernel_buffer[RECEIVING]);
    atomic_store(&buffer_bytes[h][SENDING], kernel_buffer[SENDING]);
    socket_type[h] = candidate_type[fd] & ~SOCK_NONBLOCK;
    opened_at[h] = forks;
    atomic_store(&on_off_set[h], options);
    atomic_store_explicit(&owner[fd], h, memory_order_release);
    return h;
}

/* A descriptor number the kernel just handed out (socket, accept, dup of a kernel descriptor): not ours. */
static void forget(int fd)
{
    if (fd >= 0 && fd < MAX_DESCRIPTORS)
        atomic_store(&owner[fd], 0);
}

static int child_ended(int pidfd)
{
    struct pollfd ended = { .fd = pidfd, .events = POLLIN }; /* a pidfd is readable once its process has ended */
    return LIBC(poll)(&ended, 1, 0) != 0;
}

/* A child was forked: remembered while it lives (the oldest forgotten when MAX_CHILDREN live). */
static void remember_child(pid_t pid)
{
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    pthread_mutex_lock(&children_lock);
    unsigned fork_number = ++forks;
    if (pidfd >= 0) {
        int place = 0;
        for (int i = 0; i < MAX_CHILDREN; i++) {
            if (!children[i].fork || child_ended(children[i].pidfd)) {
                place = i;
                break;
            }
            if (children[i].fork < children[place].fork)
                place = i;
        }
        if (children[place].fork)
            LIBC(close)(children[place].pidfd);
        children[place].pidfd = pidfd;
        children[place].fork = fork_number;
    }
    pthread_mutex_unlock(&children_lock);
}

pid_t fork(void)
{
    pid_t pid = LIBC(fork)();
    if (pid > 0 && library)
        remember_child(pid);
    return pid;
}

/* Into held_by, copies of the pidfds of the children forked since handle h opened that live: how many. */
static int children_since(int h, int *held_by)
{
    int count = 0;
    pthread_mutex_lock(&children_lock);
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].fork > opened_at[h] && !child_ended(children[i].pidfd)) {
            int copy = LIBC(fcntl)(children[i].pidfd, F_DUPFD_CLOEXEC, 0);
            if (copy >= 0)
                held_by[count++] = copy;
        }
    pthread_mutex_unlock(&children_lock);
    return count;
}

/* The program's last descriptor for handle h is closed. A TCP connection that children forked since it opened may
 * hold is kept for them (until one takes it up or none holds it any more); anything else closes. */
static void release(int h)
{
    if (atomic_fetch_sub(&copies[h], 1) != 1)
        return;
    int held_by[MAX_CHILDREN];
    int holders = socket_type[h] == SOCK_STREAM && !listener_domain[h] && n_close_for_children ? children_since(h, held_by) : 0;
    ENTER();
    if (holders == 0 || n_close_for_children(h, held_by, holders) != 0)
        n_close(h);
    inside = 0;
}

/*
 * fork: the library's runtime does not survive in a forked child, but a second copy of the library does (dlmopen, a
 * namespace of its own). A child's first call on a listener it inherited (accept, epoll registration, a poll on it…)
 * loads that copy and joins the listener through it (norman_inherit_listener, the inherited descriptor as proof): a
 * listener of the child's own on the same port, whose readiness descriptor takes the inherited number; the parent's
 * listener takes no new connections from then on. A program exec'd with a listener joins it the same way. Every other
 * Norman descriptor the child inherited stays refused.
 */
static pthread_mutex_t taking_over = PTHREAD_MUTEX_INITIALIZER;

/* Loads the child's own copy, once; the parent's handles become FORKED_AWAY (listeners remembered by descriptor). */
static int load_child_copy(void)
{
    if (child_copy)
        return 1;
    Dl_info self;
    if (!dladdr((void *)n_socket, &self) || !self.dli_fname)
        return 0;
    if (started_socket[0] && !getenv("NORMAN_SOCKET"))
        setenv("NORMAN_SOCKET", started_socket, 1);
    void *copy = dlmopen(LM_ID_NEWLM, self.dli_fname, RTLD_NOW | RTLD_LOCAL);
    if (!copy) {
        fprintf(stderr, "norman run: process %d cannot load a copy of libnorman of its own: %s\n", (int)getpid(), dlerror());
        return 0;
    }
    for (int fd = 0; fd < MAX_DESCRIPTORS; fd++) {
        int h = atomic_load(&owner[fd]);
        if (h <= 0 || h == INHERITED_ACROSS_EXEC || h == FORKED_AWAY)
            continue; /* FORKED_AWAY: a listener still to join (this child's parent was exec'd with it) */
        inherited_domain[fd] = listener_domain[h];
        inherited_connection[fd] = socket_type[h] == SOCK_STREAM && !listener_domain[h];
        inherited_nonblocking[fd] = atomic_load(&nonblocking[h]);
        atomic_store(&owner[fd], FORKED_AWAY);
    }
    memset((void *)copies, 0, sizeof copies);
    memset((void *)nonblocking, 0, sizeof nonblocking);
    memset((void *)timeout_us, 0, sizeof timeout_us);
    memset((void *)buffer_bytes, 0, sizeof buffer_bytes);
    memset(listener_domain, 0, sizeof listener_domain);
    library = copy;
    resolve_norman();
    /* The copy has a libc of its own, and so an errno of its own: it is told where the program reads errno. */
    void (*use_errno)(int *(*)(void)) = (void (*)(int *(*)(void)))dlsym(copy, "norman_use_errno");
    if (use_errno) {
        ENTER();
        use_errno(__errno_location);
        inside = 0;
    }
    child_copy = 1;
    return 1;
}

/* Handle h listens, in this family: a process that inherits its descriptor may join it. */
static void remember_listener(int h, int domain)
{
    listener_domain[h] = domain;
    atomic_store(&had_listener, 1);
}

/* The library this process's calls go to, loaded once: a forked child's own copy where its parent had loaded one
 * (whose runtime is dead here), else the process's first. */
static int load_own_library(void)
{
    if (child_copy || (library && !forked_child))
        return 1;
    if (forked_child && library)
        return load_child_copy();
    if (!norman_ready())
        return 0;
    if (forked_child)
        child_copy = 1; /* its parent never loaded one: this copy is the child's own */
    return 1;
}

/* The library this process's new sockets are made in (a forked child's own copy, loaded now if need be). */
static int library_for_this_process(void)
{
    if (!forked_child)
        return norman_ready();
    pthread_mutex_lock(&taking_over);
    int loaded_here = load_own_library();
    pthread_mutex_unlock(&taking_over);
    return loaded_here;
}

/* Forgets that fd was a listener to join. */
static void forget_inherited(int fd) { inherited_domain[fd] = inherited_connection[fd] = 0; }

/* Other descriptors this process inherited for the same socket as fd (dup'd before fork or exec), still to join or
 * take up as fd is: into same (at most 64), how many. */
static int inherited_copies(int fd, int *same, int connection)
{
    int count = 0;
    for (int other = 0; other < MAX_DESCRIPTORS && count < 64; other++) {
        if (other != fd && (connection ? inherited_connection[other] : inherited_domain[other]) && atomic_load(&owner[other]) == FORKED_AWAY
            && syscall(SYS_kcmp, getpid(), getpid(), 0 /* KCMP_FILE */, fd, other) == 0)
            same[count++] = other;
    }
    return count;
}

/* The copies of fd (same) become handle h's too, readiness dup'd over each: how many descriptors name h now. */
static int adopt_copies(int h, int readiness, const int *same, int count)
{
    int copies_now = 1;
    for (int i = 0; i < count; i++) {
        int other_cloexec = LIBC(fcntl)(same[i], F_GETFD) & FD_CLOEXEC;
        if (LIBC(dup3)(readiness, same[i], other_cloexec ? O_CLOEXEC : 0) == same[i]) {
            forget_inherited(same[i]);
            atomic_store_explicit(&owner[same[i]], h, memory_order_release);
            copies_now++;
        }
    }
    return copies_now;
}

/*
 * Makes fd, a socket this process inherited (a forked child's from its parent, or the program exec'd with it), the
 * process's own at its first use, through its own copy of the library with fd as the proof (the waiting is done
 * there): a listener, joined (norman_inherit_listener: a listener of its own on the port, in a group with the
 * inherited one), or a TCP connection, taken up once its parent has closed its copy (norman_claim_connection). The
 * new socket's readiness descriptor takes fd's number, and the other inherited copies of the same file (dup'd before
 * fork or exec: the daemon knows the socket by one file) take it too. Returns the handle, or FORKED_AWAY (refused, the
 * reason said on stderr) when it cannot be.
 */
static int take_over(int fd, int connection)
{
    pthread_mutex_lock(&taking_over);
    if (!load_own_library() || atomic_load(&owner[fd]) != FORKED_AWAY || !(connection ? inherited_connection[fd] : inherited_domain[fd])) {
        int now = atomic_load(&owner[fd]);
        pthread_mutex_unlock(&taking_over);
        return now;
    }
    static int same[64];
    int sames = inherited_copies(fd, same, connection);
    int domain = inherited_domain[fd];
    ENTER();
    int h = connection ? (n_claim_connection ? n_claim_connection(fd) : -1) : n_inherit_listener(domain, fd, 1);
    int readiness = h > 0 ? n_readiness_fd(h) : -1;
    inside = 0;
    forget_inherited(fd);
    int cloexec = LIBC(fcntl)(fd, F_GETFD) & FD_CLOEXEC;
    if (h <= 0 || readiness < 0 || h >= FORKED_AWAY || LIBC(dup3)(readiness, fd, cloexec ? O_CLOEXEC : 0) < 0) {
        fprintf(stderr, "norman run: process %d cannot %s it inherited at descriptor %d: %s\n", (int)getpid(),
                connection ? "take up the TCP connection" : "join the listener", fd, h > 0 ? strerror(errno) : n_last_error());
        if (h > 0) {
            ENTER(); /* a listener nobody serves would take the connections the others could */
            n_close(h);
            inside = 0;
        }
        for (int i = 0; i < sames; i++) /* the same file: refused as this one is */
            forget_inherited(same[i]);
        pthread_mutex_unlock(&taking_over);
        return FORKED_AWAY;
    }
    if (!connection)
        remember_listener(h, domain); /* a child may join it in turn */
    atomic_store(&copies[h], adopt_copies(h, readiness, same, sames));
    atomic_store(&nonblocking[h], inherited_nonblocking[fd]);
    socket_type[h] = SOCK_STREAM;
    opened_at[h] = forks;
    atomic_store_explicit(&owner[fd], h, memory_order_release);
    pthread_mutex_unlock(&taking_over);
    return h;
}

/*
 * The handle of descriptor fd for a call that uses it: where fd is a TCP listener or connection this process inherited
 * and has not yet made its own, made its own now (take_over). In a forked child that has not loaded its own copy of
 * the library, the handle is still its parent's.
 */
static int joined(int fd, int h)
{
    if (inside || fd < 0 || fd >= MAX_DESCRIPTORS)
        return h;
    int parents = forked_child && !child_copy && h > 0 && h < FORKED_AWAY && socket_type[h] == SOCK_STREAM;
    if ((parents && !listener_domain[h]) || (h == FORKED_AWAY && inherited_connection[fd]))
        return take_over(fd, 1);
    if ((parents && listener_domain[h]) || (h == FORKED_AWAY && inherited_domain[fd]))
        return take_over(fd, 0);
    return h;
}

/* The handle of fd for a call that uses the socket (made the process's own first where it was inherited). */
static int in_use(int fd) { return joined(fd, handle_of(fd)); }

int listener_across_exec(int fd, int replacing, int *domain, int *nonblocking_out, int *kept)
{
    *kept = 0;
    int h = atomic_load(&owner[fd]);
    if (h == FORKED_AWAY && inherited_domain[fd]) { /* still to join: passed on as it came */
        *domain = inherited_domain[fd];
        *nonblocking_out = inherited_nonblocking[fd];
        return 1;
    }
    if (h <= 0 || h >= FORKED_AWAY || !listener_domain[h])
        return 0;
    *domain = listener_domain[h];
    *nonblocking_out = atomic_load(&nonblocking[h]);
    /* The library is this process's to call: not a vfork child's (its parent's memory), nor a forked child's without a
     * copy of its own (then its parent still holds the listener, which needs no keeping). */
    if (replacing && library && !(forked_child && !child_copy) && getpid() == process_pid) {
        ENTER();
        int marked = n_keep_across_exec(h, 1);
        inside = 0;
        if (marked == 0)
            *kept = h;
    }
    return 1;
}

int connection_across_exec(int fd, int *nonblocking_out)
{
    int h = atomic_load(&owner[fd]);
    if (h == FORKED_AWAY && inherited_connection[fd]) { /* still to take up: passed on as it came */
        *nonblocking_out = inherited_nonblocking[fd];
        return 1;
    }
    /* A forked child that never loaded a copy of its own: the handle is its parent's, which keeps the connection. */
    if (!(forked_child && !child_copy) || h <= 0 || h >= FORKED_AWAY || socket_type[h] != SOCK_STREAM || listener_domain[h])
        return 0;
    *nonblocking_out = atomic_load(&nonblocking[h]);
    return 1;
}

void expect_connection(int fd, int nonblocking_flag)
{
    if (fd < 0 || fd >= MAX_DESCRIPTORS || LIBC(fcntl)(fd, F_GETFD) < 0)
        return;
    inherited_connection[fd] = 1;
    inherited_nonblocking[fd] = nonblocking_flag != 0;
    atomic_store(&owner[fd], FORKED_AWAY);
}

void exec_failed(int h)
{
    int error = errno;
    ENTER();
    n_keep_across_exec(h, 0);
    inside = 0;
    errno = error;
}

void expect_listener(int fd, int domain, int nonblocking_flag)
{
    if (fd < 0 || fd >= MAX_DESCRIPTORS || LIBC(fcntl)(fd, F_GETFD) < 0)
        return;
    inherited_domain[fd] = domain == AF_INET6 ? AF_INET6 : AF_INET;
    inherited_nonblocking[fd] = nonblocking_flag != 0;
    atomic_store(&owner[fd], FORKED_AWAY);
    atomic_store(&had_listener, 1);
}

/*
 * A worker that waits on a listener it inherited with poll or select before any call on it (gunicorn's workers select,
 * then accept) joins it first, as at accept: else it would watch its parent's listener, which keeps taking the new
 * connections (no child has joined) and never hands them over. Nothing is looked at in a process that never had a
 * listener.
 */
static int joins_on_wait(void) { return atomic_load_explicit(&had_listener, memory_order_relaxed) && (forked_child || child_copy || !library); }

int poll(struct pollfd *fds, nfds_t count, int timeout)
{
    if (joins_on_wait() && !inside)
        for (nfds_t i = 0; i < count; i++)
            in_use(fds[i].fd);
    return LIBC(poll)(fds, count, timeout);
}

int ppoll(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask)
{
    if (joins_on_wait() && !inside)
        for (nfds_t i = 0; i < count; i++)
            in_use(fds[i].fd);
    return LIBC(ppoll)(fds, count, timeout, mask);
}

/* poll and ppoll as a program built with _FORTIFY_SOURCE calls them, where the array's size is known. */
int __poll_chk(struct pollfd *fds, nfds_t count, int timeout, size_t size)
{
    if (joins_on_wait() && !inside)
        for (nfds_t i = 0; i < count && (i + 1) * sizeof *fds <= size; i++)
            in_use(fds[i].fd);
    return LIBC(poll_chk)(fds, count, timeout, size);
}

int __ppoll_chk(struct pollfd *fds, nfds_t count, const struct timespec *timeout, const sigset_t *mask, size_t size)
{
    if (joins_on_wait() && !inside)
        for (nfds_t i = 0; i < count && (i + 1) * sizeof *fds <= size; i++)
            in_use(fds[i].fd);
    return LIBC(ppoll_chk)(fds, count, timeout, mask, size);
}

static void join_selected(int count, fd_set *sets[3])
{
    for (int fd = 0; fd < count && fd < FD_SETSIZE; fd++)
        if ((sets[0] && FD_ISSET(fd, sets[0])) || (sets[1] && FD_ISSET(fd, sets[1])) || (sets[2] && FD_ISSET(fd, sets[2])))
            in_use(fd);
}

int select(int count, fd_set *readable, fd_set *writable, fd_set *failed, struct timeval *timeout)
{
    if (joins_on_wait() && !inside)
        join_selected(count, (fd_set *[3]){ readable, writable, failed });
    return LIBC(select)(count, readable, writable, failed, timeout);
}

int pselect(int count, fd_set *readable, fd_set *writable, fd_set *failed, const struct timespec *timeout, const sigset_t *mask)
{
    if (joins_on_wait() && !inside)
        join_selected(count, (fd_set *[3]){ readable, writable, failed });
    return LIBC(pselect)(count, readable, writable, failed, timeout, mask);
}

/* A forked worker registers a listener it inherited (nginx's do, in each worker): joined first, so that its epoll
 * watches the worker's own listener, not the parent's (or, after exec, one nobody serves). */
int epoll_ctl(int epoll, int operation, int fd, struct epoll_event *event)
{
    if (operation != EPOLL_CTL_DEL)
        in_use(fd);
    return LIBC(epoll_ctl)(epoll, operation, fd, event);
}

int socket(int domain, int type, int protocol)
{
    int fd = LIBC(socket)(domain, type, protocol);
    if (fd < 0 || fd >= MAX_DESCRIPTORS)
        return fd;
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    int ours = !inside && (domain == AF_INET || domain == AF_INET6)
        && ((base == SOCK_DGRAM && (protocol == 0 || protocol == IPPROTO_UDP))
            || (base == SOCK_STREAM && (protocol == 0 || protocol == IPPROTO_TCP)))
        && (started_library[0] || getenv("NORMAN_LIBRARY") != NULL);
    if (ours) {
        candidate_domain[fd] = domain;
        candidate_type[fd] = type & ~SOCK_CLOEXEC;
    }
    atomic_store(&owner[fd], ours ? CANDIDATE : 0);
    return fd;
}

int bind(int fd, const struct sockaddr *address, socklen_t length)
{
    if (is_candidate(fd) && is_loopback(address, length))
        forget(fd); /* the kernel's for good: Norman has no loopback */
    if (is_candidate(fd)) {
        int h = adopt(fd);
        if (!h)
            return -1;
        ENTER();
        return said_if_limit(LEAVE(n_bind(h, address, length)));
    }
    int h = handle_of(fd);
    if (!h)
        return LIBC(bind)(fd, address, length);
    if (unusable(h))
        return refuse(h);
    ENTER();
    return said_if_limit(LEAVE(n_bind(h, address, length)));
}

/* A blocking connect waits here for the handshake (writable), then reads how it went; a signal ends the wait with
 * EINTR and the handshake goes on, as Linux's. */
static int connect_norman(int fd, int h, const struct sockaddr *address, socklen_t length)
{
    ENTER();
    int result = said_if_limit(n_connect(h, address, length));
    inside = 0;
    if (result == 0 || errno != EINPROGRESS || atomic_load(&nonblocking[h]))
        return result;
    struct timespec until;
    if (wait_for(fd, h, POLLOUT, deadline(h, SENDING, &until)) < 0) {
        if (errno == EAGAIN)
            errno = EINPROGRESS; /* SO_SNDTIMEO passed: the handshake goes on, as Linux's */
        return -1;
    }
    ENTER();
    int error = n_socket_error(h);
    inside = 0;
    if (error != 0) {
        errno = error;
        return -1;
    }
    return 0;
}

int connect(int fd, const struct sockaddr *address, socklen_t length)
{
    if (is_candidate(fd) && is_loopback(address, length))
        forget(fd);
    if (is_candidate(fd)) {
        int h = adopt(fd);
        return h ? connect_norman(fd, h, address, length) : -1;
    }
    int h = handle_of(fd);
    if (!h)
        return LIBC(connect)(fd, address, length);
    if (unusable(h))
        return refuse(h);
    return connect_norman(fd, h, address, length);
}

int listen(int fd, int backlog)
{
    int h = is_candidate(fd) ? adopt(fd) : in_use(fd);
    if (!h)
        return LIBC(listen)(fd, backlog);
    if (unusable(h))
        return refuse(h);
    ENTER();
    int result = n_listen(h, backlog);
    if (result == 0) {
        struct sockaddr_storage local;
        socklen_t size = sizeof local;
        remember_listener(h, n_getsockname(h, (struct sockaddr *)&local, &size) == 0 ? local.ss_family : AF_INET);
    }
    return LEAVE(result);
}

static int accept_norman(int listening, int h, struct sockaddr *address, socklen_t *length, int flags)
{
    int accepted;
    struct timespec until;
    const struct timespec *give_up = deadline(h, RECEIVING, &until);
    for (;;) {
        ENTER();
        accepted = n_accept(h, address, length);
        inside = 0;
        if (accepted > 0 || errno != EAGAIN || !waits(h, 0))
            break;
        if (wait_for(listening, h, POLLIN, give_up) < 0)
            return -1;
    }
    ENTER();
    int readiness = accepted > 0 ? n_readiness_fd(accepted) : -1;
    inside = 0;
    if (accepted <= 0)
        return -1;
    if (readiness < 0 || accepted >= FORKED_AWAY) {
        ENTER();
        n_close(accepted);
        inside = 0;
        errno = EMFILE;
        return -1;
    }
    int fd = LIBC(fcntl)(readiness, (flags & SOCK_CLOEXEC) ? F_DUPFD_CLOEXEC : F_DUPFD, 0);
    if (fd < 0 || fd >= MAX_DESCRIPTORS) {
        int error = fd < 0 ? errno : EMFILE;
        if (fd >= 0)
            LIBC(close)(fd);
        ENTER();
        n_close(accepted);
        inside = 0;
        errno = error;
        return -1;
    }
    atomic_store(&copies[accepted], 1);
    atomic_store(&nonblocking[accepted], (flags & SOCK_NONBLOCK) != 0);
    atomic_store(&timeout_us[accepted][RECEIVING], atomic_load(&timeout_us[h][RECEIVING])); /* as Linux's clone of the listener */
    atomic_store(&timeout_us[accepted][SENDING], atomic_load(&timeout_us[h][SENDING]));
    atomic_store(&buffer_bytes[accepted][RECEIVING], atomic_load(&buffer_bytes[h][RECEIVING]));
    atomic_store(&buffer_bytes[accepted][SENDING], atomic_load(&buffer_bytes[h][SENDING]));
    socket_type[accepted] = SOCK_STREAM;
    opened_at[accepted] = forks;
    atomic_store(&on_off_set[accepted], atomic_load(&on_off_set[h]));
    ENTER();
    n_set_nonblocking(accepted, 1); /* the waiting is done here */
    inside = 0;
    atomic_store_explicit(&owner[fd], accepted, memory_order_release);
    return fd;
}

int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags)
{
    int h = in_use(fd);
    if (!h) {
        int accepted = LIBC(accept4)(fd, address, length, flags);
        forget(accepted);
        return accepted;
    }
    if (unusable(h))
        return refuse(h);
    return accept_norman(fd, h, address, length, flags);
}

int accept(int fd, struct sockaddr *address, socklen_t *length) { return accept4(fd, address, length, 0); }


/* A write to a stream whose sending side is shut down: Linux signals the thread that wrote (SIGPIPE, which ends a
 * program that did not ask otherwise) unless it sent with MSG_NOSIGNAL, and the call fails with EPIPE. */
static ssize_t broken_pipe(void)
{
    raise(SIGPIPE);
    errno = EPIPE;
    return -1;
}

ssize_t sendto(int fd, const void *buffer, size_t length, int flags, const struct sockaddr *to, socklen_t to_length)
{
    if (is_candidate(fd) && to && is_loopback(to, to_length))
        forget(fd);
    if (is_candidate(fd) && to && !adopt(fd))
        return -1;
    int h = in_use(fd);
    if (!h)
        return LIBC(sendto)(fd, buffer, length, flags, to, to_length);
    if (unusable(h))
        return refuse(h);
    /* A blocking send of a stream goes on until all of it is taken, as Linux's; interrupted, it says how much was. */
    int wait = waits(h, flags);
    int signal_broken_pipe = socket_type[h] == SOCK_STREAM && !(flags & MSG_NOSIGNAL);
    flags = (flags & ~MSG_NOSIGNAL) | MSG_DONTWAIT;
    size_t done = 0;
    struct timespec until;
    const struct timespec *give_up = wait ? deadline(h, SENDING, &until) : NULL;
    for (;;) {
        ENTER();
        ssize_t sent = n_sendto(h, (const char *)buffer + done, length - done, flags, to, to_length);
        inside = 0;
        if (sent >= 0 && socket_type[h] != SOCK_STREAM)
            return sent;
        if (sent >= 0)
            done += (size_t)sent;
        else if (errno == EPIPE && done == 0 && signal_broken_pipe)
            return broken_pipe();
        else if (errno != EAGAIN || !wait)
            return done > 0 ? (ssize_t)done : -1;
        if (done == length || (sent > 0 && !wait))
            return (ssize_t)done;
        if (wait_for(fd, h, POLLOUT, give_up) < 0)
            return done > 0 ? (ssize_t)done : -1;
    }
}

ssize_t send(int fd, const void *buffer, size_t length, int flags)
{
    if (!handle_of(fd))
        return LIBC(send)(fd, buffer, length, flags);
    return sendto(fd, buffer, length, flags, NULL, 0);
}

ssize_t write(int fd, const void *buffer, size_t length)
{
    if (!handle_of(fd))
        return LIBC(write)(fd, buffer, length);
    return sendto(fd, buffer, length, 0, NULL, 0);
}

ssize_t recvfrom(int fd, void *buffer, size_t length, int flags, struct sockaddr *from, socklen_t *from_length)
{
    int h = in_use(fd);
    if (!h)
        return LIBC(recvfrom)(fd, buffer, length, flags, from, from_length);
    if (unusable(h))
        return refuse(h);
    int wait = waits(h, flags);
    struct timespec until;
    const struct timespec *give_up = wait ? deadline(h, RECEIVING, &until) : NULL;
    for (;;) {
        ENTER();
        ssize_t received = n_recvfrom(h, buffer, length, flags | MSG_DONTWAIT, from, from_length);
        inside = 0;
        if (received >= 0 || errno != EAGAIN || !wait)
            return received;
        if (wait_for(fd, h, POLLIN, give_up) < 0)
            return -1;
    }
}

ssize_t recv(int fd, void *buffer, size_t length, int flags)
{
    if (!handle_of(fd))
        return LIBC(recv)(fd, buffer, length, flags);
    return recvfrom(fd, buffer, length, flags, NULL, NULL);
}

ssize_t read(int fd, void *buffer, size_t length)
{
    if (!handle_of(fd))
        return LIBC(read)(fd, buffer, length);
    return recvfrom(fd, buffer, length, 0, NULL, NULL);
}

/* Gathers an iovec into one buffer (the library takes one span a call). */
static size_t gather(const struct iovec *iov, int count, char *into, size_t room)
{
    size_t total = 0;
    for (int i = 0; i < count && total < room; i++) {
        size_t take = iov[i].iov_len < room - total ? iov[i].iov_len : room - total;
        memcpy(into + total, iov[i].iov_base, take);
        total += take;
    }
    return total;
}

static void scatter(const struct iovec *iov, int count, const char *from, size_t length)
{
    for (int i = 0; i < count && length > 0; i++) {
        size_t take = iov[i].iov_len < length ? iov[i].iov_len : length;
        memcpy(iov[i].iov_base, from, take);
        from += take;
        length -= take;
    }
}

ssize_t sendmsg(int fd, const struct msghdr *message, int flags)
{
    if (!handle_of(fd) && !is_candidate(fd))
        return LIBC(sendmsg)(fd, message, flags);
    char *bounce = malloc(BOUNCE_BYTES);
    if (!bounce) {
        errno = ENOBUFS;
        return -1;
    }
    size_t length = gather(message->msg_iov, (int)message->msg_iovlen, bounce, BOUNCE_BYTES);
    ssize_t sent = is_candidate(fd) && (!message->msg_name || is_loopback(message->msg_name, message->msg_namelen))
        ? LIBC(sendmsg)(fd, message, flags)
        : sendto(fd, bounce, length, flags, message->msg_name, message->msg_namelen);
    free(bounce);
    return sent;
}

ssize_t recvmsg(int fd, struct msghdr *message, int flags)
{
    if (!handle_of(fd))
        return LIBC(recvmsg)(fd, message, flags);
    size_t room = 0;
    for (size_t i = 0; i < message->msg_iovlen; i++)
        room += message->msg_iov[i].iov_len;
    char *bounce = malloc(room ? room : 1);
    if (!bounce) {
        errno = ENOBUFS;
        return -1;
    }
    socklen_t name_length = message->msg_name ? message->msg_namelen : 0;
    ssize_t received = recvfrom(fd, bounce, room, flags, message->msg_name, message->msg_name ? &name_length : NULL);
    if (received > 0)
        scatter(message->msg_iov, (int)message->msg_iovlen, bounce, (size_t)received);
    free(bounce);
    if (received >= 0) {
        message->msg_namelen = name_length;
        message->msg_controllen = 0;
        message->msg_flags = 0;
    }
    return received;
}

/* Linux's limit on one call's messages (UIO_MAXIOV). */
#define MAX_MESSAGES 1024

/* Each message through sendmsg (which makes the socket Norman's at its first non-loopback destination, as sendto
 * does); as Linux, the count sent, and the error only when the first fails. */
int sendmmsg(int fd, struct mmsghdr *messages, unsigned int count, int flags)
{
    if (!handle_of(fd) && !is_candidate(fd))
        return LIBC(sendmmsg)(fd, messages, count, flags);
    unsigned int sent = 0;
    for (; sent < count && sent < MAX_MESSAGES; sent++) {
        ssize_t length = sendmsg(fd, &messages[sent].msg_hdr, flags);
        if (length < 0) {
            if (sent > 0)
                break;
            return -1;
        }
        messages[sent].msg_len = (unsigned int)length;
    }
    return (int)sent;
}

/* The first message waits as recvmsg would; the others are taken only if they are there already (Linux waits for
 * all of them on a blocking socket without MSG_WAITFORONE, a behaviour its own manual calls a bug when a timeout is
 * given: servers use MSG_WAITFORONE or non-blocking sockets). The count received, or the first's error. */
int recvmmsg(int fd, struct mmsghdr *messages, unsigned int count, int flags, struct timespec *timeout)
{
    if (!handle_of(fd))
        return LIBC(recvmmsg)(fd, messages, count, flags, timeout);
    flags &= ~MSG_WAITFORONE;
    unsigned int received = 0;
    for (; received < count && received < MAX_MESSAGES; received++) {
        ssize_t length = recvmsg(fd, &messages[received].msg_hdr, received == 0 ? flags : flags | MSG_DONTWAIT);
        if (length < 0) {
            if (received > 0)
                break;
            return -1;
        }
        messages[received].msg_len = (unsigned int)length;
    }
    return (int)received;
}

ssize_t readv(int fd, const struct iovec *iov, int count)
{
    if (!handle_of(fd))
        return LIBC(readv)(fd, iov, count);
    struct msghdr message = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)count };
    return recvmsg(fd, &message, 0);
}

ssize_t writev(int fd, const struct iovec *iov, int count)
{
    if (!handle_of(fd))
        return LIBC(writev)(fd, iov, count);
    struct msghdr message = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)count };
    return sendmsg(fd, &message, 0);
}

int shutdown(int fd, int how)
{
    int h = in_use(fd);
    if (!h)
        return LIBC(shutdown)(fd, how);
    if (unusable(h))
        return refuse(h);
    ENTER();
    return LEAVE(n_shutdown(h, how));
}

int getsockname(int fd, struct sockaddr *address, socklen_t *length)
{
    int h = in_use(fd);
    if (!h)
        return LIBC(getsockname)(fd, address, length);
    if (unusable(h))
        return refuse(h);
    ENTER();
    return LEAVE(n_getsockname(h, address, length));
}

int getpeername(int fd, struct sockaddr *address, socklen_t *length)
{
    int h = in_use(fd);
    if (!h)
        return LIBC(getpeername)(fd, address, length);
    if (unusable(h))
        return refuse(h);
    ENTER();
    return LEAVE(n_getpeername(h, address, length));
}

static _Atomic int said_option;

static int is_timeout(int level, int name, int *direction)
{
    if (level != SOL_SOCKET)
        return 0;
    *direction = name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW ? RECEIVING : SENDING;
    return name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW || name == SO_SNDTIMEO_OLD || name == SO_SNDTIMEO_NEW;
}

/*
 * SO_RCVBUF and SO_SNDBUF (and their FORCE forms): what the kernel makes of the value (doubled, clamped to its
 * net.core limits and minimum; FORCE needs CAP_NET_ADMIN) is asked of a kernel socket of the same type made for the
 * purpose, and kept to be read back. Norman's pipes keep their size.
 */
static int set_buffer(int h, int name, const void *value, socklen_t length)
{
    int probe = LIBC(socket)(AF_INET, socket_type[h], 0);
    if (probe < 0)
        return -1;
    int bytes = 0;
    socklen_t size = sizeof bytes;
    int result = LIBC(setsockopt)(probe, SOL_SOCKET, name, value, length);
    if (result == 0)
        result = LIBC(getsockopt)(probe, SOL_SOCKET, name == SO_RCVBUF || name == SO_RCVBUFFORCE ? SO_RCVBUF : SO_SNDBUF, &bytes, &size);
    int error = errno;
    LIBC(close)(probe);
    if (result != 0) {
        errno = error;
        return -1;
    }
    atomic_store(&buffer_bytes[h][name == SO_RCVBUF || name == SO_RCVBUFFORCE ? RECEIVING : SENDING], bytes);
    return 0;
}

/* SO_RCVTIMEO and SO_SNDTIMEO, checked as Linux checks them: EINVAL when short, EDOM when tv_usec is out of range; a
 * negative time gives up at once; zero waits for ever. */
static int set_timeout(int h, int direction, const void *value, socklen_t length)
{
    struct timeval asked;
    if (!value || length < sizeof asked) {
        errno = EINVAL;
        return -1;
    }
    memcpy(&asked, value, sizeof asked);
    if (asked.tv_usec < 0 || asked.tv_usec >= 1000000) {
        errno = EDOM;
        return -1;
    }
    long long us = asked.tv_sec < 0 ? 1 : asked.tv_sec > 1000000000 ? 1000000000LL * 1000000 : (long long)asked.tv_sec * 1000000 + asked.tv_usec;
    atomic_store(&timeout_us[h][direction], us);
    return 0;
}

static int flag(const void *value, socklen_t length) { return value && length >= sizeof(int) && *(const int *)value != 0; }

int setsockopt(int fd, int level, int name, const void *value, socklen_t length)
{
    int h = in_use(fd);
    if (!h)
        return LIBC(setsockopt)(fd, level, name, value, length);
    if (unusable(h))
        return refuse(h);
    int direction;
    if (is_timeout(level, name, &direction))
        return set_timeout(h, direction, value, length);
    if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF || name == SO_RCVBUFFORCE || name == SO_SNDBUFFORCE))
        return set_buffer(h, name, value, length);
    int i = on_off_index(level, name);
    if (i >= 0 && (!value || length < (socklen_t)sizeof(int))) {
        errno = EINVAL;
        return -1;
    }
    if (i >= 0 && flag(value, length))
        atomic_fetch_or(&on_off_set[h], 1u << i);
    else if (i >= 0)
        atomic_fetch_and(&on_off_set[h], ~(1u << i));
    else
        say_once(&said_option, "socket options beyond SO_REUSEADDR, SO_REUSEPORT, IPV6_V6ONLY, SO_KEEPALIVE, TCP_NODELAY, the timeouts and "
                               "the buffer sizes (read back as Linux would) are accepted and ignored on Norman sockets "
                               "(first: level %d, option %d)", level, name);
    ENTER();
    return LEAVE(n_setsockopt(h, level, name, value, length));
}

int getsockopt(int fd, int level, int name, void *value, socklen_t *length)
{
    int h = in_use(fd);
    if (!h)
        return LIBC(getsockopt)(fd, level, name, value, length);
    if (unusable(h))
        return refuse(h);
    int direction;
    if (is_timeout(level, name, &direction) && value && length && *length >= sizeof(struct timeval)) {
        long long us = atomic_load(&timeout_us[h][direction]);
        struct timeval set = { .tv_sec = us / 1000000, .tv_usec = us % 1000000 };
        memcpy(value, &set, sizeof set);
        *length = sizeof set;
        return 0;
    }
    /* SO_ERROR: how a non-blocking connect ended (taken, as the kernel's); other errors come from the calls themselves. */
    int answer = 0;
    if (level == SOL_SOCKET && name == SO_ERROR && n_socket_error) {
        ENTER();
        answer = n_socket_error(h);
        inside = 0;
        if (answer < 0)
            answer = 0;
    }
    if (level == SOL_SOCKET && name == SO_TYPE)
        answer = socket_type[h];
    if (on_off_index(level, name) >= 0)
        answer = (atomic_load(&on_off_set[h]) >> on_off_index(level, name)) & 1;
    if (level == SOL_SOCKET && (name == SO_RCVBUF || name == SO_SNDBUF))
        answer = atomic_load(&buffer_bytes[h][name == SO_RCVBUF ? RECEIVING : SENDING]);
    if (value && length) {
        /* An option Norman does not keep (TCP_INFO, say) reads as zeros over the length asked, never as stale bytes. */
        memset(value, 0, *length);
        if (*length >= sizeof(int))
            memcpy(value, &answer, sizeof(int));
        if (!(level == IPPROTO_TCP && name == TCP_INFO))
            *length = *length < sizeof(int) ? *length : sizeof(int);
    }
    return 0;
}

int close(int fd)
{
    int h = handle_of(fd);
    if (!h) {
        if (!inside)
            forget(fd);
        return LIBC(close)(fd);
    }
    atomic_store(&owner[fd], 0);
    if (h == FORKED_AWAY)
        forget_inherited(fd);
    int result = LIBC(close)(fd);
    if (!unusable(h))
        release(h);
    return result;
}

/* fd is a copy of from, whose handle is h: so is fd's, and a socket still to join or take up stays one. */
static int duplicated(int h, int from, int fd)
{
    if (fd >= 0 && fd < MAX_DESCRIPTORS) {
        atomic_fetch_add(&copies[h], 1);
        if (h == FORKED_AWAY && from >= 0 && from < MAX_DESCRIPTORS) {
            inherited_domain[fd] = inherited_domain[from];
            inherited_connection[fd] = inherited_connection[from];
            inherited_nonblocking[fd] = inherited_nonblocking[from];
        }
        atomic_store_explicit(&owner[fd], h, memory_order_release);
    }
    return fd;
}

int dup(int fd)
{
    int h = handle_of(fd); /* not taken up here: a forked child dup's an inherited connection onto 0 and 1, then execs */
    int copy = LIBC(dup)(fd);
    if (!h) {
        if (!inside)
            forget(copy);
        return copy;
    }
    return copy < 0 ? copy : duplicated(h, fd, copy);
}

int dup3(int fd, int target, int flags)
{
    int h = handle_of(fd);
    int replaced = handle_of(target);
    if (fd == target) {
        errno = EINVAL;
        return -1;
    }
    int copy = LIBC(dup3)(fd, target, flags);
    if (copy < 0)
        return copy;
    if (replaced) {
        atomic_store(&owner[target], 0);
        if (!unusable(replaced))
            release(replaced);
    }
    if (!h) {
        if (!inside)
            forget(copy);
        return copy;
    }
    return duplicated(h, fd, copy);
}

int dup2(int fd, int target)
{
    if (fd == target)
        return LIBC(dup2)(fd, target);
    return dup3(fd, target, 0);
}

static int norman_fcntl(int fd, int command, long argument)
{
    int h = command == F_GETFL || command == F_SETFL ? in_use(fd) : handle_of(fd);
    if (!h)
        return LIBC(fcntl)(fd, command, argument);
    switch (command) {
    case F_GETFL:
        return O_RDWR | (atomic_load(&nonblocking[h]) ? O_NONBLOCK : 0);
    case F_SETFL: {
        /* Kept here, not set on the readiness descriptor (the library needs its end non-blocking whatever the program
         * asks), nor given to the library, whose sockets never wait: a blocking call waits here (wait_for). */
        atomic_store(&nonblocking[h], (argument & O_NONBLOCK) != 0);
        return 0;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int copy = LIBC(fcntl)(fd, command, argument);
        return copy < 0 ? copy : duplicated(h, fd, copy);
    }
    default:
        return LIBC(fcntl)(fd, command, argument);
    }
}

int fcntl(int fd, int command, ...)
{
    va_list arguments;
    va_start(arguments, command);
    long argument = va_arg(arguments, long);
    va_end(arguments);
    return norman_fcntl(fd, command, argument);
}

/* What programs built against glibc 2.28 and later call for fcntl (Redis, Python). */
int fcntl64(int fd, int command, ...)
{
    va_list arguments;
    va_start(arguments, command);
    long argument = va_arg(arguments, long);
    va_end(arguments);
    return norman_fcntl(fd, command, argument);
}

/* sendfile to a Norman socket: the file is read here (pread, or read from its offset) and sent; the kernel path where
 * the target is the kernel's. */
ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
    if (!handle_of(out))
        return LIBC(sendfile)(out, in, offset, count);
    char *bounce = malloc(BOUNCE_BYTES);
    if (!bounce) {
        errno = ENOBUFS;
        return -1;
    }
    size_t want = count < BOUNCE_BYTES ? count : BOUNCE_BYTES;
    ssize_t got = offset ? pread(in, bounce, want, *offset) : LIBC(read)(in, bounce, want);
    ssize_t sent = got <= 0 ? got : sendto(out, bounce, (size_t)got, 0, NULL, 0);
    if (sent > 0 && offset)
        *offset += sent;
    else if (sent > 0 && sent < got)
        lseek(in, sent - got, SEEK_CUR); /* give back what was read and not sent */
    free(bounce);
    return sent;
}

ssize_t sendfile64(int out, int in, off_t *offset, size_t count) { return sendfile(out, in, offset, count); }

int ioctl(int fd, unsigned long request, ...)
{
    va_list arguments;
    va_start(arguments, request);
    void *argument = va_arg(arguments, void *);
    va_end(arguments);
    int h = request == FIONBIO || request == FIONREAD ? in_use(fd) : handle_of(fd);
    if (!h)
        return LIBC(ioctl)(fd, request, argument);
    if (unusable(h))
        return refuse(h);
    if (request == FIONBIO) {
        atomic_store(&nonblocking[h], *(int *)argument != 0); /* as F_SETFL: kept here */
        return 0;
    }
    if (request == FIONREAD) {
        ENTER();
        int waiting = n_readable_bytes(h);
        inside = 0;
        *(int *)argument = waiting > 0 ? waiting : 0;
        return 0;
    }
    errno = ENOTTY;
    return -1;
}
