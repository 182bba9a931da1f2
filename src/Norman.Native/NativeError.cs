using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Norman.Client;

namespace Norman.Native;

/// <summary>
/// How a failure crosses into C: an errno for programs (set as libc's calls set it) and a sentence for people, kept
/// per thread for norman_last_error(). No exception may leave an exported call: it would end the program.
/// </summary>
internal static unsafe class NativeError
{
    [ThreadStatic] private static byte* _message;
    [ThreadStatic] private static int _capacity;
    /// <summary>What norman_last_error() returns: <see cref="_message"/>, or a constant sentence.</summary>
    [ThreadStatic] private static byte* _last;

    private static ReadOnlySpan<byte> WouldBlockSentence => "The call would wait (a non-blocking socket, or MSG_DONTWAIT).\0"u8;

    /// <summary>
    /// The program's own libc's errno, where this copy of the library runs beside it in a namespace of its own (a forked
    /// child's copy, loaded by dlmopen, has its own libc and so its own errno, which the program never reads); null: the
    /// program's libc is this library's.
    /// </summary>
    private static delegate* unmanaged<int*> _programErrno;

    /// <summary>Sets errno in the program's libc too (<see cref="_programErrno"/>): the interposer hands over its __errno_location.</summary>
    public static void UseProgramErrno(delegate* unmanaged<int*> location) => _programErrno = location;

    private static void SetErrno(int errno)
    {
        Marshal.SetLastSystemError(errno);
        if (_programErrno != null)
        {
            *_programErrno() = errno;
        }
    }

    /// <summary>Records <paramref name="error"/> as errno and message; returns -1, what every failing call returns.</summary>
    public static int Fail(Exception error)
    {
        var (errno, message) = Translate(error);
        SetErrno(errno);
        Remember(message);
        return -1;
    }

    /// <summary>
    /// EAGAIN for a call that would wait: no exception and no copy, as a program polling a non-blocking socket takes
    /// this path far more often than any other. Returns -1.
    /// </summary>
    public static int WouldBlock()
    {
        SetErrno(Errno.EAGAIN);
        // The sentence is a constant in the library's image: it never moves.
        _last = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(WouldBlockSentence));
        return -1;
    }

    /// <summary>The last failure's sentence on this thread, NUL-terminated (an empty string when none).</summary>
    public static byte* LastMessage()
    {
        if (_last is null)
        {
            Remember("");
        }
        return _last;
    }

    private static (int Errno, string Message) Translate(Exception error) => error switch
    {
        NormanException norman => (Errno.Of(norman.Code), norman.Message),
        ObjectDisposedException => (Errno.EBADF, "The socket was closed."),
        TimeoutException => (Errno.ETIMEDOUT, error.Message),
        IOException => (Errno.EIO, error.Message),
        _ => (Errno.EIO, $"libnorman failed inside ({error.GetType().Name}: {error.Message}); please report it with what the program was doing."),
    };

    private static void Remember(string message)
    {
        int needed = Encoding.UTF8.GetMaxByteCount(message.Length) + 1;
        if (needed > _capacity)
        {
            // One buffer per thread, grown as needed and kept: norman_last_error's pointer stays valid until the next call.
            _message = (byte*)NativeMemory.Realloc(_message, (nuint)needed);
            _capacity = needed;
        }
        int length = Encoding.UTF8.GetBytes(message, new Span<byte>(_message, _capacity - 1));
        _message[length] = 0;
        _last = _message;
    }
}
