using Norman.Core.Shm;

namespace Norman.Daemon.Dataplane.Ports;

/// <summary>
/// How the two daemons of a shared wire wake each other's sleeping dataplane: a FIFO beside the wire's file for each
/// side, which that side's dataplane sleeps on (its <see cref="IPort.WakeDescriptors"/>) and the other side writes a byte
/// into when the ring's needs-wakeup flag asks for it. A FIFO because the two daemons share nothing but a path (an
/// eventfd cannot be opened by name), and mode 0600 as the wire's file, so only the same user reaches it. Each side
/// holds its own FIFO open for writing too, so it never reads as hung up when the other daemon goes.
/// </summary>
public sealed class WireDoorbell : IDisposable
{
    private const uint OwnerOnly = 0b110_000_000;
    private const int EEXIST = 17;
    private const int ONofollow = 0x20000;
    private readonly string _ownPath;
    private readonly string _peerPath;
    private int _own;
    private int _peer = -1;

    public WireDoorbell(string wirePath, bool sideA)
    {
        _ownPath = wirePath + (sideA ? ".wake-a" : ".wake-b");
        _peerPath = wirePath + (sideA ? ".wake-b" : ".wake-a");
        if (Libc.Mkfifo(_ownPath, OwnerOnly) != 0 && Libc.LastError != EEXIST)
        {
            throw Failure("mkfifo", _ownPath);
        }
        if (!IsOwnPrivateFifo(_ownPath))
        {
            throw new IOException($"{_ownPath} is not a FIFO of this user's that only it can open: remove it, or pick another wire name.");
        }
        _own = Libc.Open(_ownPath, Libc.O_RDWR | Libc.O_NONBLOCK | Libc.O_CLOEXEC | ONofollow);
        if (_own < 0)
        {
            throw Failure("open", _ownPath);
        }
    }

    /// <summary>Readable when the other side rang.</summary>
    public int Fd => _own;

    /// <summary>Takes the rings waiting (before the dataplane looks at the ring one last time and sleeps).</summary>
    public unsafe void Drain()
    {
        byte* bytes = stackalloc byte[64];
        while (Libc.Read(_own, bytes, 64) == 64)
        {
        }
    }

    /// <summary>Wakes the other side's dataplane; nothing when no daemon holds that side (it looks at the ring when it comes).</summary>
    public unsafe void RingPeer()
    {
        if (_peer < 0)
        {
            if (!IsOwnPrivateFifo(_peerPath))
            {
                return; // not there yet (or not the other daemon's: never written to)
            }
            _peer = Libc.Open(_peerPath, Libc.O_WRONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC | ONofollow);
            if (_peer < 0)
            {
                return;
            }
        }
        byte one = 1;
        Libc.Write(_peer, &one, 1); // a full FIFO is rung already
    }

    /// <summary>
    /// A FIFO itself (not a link to something else), of this user, that nobody else may open: /dev/shm is everyone's,
    /// and a daemon run as root must never write its byte into what another user put at the path.
    /// </summary>
    private static unsafe bool IsOwnPrivateFifo(string path)
    {
        const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
        const uint TypeModeUid = 0x1 | 0x2 | 0x8;
        byte* statx = stackalloc byte[256];
        if (Libc.Statx(AtFdCwd, path, AtSymlinkNoFollow, TypeModeUid, statx) != 0)
        {
            return false;
        }
        uint uid = *(uint*)(statx + 20);
        ushort mode = *(ushort*)(statx + 28);
        return (mode & 0xF000) == 0x1000 && (mode & 0b000_111_111) == 0 && uid == Libc.Geteuid();
    }

    private static IOException Failure(string call, string path)
    {
        int errno = Libc.LastError;
        return new IOException($"{call} {path} failed: {Libc.ErrorText(errno)} (errno {errno}).");
    }

    public void Dispose()
    {
        if (_own >= 0)
        {
            Libc.Close(_own);
            _own = -1;
            File.Delete(_ownPath);
        }
        if (_peer >= 0)
        {
            Libc.Close(_peer);
            _peer = -1;
        }
    }
}
