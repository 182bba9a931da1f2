using Microsoft.Win32.SafeHandles;

namespace Norman.Cli;

/// <summary>
/// Standard output as a stream whose writes fail when nobody reads any more (EPIPE): .NET's own console stream ignores
/// a broken pipe and goes on writing into nothing, so `norman capture | head -2` would never end. The runtime ignores
/// SIGPIPE, so the write returns the error and this stream throws an IOException, on which a command stops as tcpdump does.
/// </summary>
public static class StandardOutput
{
    private static volatile bool s_broken;

    /// <summary>Whether a write to standard output has failed (its reader went away).</summary>
    public static bool IsBroken => s_broken;

    public static Stream OpenStream() => new BreakAwareStream(new FileStream(new SafeFileHandle(1, ownsHandle: false), FileAccess.Write, bufferSize: 0));

    /// <summary>A text writer over <see cref="OpenStream"/>; the caller flushes at its own pace.</summary>
    public static StreamWriter OpenWriter() => new(OpenStream(), new System.Text.UTF8Encoding(false), 1 << 16);

    /// <summary>Remembers a failed write, so that callers can tell a closed pipe from another I/O error.</summary>
    private sealed class BreakAwareStream(Stream inner) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            try
            {
                inner.Write(buffer);
            }
            catch (IOException)
            {
                s_broken = true;
                throw;
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }
    }
}
