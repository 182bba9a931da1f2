using System.IO.Pipelines;

namespace Norman.Client;

/// <summary>
/// A Norman TCP connection as a pair of pipes (System.IO.Pipelines), as Kestrel and other pipe-based servers take a
/// connection: reading the input returns what arrived, completed at the peer's FIN; completing the output sends FIN
/// after what was written (shutdown(SHUT_WR)), as Kestrel's own socket transport does.
/// </summary>
internal sealed class NormanTcpPipe(NormanTcpStream stream) : IDuplexPipe
{
    public PipeReader Input { get; } = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
    public PipeWriter Output { get; } = new ShutdownOnComplete(PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true)), stream);

    /// <summary>The stream's pipe writer, which would leave the connection open when completed: it half-closes it.</summary>
    private sealed class ShutdownOnComplete(PipeWriter inner, NormanTcpStream stream) : PipeWriter
    {
        public override void Advance(int bytes) => inner.Advance(bytes);
        public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);
        public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);
        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);
        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => CompleteAsync(exception).AsTask().GetAwaiter().GetResult();

        public override async ValueTask CompleteAsync(Exception? exception = null)
        {
            await inner.CompleteAsync(exception).ConfigureAwait(false); // writes out what is buffered first
            if (exception is null)
            {
                stream.ShutdownSend();
            }
            else
            {
                stream.Abort();
            }
        }
    }
}
