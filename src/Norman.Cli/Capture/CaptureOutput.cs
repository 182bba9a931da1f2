namespace Norman.Cli.Capture;

/// <summary>
/// Where `norman capture` writes: tcpdump-style lines or pcap on standard output, or a file. Standard output is
/// written through <see cref="StandardOutput"/>, whose writes fail on a broken pipe, so that the capture ends when
/// its reader does (`norman capture | head -2`).
/// </summary>
public sealed class CaptureOutput : IDisposable
{
    private readonly Stream _stream;
    private readonly TextWriter? _lines;
    private readonly bool _pcapng;
    private readonly (bool LinkLayer, bool Ascii, bool Hex) _text;

    private CaptureOutput(Stream stream, bool isFile, bool lines, bool pcapng, (bool, bool, bool) text)
    {
        _stream = stream;
        IsFile = isFile;
        _lines = lines ? new StreamWriter(stream, new System.Text.UTF8Encoding(false), 1 << 16) : null;
        _pcapng = pcapng;
        _text = text;
    }

    /// <summary>A file given with -w, as opposed to standard output.</summary>
    public bool IsFile { get; }

    /// <summary>Whether a write failed because standard output's reader is gone (EPIPE).</summary>
    public bool IsBrokenPipe => !IsFile && StandardOutput.IsBroken;

    /// <summary>Opens the destination: null for lines on standard output, "-" for pcap there, else a file (created now, so a bad path fails first).</summary>
    public static CaptureOutput Open(string? file, bool pcapng, (bool LinkLayer, bool Ascii, bool Hex) text) => file switch
    {
        null => new CaptureOutput(StandardOutput.OpenStream(), isFile: false, lines: true, pcapng, text),
        "-" => new CaptureOutput(new BufferedStream(StandardOutput.OpenStream(), 1 << 16), isFile: false, lines: false, pcapng, text),
        _ => new CaptureOutput(new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.Read, 1 << 16), isFile: true, lines: false, pcapng, text),
    };

    public ICaptureWriter CreateWriter(int snapLength) =>
        _lines is not null ? new TcpdumpLines(_lines, _text.LinkLayer, _text.Ascii, _text.Hex)
        : _pcapng ? new PcapngWriter(_stream, snapLength) : new PcapWriter(_stream, snapLength);

    public void Flush()
    {
        _lines?.Flush();
        _stream.Flush();
    }

    public void Dispose()
    {
        try
        {
            if (_lines is not null)
            {
                _lines.Dispose();
            }
            else
            {
                _stream.Dispose();
            }
        }
        catch (IOException) when (IsBrokenPipe)
        {
            // what was buffered has nobody to read it
        }
    }
}
