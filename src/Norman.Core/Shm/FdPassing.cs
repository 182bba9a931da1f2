namespace Norman.Core.Shm;

/// <summary>
/// Sends and receives bytes with file descriptors attached (SCM_RIGHTS) on a connected Unix stream socket.
/// This is how the daemon hands an application its pipes' memfd and eventfd, and no one else.
/// </summary>
public static unsafe class FdPassing
{
    public const int MaxFds = 4;
    private const int CMsgHeaderSize = 16;

    /// <summary>Sends all of <paramref name="data"/>; the fds ride on the first byte. Blocks until sent.</summary>
    public static void Send(int socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> fds)
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
            int sent = 0;
            while (sent < data.Length)
            {
                var iov = new Libc.IoVec { Base = bytes + sent, Length = (nuint)(data.Length - sent) };
                var message = new Libc.MsgHdr { Iov = &iov, IovLength = 1 };
                if (sent == 0 && controlLength > 0)
                {
                    message.Control = control;
                    message.ControlLength = (nuint)controlLength;
                }
                nint result = Libc.SendMsg(socket, &message, Libc.MSG_NOSIGNAL);
                if (result < 0)
                {
                    int errno = Libc.LastError;
                    if (errno == Libc.EINTR)
                    {
                        continue;
                    }
                    if (errno == Libc.EAGAIN)
                    {
                        WaitWritable(socket);
                        continue;
                    }
                    throw new IOException($"sendmsg failed: {Libc.ErrorText(errno)} (errno {errno}).");
                }
                sent += (int)result;
            }
        }
    }

    /// <summary>
    /// Receives up to <paramref name="buffer"/>.Length bytes; descriptors that arrive are added to <paramref name="fds"/>
    /// (close-on-exec). Returns the byte count, 0 at end of stream.
    /// </summary>
    public static int Receive(int socket, Span<byte> buffer, List<int> fds)
    {
        byte* control = stackalloc byte[CMsgHeaderSize + Align8(MaxFds * sizeof(int))];
        int controlCapacity = CMsgHeaderSize + Align8(MaxFds * sizeof(int));
        fixed (byte* bytes = buffer)
        {
            while (true)
            {
                var iov = new Libc.IoVec { Base = bytes, Length = (nuint)buffer.Length };
                var message = new Libc.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlCapacity };
                nint result = Libc.RecvMsg(socket, &message, Libc.MSG_CMSG_CLOEXEC);
                if (result < 0)
                {
                    int errno = Libc.LastError;
                    if (errno == Libc.EINTR)
                    {
                        continue;
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

    private static void WaitWritable(int socket)
    {
        var poll = new Libc.PollFd { Fd = socket, Events = 0x004 /* POLLOUT */ };
        Libc.Poll(&poll, 1, 1000);
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
