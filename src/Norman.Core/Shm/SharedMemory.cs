namespace Norman.Core.Shm;

/// <summary>
/// A memfd mapped into this process. The daemon creates one per socket (sealed against resizing, so an application
/// cannot truncate it under the daemon and make its reads fault) and hands the fd to the owning application alone.
/// No name in /dev/shm: only a process given the fd can map it.
/// </summary>
public sealed unsafe class SharedMemory : IDisposable
{
    private int _fd;
    private byte* _address;

    private SharedMemory(int fd, byte* address, long length)
    {
        _fd = fd;
        _address = address;
        Length = length;
    }

    public byte* Address => _address != null ? _address : throw new ObjectDisposedException(nameof(SharedMemory));
    public long Length { get; }
    public int Fd => _fd;

    /// <summary>Creates, sizes, seals and maps a new memfd; its pages are zero and are only backed once touched.</summary>
    public static SharedMemory Create(string name, long length)
    {
        int fd = Libc.MemfdCreate(name, Libc.MFD_CLOEXEC | Libc.MFD_ALLOW_SEALING);
        if (fd < 0)
        {
            throw ShmError("memfd_create", Libc.LastError);
        }
        try
        {
            if (Libc.Ftruncate(fd, length) != 0)
            {
                throw ShmError("ftruncate", Libc.LastError);
            }
            if (Libc.Fcntl(fd, Libc.F_ADD_SEALS, Libc.F_SEAL_SHRINK | Libc.F_SEAL_GROW | Libc.F_SEAL_SEAL) != 0)
            {
                throw ShmError("fcntl(F_ADD_SEALS)", Libc.LastError);
            }
            return new SharedMemory(fd, MapFd(fd, length), length);
        }
        catch
        {
            Libc.Close(fd);
            throw;
        }
    }

    /// <summary>Maps an fd received from the daemon; takes ownership of it.</summary>
    public static SharedMemory Map(int fd, long length)
    {
        try
        {
            return new SharedMemory(fd, MapFd(fd, length), length);
        }
        catch
        {
            Libc.Close(fd);
            throw;
        }
    }

    private static byte* MapFd(int fd, long length)
    {
        void* address = Libc.Mmap(null, (nuint)length, Libc.PROT_READ | Libc.PROT_WRITE, Libc.MAP_SHARED, fd, 0);
        if (address == (void*)-1)
        {
            throw ShmError("mmap", Libc.LastError);
        }
        return (byte*)address;
    }

    private static IOException ShmError(string call, int errno) =>
        new($"{call} failed: {Libc.ErrorText(errno)} (errno {errno}). Check the memory limits (ulimit -l, cgroup memory.max).");

    /// <summary>
    /// Closes the descriptor and keeps the mapping, which needs none: what is left to pass has been passed, and a
    /// socket should not cost its process a descriptor for memory it only reads and writes.
    /// </summary>
    public void CloseDescriptor()
    {
        if (_fd >= 0)
        {
            Libc.Close(_fd);
            _fd = -1;
        }
    }

    /// <summary>
    /// Frees the pages from <paramref name="offset"/> (page-aligned) to the end, in every process that maps them: they
    /// read as zero again and cost nothing until touched (MADV_REMOVE punches them out of the memfd).
    /// </summary>
    public void Discard(long offset)
    {
        if (offset < Length && Libc.Madvise(Address + offset, (nuint)(Length - offset), Libc.MADV_REMOVE) != 0)
        {
            throw ShmError("madvise(MADV_REMOVE)", Libc.LastError);
        }
    }

    public void Dispose()
    {
        if (_address != null)
        {
            Libc.Munmap(_address, (nuint)Length);
            _address = null;
        }
        if (_fd >= 0)
        {
            Libc.Close(_fd);
            _fd = -1;
        }
    }
}
