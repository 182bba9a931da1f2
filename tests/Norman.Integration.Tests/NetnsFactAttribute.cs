namespace Norman.Integration.Tests;

/// <summary>
/// A fact that builds test hosts in network namespaces with TAP or veth: needs root, /dev/net/tun and iproute2.
/// Skipped, saying which is missing, elsewhere.
/// </summary>
public sealed class NetnsFactAttribute : FactAttribute
{
    public NetnsFactAttribute()
    {
        if (Environment.UserName != "root")
        {
            Skip = "needs root to create network namespaces and TAP devices";
        }
        else if (!File.Exists("/dev/net/tun"))
        {
            Skip = "needs /dev/net/tun (the tun module) for a TAP device";
        }
        else if (!File.Exists("/usr/sbin/ip") && !File.Exists("/sbin/ip") && !File.Exists("/usr/bin/ip") && !File.Exists("/bin/ip"))
        {
            Skip = "needs iproute2's ip";
        }
    }
}
