using System.Buffers.Binary;
using System.Text.Json;

namespace Norman.Core.Protocol;

/// <summary>
/// The control socket's framing: each message is a 4-byte little-endian length and that many bytes of UTF-8 JSON.
/// Operation names and error codes live here so that daemon, client and CLI spell them once.
/// </summary>
public static class ControlProtocol
{
    public const int Version = 1;

    /// <summary>
    /// Closed sockets' memory a connection may keep for its next binds (<see cref="ControlRequest.KeepMemory"/>): a bind
    /// that reuses one maps nothing and touches no new page, the dear part of opening a socket on a virtual machine.
    /// </summary>
    public const int MaxKeptMemory = 4;
    /// <summary>The largest message either side sends or accepts, the daemon's answers included.</summary>
    public const int MaxMessageBytes = 16 << 20;
    /// <summary>How much of a listing one answer carries; the rest comes on request (<see cref="ControlRequest.Cursor"/>).</summary>
    public const int MaxPageBytes = 4 << 20;
    public const string DefaultSocketPath = "/run/norman/norman.sock";
    public const string SocketPathVariable = "NORMAN_SOCKET";

    public static class Ops
    {
        public const string Hello = "hello";
        public const string Bind = "bind";
        /// <summary>
        /// A process joins a TCP listener it inherited (a forked worker): the listener's doorbell travels with the
        /// request as proof; the answer is a listener of the caller's own on the same port, in a group with it.
        /// </summary>
        public const string Inherit = "inherit";
        public const string Connect = "connect";
        public const string Close = "close";
        /// <summary>A TCP listener stops taking connections; those it has go on (in a reuseport group, new ones go to the others).</summary>
        public const string StopListening = "stop-listening";
        /// <summary>
        /// A process about to exec marks a TCP listener it passes to the program it becomes (<see cref="ControlRequest.Keep"/>):
        /// when its connection closes at exec, the listener stays while the process lives, for that program to join (inherit).
        /// </summary>
        public const string KeepAcrossExec = "keep-across-exec";
        /// <summary>
        /// A listener's application passes the descriptor its program holds for the listener (SCM_RIGHTS): a process
        /// that inherits that descriptor (fork, exec) may join the listener with it (inherit).
        /// </summary>
        public const string ListenerHolder = "listener-holder";
        /// <summary>
        /// A listener another process joined (<see cref="Pipes.PipeLayout.JoinedOffset"/>) hands over the connections it
        /// made and its application has not accepted (<see cref="ControlRequest.HandedOver"/>); the joiner's inherit gets them.
        /// </summary>
        public const string QueueHandOver = "queue-handover";
        /// <summary>
        /// A listener's application closed a connection its process had forked with (a child may hold it still): it
        /// names the connection (<see cref="ControlRequest.RemoteAddress"/>, <see cref="ControlRequest.RemotePort"/>) and
        /// passes the descriptor its program held it by (SCM_RIGHTS), and keeps it while those children live.
        /// </summary>
        public const string ConnectionHolder = "connection-holder";
        /// <summary>
        /// A forked child takes up a connection it inherited, the descriptor as proof (SCM_RIGHTS): the answer is a
        /// socket of its own on the listener's port with the connection (<see cref="ControlResponse.HandedOver"/>).
        /// </summary>
        public const string ClaimConnection = "claim-connection";
        /// <summary>A listener's stack answers the daemon's ask for one connection (<see cref="Pipes.PipeLayout.ConnectionWantedOffset"/>): written down, or none.</summary>
        public const string ConnectionHandOver = "connection-handover";
        public const string Sockets = "sockets";
        public const string Counters = "counters";
        public const string Stats = "stats";
        public const string FilterList = "filter-list";
        public const string FilterAdd = "filter-add";
        public const string FilterDelete = "filter-delete";
        public const string FilterFlush = "filter-flush";
        public const string FilterPolicy = "filter-policy";
        public const string FilterSave = "filter-save";
        public const string FilterRestore = "filter-restore";
        public const string FilterTrace = "filter-trace";
        public const string FilterTraceStart = "filter-trace-start";
        public const string CaptureStart = "capture-start";
        public const string CaptureStats = "capture-stats";
        public const string FilterTracePoll = "filter-trace-poll";
        public const string FilterTraceStop = "filter-trace-stop";
        public const string FilterSetAdd = "filter-set-add";
        public const string FilterSetDelete = "filter-set-delete";
        public const string FilterElementAdd = "filter-element-add";
        public const string FilterElementDelete = "filter-element-delete";
        public const string QosShow = "qos-show";
        public const string QosAdd = "qos-add";
        public const string QosChange = "qos-change";
        public const string QosDelete = "qos-delete";
        public const string QosMatchAdd = "qos-match-add";
        public const string QosMatchDelete = "qos-match-delete";
        public const string Conntrack = "conntrack";
    }

    public static class Errors
    {
        public const string AddressInUse = "EADDRINUSE";
        public const string PermissionDenied = "EACCES";
        public const string AddressNotAvailable = "EADDRNOTAVAIL";
        public const string InvalidArgument = "EINVAL";
        public const string NoSuchSocket = "EBADF";
        public const string NoPortsLeft = "EAGAIN";
        public const string TooManySockets = "EMFILE";
        public const string OutOfMemory = "ENOMEM";
        public const string Unsupported = "EPROTONOSUPPORT";
        public const string BadVersion = "EPROTO";
        public const string NotPermitted = "EPERM";
        public const string NotFound = "ENOENT";
        /// <summary>The address family is not carried (IPv6, for now).</summary>
        public const string AddressFamilyNotSupported = "EAFNOSUPPORT";
        /// <summary>The caller already has one of these under way (a filter expression compiling).</summary>
        public const string Busy = "EBUSY";
        /// <summary>A request or an answer over its size bound.</summary>
        public const string MessageTooLong = "EMSGSIZE";
        /// <summary>The daemon failed on a request it should have handled: a bug, logged with its details.</summary>
        public const string Internal = "EFAULT";
        /// <summary>The change is in force but the daemon could not save it (the policy file).</summary>
        public const string IoError = "EIO";
    }

    /// <summary>
    /// The control socket a client talks to: the explicit one, else $NORMAN_SOCKET, else the system daemon's
    /// (/run/norman/norman.sock), else, when there is none, this user's own daemon's (<see cref="UserSocketPath"/>).
    /// </summary>
    public static string ResolveSocketPath(string? explicitPath) =>
        !string.IsNullOrEmpty(explicitPath) ? explicitPath
        : Environment.GetEnvironmentVariable(SocketPathVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment
        : !File.Exists(DefaultSocketPath) && UserSocketPath() is { } user && File.Exists(user) ? user
        : DefaultSocketPath;

    /// <summary>
    /// The control socket a daemon listens on: the explicit one, else $NORMAN_SOCKET, else /run/norman/norman.sock
    /// for root and, for anyone else (who may not write /run), <see cref="UserSocketPath"/> when there is one.
    /// </summary>
    public static string ResolveListenPath(string? explicitPath) =>
        !string.IsNullOrEmpty(explicitPath) || Environment.GetEnvironmentVariable(SocketPathVariable) is { Length: > 0 } || Environment.IsPrivilegedProcess
            ? ResolveSocketPath(explicitPath)
            : UserSocketPath() ?? DefaultSocketPath;

    /// <summary>An ordinary user's daemon socket: under the per-user runtime directory, $XDG_RUNTIME_DIR/norman/norman.sock; null without one.</summary>
    public static string? UserSocketPath() =>
        Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } runtime && Path.IsPathRooted(runtime)
            ? Path.Combine(runtime, "norman", "norman.sock")
            : null;

    public static byte[] Encode(ControlRequest request) => Frame(JsonSerializer.SerializeToUtf8Bytes(request, ControlJson.Default.ControlRequest));

    public static byte[] Encode(ControlResponse response) => Frame(JsonSerializer.SerializeToUtf8Bytes(response, ControlJson.Default.ControlResponse));

    public static ControlRequest DecodeRequest(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, ControlJson.Default.ControlRequest) ?? throw new JsonException("empty request");

    public static ControlResponse DecodeResponse(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize(json, ControlJson.Default.ControlResponse) ?? throw new JsonException("empty response");

    /// <summary>Reads a frame's length prefix; throws on a length no honest peer sends.</summary>
    public static int ReadLength(ReadOnlySpan<byte> prefix)
    {
        int length = BinaryPrimitives.ReadInt32LittleEndian(prefix);
        if (length <= 0 || length > MaxMessageBytes)
        {
            throw new InvalidDataException($"control message of {length} bytes: not a Norman peer, or a corrupt stream");
        }
        return length;
    }

    private static byte[] Frame(byte[] json)
    {
        var frame = new byte[4 + json.Length];
        BinaryPrimitives.WriteInt32LittleEndian(frame, json.Length);
        json.CopyTo(frame, 4);
        return frame;
    }
}
