using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Norman.Bench;

/// <summary>
/// The Linux kernel's UDP path at its best from user space: sendmmsg and recvmmsg in batches of 64, the
/// baseline Norman is measured against. Each runs for a fixed time in its own process (inside a namespace).
/// </summary>
public static unsafe partial class KernelUdp
{
    private const int Batch = 64;
    private const int MmsgHdrSize = 64;

    /// <summary>Receives on the port until <paramref name="seconds"/> pass; prints "ready" once bound, then "received N".</summary>
    public static long Receive(int port, double seconds)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveBufferSize = 8 << 20;
        socket.ReceiveTimeout = 100;
        socket.Bind(new IPEndPoint(IPAddress.Any, port));
        Console.WriteLine("ready");
        Console.Out.Flush();
        var buffers = (byte*)NativeMemory.Alloc(Batch * 2048);
        Vectors(buffers, 2048, out var messages, out var iovecs);
        long received = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            int count = RecvMmsg((int)socket.Handle, messages, Batch, 0, null);
            if (count > 0)
            {
                received += count;
            }
        }
        Console.WriteLine($"received {received}");
        NativeMemory.Free(buffers);
        NativeMemory.Free(messages);
        NativeMemory.Free(iovecs);
        return received;
    }

    /// <summary>Answers each datagram on the port with the same bytes until <paramref name="seconds"/> pass; prints "ready" once bound.</summary>
    public static void Echo(int port, double seconds)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = 100;
        socket.Bind(new IPEndPoint(IPAddress.Any, port));
        Console.WriteLine("ready");
        Console.Out.Flush();
        var buffer = new byte[2048];
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            try
            {
                int length = socket.ReceiveFrom(buffer, ref from);
                socket.SendTo(buffer.AsSpan(0, length), from);
            }
            catch (SocketException error) when (error.SocketErrorCode == SocketError.TimedOut || error.SocketErrorCode == SocketError.WouldBlock)
            {
            }
        }
    }

    /// <summary>
    /// Sends <paramref name="count"/> requests one at a time, each after the previous answer, and prints the round
    /// trips' "p50 p99 p99.9" in microseconds: blocking sockets, as a kernel application waits.
    /// </summary>
    public static void Ping(IPEndPoint destination, int payload, int count)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.ReceiveTimeout = 1000;
        socket.Connect(destination);
        var request = new byte[payload];
        var answer = new byte[2048];
        var times = new List<double>(count);
        int warmUp = count / 10;
        for (int i = 0; i < count + warmUp; i++)
        {
            long start = Stopwatch.GetTimestamp();
            socket.Send(request);
            try
            {
                socket.Receive(answer);
            }
            catch (SocketException)
            {
                continue; // lost: counted by its absence
            }
            if (i >= warmUp)
            {
                times.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
            }
        }
        Console.WriteLine(new RoundTrips([.. times]).ToLine());
    }

    /// <summary>Sends datagrams of <paramref name="payload"/> bytes to the destination for the given time; prints "sent N".</summary>
    public static long Send(IPEndPoint destination, int payload, double seconds)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        socket.SendBufferSize = 8 << 20;
        socket.Connect(destination);
        var buffers = (byte*)NativeMemory.AllocZeroed((nuint)(Batch * Math.Max(payload, 1)));
        Vectors(buffers, payload, out var messages, out var iovecs);
        long sent = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < seconds)
        {
            int count = SendMmsg((int)socket.Handle, messages, Batch, 0);
            if (count > 0)
            {
                sent += count;
            }
        }
        Console.WriteLine($"sent {sent}");
        NativeMemory.Free(buffers);
        NativeMemory.Free(messages);
        NativeMemory.Free(iovecs);
        return sent;
    }

    private static void Vectors(byte* buffers, int size, out byte* messages, out byte* iovecs)
    {
        messages = (byte*)NativeMemory.AllocZeroed((nuint)(Batch * MmsgHdrSize));
        iovecs = (byte*)NativeMemory.AllocZeroed((nuint)(Batch * 16));
        for (int i = 0; i < Batch; i++)
        {
            *(byte**)(iovecs + i * 16) = buffers + i * size;
            *(nuint*)(iovecs + i * 16 + 8) = (nuint)size;
            *(byte**)(messages + i * MmsgHdrSize + 16) = iovecs + i * 16;
            *(nuint*)(messages + i * MmsgHdrSize + 24) = 1;
        }
    }

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    private static partial int SendMmsg(int fd, void* messages, uint count, int flags);

    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    private static partial int RecvMmsg(int fd, void* messages, uint count, int flags, void* timeout);
}
