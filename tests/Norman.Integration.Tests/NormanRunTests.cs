namespace Norman.Integration.Tests;

/// <summary>
/// `norman run`: real programs from Debian's packages, unmodified, with their sockets on Norman over a TAP, and the
/// test namespace's kernel talking to them with the real socat and curl.
/// </summary>
public sealed class NormanRunTests : IAsyncLifetime
{
    private readonly TapHost _host = new("run", 4);

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Starts `norman run -- PROGRAM…` against the TAP host's daemon; the namespace and AppProcess stop it.</summary>
    private AppProcess NormanRun(params string[] program) =>
        AppProcess.Start("norman", _host.SocketPath, null, ["run", "--", .. program]);

    [NetnsFact]
    public void Socat_on_Norman_echoes_udp_from_the_kernel_and_norman_ss_names_it()
    {
        var peer = _host.Peer();
        using var server = NormanRun("socat", "-d", "-d", "UDP-LISTEN:7000", "EXEC:cat");
        Host.WaitForError(server.Process, "listening on", TimeSpan.FromSeconds(20));
        var (code, output, errors) = peer.Try("hello through norman run\n", "socat", "-t", "3", "-", $"UDP:{_host.NormanAddress}:7000");
        Assert.True(code == 0, errors);
        Assert.Equal("hello through norman run\n", output);
        Assert.Contains("socat", Host.Run(AppProcess.BesideTests("norman"), "ss", "-u", "-a", "-p", "--socket", _host.SocketPath));
    }

    [NetnsFact]
    public void Socat_on_Norman_serves_tcp_to_the_kernels_socat_byte_for_byte()
    {
        var peer = _host.Peer();
        using var server = NormanRun("socat", "-d", "-d", "TCP-LISTEN:7001,reuseaddr", "EXEC:cat");
        Host.WaitForError(server.Process, "listening on", TimeSpan.FromSeconds(20));
        string bulk = string.Concat(Enumerable.Range(0, 10_000).Select(i => $"{i:D6}\n"));
        var (code, output, errors) = peer.Try(bulk, "socat", "-t", "5", "-", $"TCP4:{_host.NormanAddress}:7001");
        Assert.True(code == 0, errors);
        Assert.Equal(bulk, output);
    }

    [NetnsFact]
    public void Pythons_http_server_on_Norman_serves_curl_a_file_byte_for_byte()
    {
        var peer = _host.Peer();
        string site = Path.Combine(_host.Directory, "site");
        Directory.CreateDirectory(site);
        var file = new byte[1_000_000];
        new Random(18).NextBytes(file);
        File.WriteAllBytes(Path.Combine(site, "file.bin"), file);
        using var server = NormanRun("python3", "-u", "-m", "http.server", "8000", "--directory", site);
        Assert.StartsWith("Serving HTTP on", server.ReadLine());
        string fetched = Path.Combine(_host.Directory, "fetched.bin");
        // The peer's namespace sees the host's files: curl writes where the test reads.
        peer.Run("curl", "-sS", "--max-time", "20", "-o", fetched, $"http://{_host.NormanAddress}:8000/file.bin");
        Assert.Equal(file, File.ReadAllBytes(fetched));
    }

    [Fact]
    public void Without_a_daemon_norman_run_refuses_and_says_how_to_start_one_or_fall_back()
    {
        string absent = Path.Combine(_host.Directory, "absent.sock");
        var (code, _, errors) = Host.Try(null, AppProcess.BesideTests("norman"), "run", "--socket", absent, "--", "true");
        Assert.Equal(69, code);
        Assert.Contains("not running", errors);
        Assert.Contains("--fallback kernel", errors);
        (code, var output, errors) = Host.Try(null, AppProcess.BesideTests("norman"), "run", "--socket", absent, "--fallback", "kernel", "--", "echo", "on the kernel");
        Assert.Equal(0, code);
        Assert.Equal("on the kernel\n", output);
        Assert.Contains("warning", errors);
    }

    [Fact]
    public async Task Norman_run_passes_on_the_programs_exit_code_and_a_missing_program_is_127()
    {
        await using var daemon = new DaemonFixture();
        var (code, _, _) = Host.Try(null, "env", $"NORMAN_SOCKET={daemon.SocketPath}", AppProcess.BesideTests("norman"), "run", "--", "sh", "-c", "exit 3");
        Assert.Equal(3, code);
        (code, _, var errors) = Host.Try(null, "env", $"NORMAN_SOCKET={daemon.SocketPath}", AppProcess.BesideTests("norman"), "run", "--", "no-such-program-here");
        Assert.Equal(127, code);
        Assert.Contains("cannot run no-such-program-here", errors);
    }

    public Task DisposeAsync() => _host.DisposeAsync().AsTask();
}
