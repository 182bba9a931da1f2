using Norman.Client;

namespace Norman.Native;

/// <summary>
/// The program's open Norman sockets by handle: the lowest free positive number, as the kernel hands out descriptors.
/// Opening and closing take a lock; finding a socket for a data call reads an array without one.
/// </summary>
internal static class SocketHandles
{
    private static readonly object Gate = new();
    private static volatile NativeSocket?[] _sockets = new NativeSocket?[64];

    public static int Add(NativeSocket socket)
    {
        lock (Gate)
        {
            var sockets = _sockets;
            for (int handle = 1; handle < sockets.Length; handle++)
            {
                if (sockets[handle] is null)
                {
                    Volatile.Write(ref sockets[handle], socket);
                    return handle;
                }
            }
            var grown = new NativeSocket?[sockets.Length * 2];
            sockets.CopyTo(grown, 0);
            grown[sockets.Length] = socket;
            _sockets = grown;
            return sockets.Length;
        }
    }

    public static NativeSocket Get(int handle)
    {
        var sockets = _sockets;
        return (uint)handle < (uint)sockets.Length && Volatile.Read(ref sockets[handle]) is { } socket
            ? socket
            : throw new NormanException("EBADF", $"{handle} is not an open Norman socket (closed already, or a kernel descriptor given to a norman_* call).");
    }

    public static NativeSocket Remove(int handle)
    {
        lock (Gate)
        {
            var socket = Get(handle);
            _sockets[handle] = null;
            return socket;
        }
    }
}
