namespace Norman.Native;

/// <summary>Linux's errno numbers for the names Norman's errors carry (NormanException.Code, the daemon's refusals).</summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EFAULT = 14, EBUSY = 16, EINVAL = 22, EMFILE = 24, EPIPE = 32, EPROTO = 71, EDESTADDRREQ = 89, EMSGSIZE = 90,
        EPROTOTYPE = 91, EPROTONOSUPPORT = 93, ESOCKTNOSUPPORT = 94, EOPNOTSUPP = 95, EAFNOSUPPORT = 97,
        EADDRINUSE = 98, EADDRNOTAVAIL = 99, ENETUNREACH = 101, ECONNABORTED = 103, ECONNRESET = 104, ENOBUFS = 105,
        EISCONN = 106, ENOTCONN = 107, ETIMEDOUT = 110, ECONNREFUSED = 111, EHOSTUNREACH = 113, EALREADY = 114, EINPROGRESS = 115;

    private static readonly Dictionary<string, int> ByName = new(StringComparer.Ordinal)
    {
        ["EPERM"] = EPERM, ["ENOENT"] = ENOENT, ["EINTR"] = EINTR, ["EIO"] = EIO, ["EBADF"] = EBADF, ["EAGAIN"] = EAGAIN,
        ["ENOMEM"] = ENOMEM, ["EACCES"] = EACCES, ["EFAULT"] = EFAULT, ["EBUSY"] = EBUSY, ["EINVAL"] = EINVAL,
        ["EMFILE"] = EMFILE, ["EPIPE"] = EPIPE, ["EPROTO"] = EPROTO, ["EDESTADDRREQ"] = EDESTADDRREQ,
        ["EMSGSIZE"] = EMSGSIZE, ["EPROTOTYPE"] = EPROTOTYPE, ["EPROTONOSUPPORT"] = EPROTONOSUPPORT,
        ["ESOCKTNOSUPPORT"] = ESOCKTNOSUPPORT, ["EOPNOTSUPP"] = EOPNOTSUPP, ["EAFNOSUPPORT"] = EAFNOSUPPORT,
        ["EADDRINUSE"] = EADDRINUSE, ["EADDRNOTAVAIL"] = EADDRNOTAVAIL, ["ENETUNREACH"] = ENETUNREACH,
        ["ECONNABORTED"] = ECONNABORTED, ["ECONNRESET"] = ECONNRESET, ["ENOBUFS"] = ENOBUFS, ["EISCONN"] = EISCONN,
        ["ENOTCONN"] = ENOTCONN, ["ETIMEDOUT"] = ETIMEDOUT, ["ECONNREFUSED"] = ECONNREFUSED, ["EHOSTUNREACH"] = EHOSTUNREACH,
        ["EALREADY"] = EALREADY, ["EINPROGRESS"] = EINPROGRESS,
    };

    /// <summary>The number for an errno name; EIO for a name this table does not know (a daemon of a later release).</summary>
    public static int Of(string name) => ByName.GetValueOrDefault(name, EIO);
}
