/*
 * libnorman: kernel-bypass UDP and TCP sockets through a Norman daemon, for programs in any language.
 *
 * The calls mirror the BSD socket calls they are named after, with the same arguments, return values and errno
 * values, so that porting a program is a matter of prefixing its socket calls. A socket here is a Norman handle
 * (a small positive integer), not a kernel file descriptor: pass it only to norman_* calls.
 *
 * The daemon is found at $NORMAN_SOCKET, else /run/norman/norman.sock. Every failing call returns -1, sets errno,
 * and leaves a sentence for people in norman_last_error() (what happened and what to do), as the norman CLI prints.
 *
 * Blocking is the default, as for kernel sockets; SOCK_NONBLOCK in norman_socket's type, or MSG_DONTWAIT on one
 * call, makes a call that would wait fail with EAGAIN instead. Calls are thread-safe.
 *
 * After fork(), only the parent may make norman_* calls: the library runs managed code (Native AOT), whose runtime does
 * not survive fork in the child (it hangs at its first garbage collection). A child that execs is fine.
 *
 * Link with -lnorman (libnorman.so, built by `dotnet publish src/Norman.Native -r linux-x64`).
 */
#ifndef NORMAN_H
#define NORMAN_H

#include <sys/types.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* AF_INET or AF_INET6; SOCK_DGRAM (UDP) or SOCK_STREAM (TCP), optionally | SOCK_NONBLOCK; protocol 0 or the
 * matching IPPROTO_*. An AF_INET6 socket bound to :: also serves IPv4 (v4-mapped), as Linux's default. */
int norman_socket(int domain, int type, int protocol);

int norman_bind(int socket, const struct sockaddr *address, socklen_t address_length);
int norman_listen(int socket, int backlog);
int norman_accept(int socket, struct sockaddr *address, socklen_t *address_length);
/* fork: this library's runtime does not survive in a forked child, but a second copy of it does (load it there with
 * dlmopen(LM_ID_NEWLM, ...)). A child that inherited a listening TCP socket calls norman_inherit_listener through its
 * own copy with a descriptor that proves it holds the listener: the doorbell the parent's norman_listener_doorbell
 * gave, or the listener's readiness descriptor (norman_readiness_fd, or any dup of it; the daemon is told of it at
 * listen). It gets a listener of its own on the same port, which takes the new connections (other children that do
 * the same share them) and those the inherited listener had made and not accepted; the inherited one takes none from
 * then on. */
int norman_listener_doorbell(int socket);
/* A copy loaded by dlmopen has a libc of its own, whose errno the program does not read: pass it the program's
 * __errno_location, and failures set errno there too. */
void norman_use_errno(int *(*errno_location)(void));
int norman_inherit_listener(int domain, int inherited_doorbell, int nonblocking);
/* exec: a listening socket survives into the program the process execs if, before exec, it is kept (keep 1) and its
 * readiness descriptor goes along without close-on-exec; that program (loading this library afresh) joins it with
 * norman_inherit_listener and that descriptor as a forked child does, and gets the connections not yet accepted. The kept listener takes no new connections once joined and ends with
 * the process. keep 0 takes it back when the exec failed. */
int norman_keep_across_exec(int socket, int keep);
/* fork and a TCP connection (a forking server): the parent's close of a connection that children forked since it
 * opened may hold is norman_close_for_children, with pidfds of those children (taken and closed by the library); it
 * keeps the connection while one still has a descriptor for it, and returns 0 (the handle is closed), or -1 when it
 * cannot (not an accepted connection, the daemon refused): close it with norman_close then. A child takes it up through
 * its own copy with norman_claim_connection and its inherited descriptor as proof, once the parent has closed its copy
 * (it waits up to 2 s): a socket of its own carries the connection, as it was in the parent. */
int norman_close_for_children(int socket, int *children, int count);
int norman_claim_connection(int inherited);
/* UDP: fixes the peer (norman_send goes there, only its datagrams arrive). TCP: the three-way handshake; on a
 * non-blocking socket it fails with EINPROGRESS at once, the readiness descriptor is not writable until the handshake
 * ends (then writable, and readable too if it failed), and norman_socket_error says how it went (EALREADY for a
 * second connect meanwhile; sends and receives fail with EAGAIN until then). */
int norman_connect(int socket, const struct sockaddr *address, socklen_t address_length);

/* ioctl's FIONREAD: a TCP socket's bytes received and not yet read; a UDP socket's next datagram's length (0: none). */
int norman_readable_bytes(int socket);

/* getsockopt's SO_ERROR: the errno a non-blocking connect failed with (ECONNREFUSED, ETIMEDOUT...), taken: 0 after. */
int norman_socket_error(int socket);

/* flags: 0, MSG_DONTWAIT, MSG_PEEK (the bytes or datagram stay for the next call); on UDP also MSG_TRUNC (the
 * datagram's whole length is returned); other flags fail with EOPNOTSUPP. */
ssize_t norman_send(int socket, const void *buffer, size_t length, int flags);
ssize_t norman_sendto(int socket, const void *buffer, size_t length, int flags,
                      const struct sockaddr *destination, socklen_t destination_length);
ssize_t norman_recv(int socket, void *buffer, size_t length, int flags);
ssize_t norman_recvfrom(int socket, void *buffer, size_t length, int flags,
                        struct sockaddr *source, socklen_t *source_length);

/* TCP: SHUT_WR sends FIN after what was written; SHUT_RD and SHUT_RDWR as Linux. */
int norman_shutdown(int socket, int how);
int norman_getsockname(int socket, struct sockaddr *address, socklen_t *address_length);
int norman_getpeername(int socket, struct sockaddr *address, socklen_t *address_length);
int norman_close(int socket);

/* SO_REUSEADDR (a UDP socket may share its port with another that set it, when one is connected or their addresses
 * differ) and IPV6_V6ONLY (an IPv6 socket on :: leaves IPv4 to another socket on its port), before bind. Any other
 * option is accepted and has no effect. */
int norman_setsockopt(int socket, int level, int name, const void *value, socklen_t length);

/* A kernel descriptor that is readable exactly while the socket is (data, a connection to accept, the peer's FIN, an
 * error) and writable exactly while a send would not wait (not while a non-blocking connect is under way, nor after a
 * send failed with EAGAIN until room comes), for poll, select and epoll, level- or edge-triggered; owned by the socket
 * (do not close it: dup it to keep one).
 * Asking for it costs a wake-up from the daemon each time a datagram finds the socket idle; sockets nobody polls
 * should not ask. */
int norman_readiness_fd(int socket);

/* A bound UDP socket's descriptor the daemon signals when a datagram arrives at an idle socket or a full TX pipe has
 * room (-1 otherwise; owned by the socket, never read or written by the caller). A thread that waits for the socket
 * polls it beside the readiness descriptor, which saves the hand-off through the library's watcher thread. */
int norman_wakeup_fd(int socket);

/* O_NONBLOCK after the fact (fcntl's F_SETFL for a handle): 1 on, 0 off. */
int norman_set_nonblocking(int socket, int nonblocking);

/* Waits at most timeout_ms until every TCP connection closed so far has delivered what was written to it (FIN
 * included); returns how many have not. The kernel keeps sending after close and after the process ends; Norman's TCP
 * stack lives in the process, so a program that exits right after closing calls this first (norman run does it at
 * exit). */
int norman_flush(int timeout_ms);

/* Why the last failing norman_* call on this thread failed, for people; never NULL. Valid until the next call. */
const char *norman_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
