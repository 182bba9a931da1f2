using Norman.Core.Capture;

namespace Norman.Cli.Capture;

/// <summary>Where `norman capture` puts packets: a pcap or pcapng file (or standard output), or text lines.</summary>
public interface ICaptureWriter
{
    void Write(in CaptureRecord.Packet packet);
    void Finish();
}
