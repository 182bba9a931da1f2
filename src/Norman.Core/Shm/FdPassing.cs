namespace Norman.Core.Shm;

/// <summary>
/// Sends and receives bytes with file descriptors attached (SCM_RIGHTS) on a connected Unix stream socket.
/// This is how the daemon hands an application its pipes' memfd and eventfd, and no one else.
/// </summary>
public static unsafe class FdPassing
{
    public const int MaxFds = 4;
    private const int CMsgHeaderSize = 16;

    /// <summary>
    /// One sendmsg that never blocks: sends what the socket's buffer takes of <paramref name="data"/>, with the fds on
    /// its first byte, and returns how many bytes went (the fds went with them); 0 when the buffer is full and nothing
    /// went. The caller sends the rest without fds (a peer that does not read must cost it time, never a thread).
    /// </summary>
    public static int TrySend(int socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> fds)
    {
        if (fds.Length > MaxFds)
        {
            throw new ArgumentException($"At most {MaxFds} descriptors go in one message.", nameof(fds));
        }
        int controlLength = fds.IsEmpty ? 0 : CMsgHeaderSize + Align8(fds.Length * sizeof(int));
        byte* control = stackalloc byte[CMsgHeaderSize + Align8(MaxFds * sizeof(int))];
        if (controlLength > 0)
        {
            var header = (Libc.CMsgHdr*)control;
            header->Length = (nuint)(CMsgHeaderSize + fds.Length * sizeof(int));
            header->Level = Libc.SOL_SOCKET;
            header->Type = Libc.SCM_RIGHTS;
            fds.CopyTo(new Span<int>(control + CMsgHeaderSize, fds.Length));
        }
        fixed (byte* bytes = data)
        {
            var iov = new Libc.IoVec { Base = bytes, Length = (nuint)data.Length };
            var message = new Libc.MsgHdr { Iov = &iov, IovLength = 1 };
            if (controlLength > 0)
            {
                message.Control = control;
                message.ControlLength = (nuint)controlLength;
            }
            while (true)
            {
                nint result = Libc.SendMsg(socket, &message, Libc.MSG_NOSIGNAL | Libc.MSG_DONTWAIT);
                if (result >= 0)
                {
                    return (int)result;
                }
                int errno = Libc.LastError;
                if (errno == Libc.EINTR)
                {
                    continue;
                }
                if (errno == Libc.EAGAIN)
                {
                    return 0;
                }
                throw new IOException($"sendmsg failed: {Libc.ErrorText(errno)} (errno {errno}).");
            }
        }
    }

    /// <summary>
    /// Receives up to <paramref name="buffer"/>.Length bytes; descriptors that arrive are added to <paramref name="fds"/>
    /// (close-on-exec). Returns the byte count, 0 at end of stream.
    /// </summary>
    public static int Receive(int socket, Span<byte> buffer, List<int> fds) => Receive(socket, buffer, fds, 0);

    /// <summary>
    /// <see cref="Receive(int, Span{byte}, List{int})"/> without waiting: -1 when nothing has arrived. Descriptors past
    /// <see cref="MaxFds"/> in one message are closed by the kernel, so a sender cannot make the receiver hold more.
    /// </summary>
    public static int TryReceive(int socket, Span<byte> buffer, List<int> fds) => Receive(socket, buffer, fds, Libc.MSG_DONTWAIT);

    private static int Receive(int socket, Span<byte> buffer, List<int> fds, int flags)
    {
        byte* control = stackalloc byte[CMsgHeaderSize + Align8(MaxFds * sizeof(int))];
        int controlCapacity = CMsgHeaderSize + Align8(MaxFds * sizeof(int));
        fixed (byte* bytes = buffer)
        {
            while (true)
            {
                var iov = new Libc.IoVec { Base = bytes, Length = (nuint)buffer.Length };
                var message = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlCapacity };
                nint result = Libc.RecvMsg(socket, &message, Libc.MSG_CMSG_CLOEXEC | flags);
                if (result < 0)
                {
                    int errno = Libc.LastError;
                    if (errno == Libc.EINTR)
                    {
                        continue;
                    }
                    if (errno == Libc.EAGAIN && (flags & Libc.MSG_DONTWAIT) != 0)
                    {
                        return -1;
                    }
                    throw new IOException($"recvmsg failed: {Libc.ErrorText(errno)} (errno {errno}).");
                }
                CollectFds(control, (int)message.ControlLength, fds);
                return (int)result;
            }
        }
    }

    private static void CollectFds(byte* control, int length, List<int> fds)
    {
        int offset = 0;
        while (offset + CMsgHeaderSize <= length)
        {
            var header = (Libc.CMsgHdr*)(control + offset);
            int cmsgLength = (int)header->Length;
            if (cmsgLength < CMsgHeaderSize || offset + cmsgLength > length)
            {
                return;
            }
            if (header->Level == Libc.SOL_SOCKET && header->Type == Libc.SCM_RIGHTS)
            {
                int count = (cmsgLength - CMsgHeaderSize) / sizeof(int);
                for (int i = 0; i < count; i++)
                {
                    fds.Add(((int*)(control + offset + CMsgHeaderSize))[i]);
                }
            }
            offset += Align8(cmsgLength);
        }
    }

    public static void CloseAll(IEnumerable<int> fds)
    {
        foreach (int fd in fds)
        {
            Libc.Close(fd);
        }
    }

    private static int Align8(int value) => (value + 7) & ~7;
}
