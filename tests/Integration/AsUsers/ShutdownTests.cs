using System.Diagnostics;

namespace PageAlloc.Tests.Integration.AsUsers;

/// <summary>
/// SIGTERM, as docker stop sends it, with an event stream open (curl -N): the process exits within
/// seconds, well inside docker's 10 s grace, rather than waiting out the host's 30 s shutdown timeout.
/// </summary>
[Collection(nameof(AsUsersRunItTests))]
public class ShutdownTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Sigterm_WithAnEventStreamOpen_ExitsWithinSeconds()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "sends SIGTERM with kill(1)");
        // The service as this test run built it (Debug or Release, as the tests were built).
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name; // bin/{configuration}/net10.0
        var dll = Repository.File($"src/Api/bin/{configuration}/net10.0/PageAlloc.Api.dll");
        Assert.True(File.Exists(dll), $"{dll} is not built");
        await using var service = ServiceProcess.Start($"dotnet {dll}", Repository.Root);
        var address = await service.Listening(TimeSpan.FromMinutes(1));
        using var http = new HttpClient { BaseAddress = address, Timeout = Timeout.InfiniteTimeSpan };
        using var stream = await http.GetAsync("/events", HttpCompletionOption.ResponseHeadersRead, Ct);
        Assert.True(stream.IsSuccessStatusCode, service.Output);
        var body = await stream.Content.ReadAsStreamAsync(Ct);

        var (elapsed, code) = await Sigterm(service);

        Assert.True(elapsed < TimeSpan.FromSeconds(5), $"SIGTERM took {elapsed.TotalSeconds:F1} s with a stream open:\n{service.Output}");
        Assert.Equal(0, code);
        // The stream ended (its end, or the connection closed), it was not left hanging.
        using var rest = new StreamReader(body);
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        wait.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            await rest.ReadToEndAsync(wait.Token);
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            // the connection closed under the reader: ended as well
        }
    }

    [Fact]
    public async Task Sigterm_DuringAReplay_StopsIt_AndExitsWithinSeconds()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "sends SIGTERM with kill(1)");
        var configuration = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent!.Name;
        var dll = Repository.File($"src/Api/bin/{configuration}/net10.0/PageAlloc.Api.dll");
        await using var service = ServiceProcess.Start($"dotnet {dll}", Repository.Root);
        var address = await service.Listening(TimeSpan.FromMinutes(1));

        // A trace that never ends (a chunk with an empty line every 10 ms, on a raw socket so that
        // the answer can be read while the upload goes on): the replay runs until its 60 s timeout,
        // or until the service stops.
        using var socket = new System.Net.Sockets.TcpClient();
        await socket.ConnectAsync(address.Host, address.Port, Ct);
        var stream = socket.GetStream();
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"POST /replay HTTP/1.1\r\nHost: {address.Authority}\r\n"
            + "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"), Ct);
        using var stopUpload = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var upload = Task.Run(async () =>
        {
            var chunk = "1\r\n\n\r\n"u8.ToArray();
            try
            {
                while (true)
                {
                    await stream.WriteAsync(chunk, stopUpload.Token);
                    await Task.Delay(10, stopUpload.Token);
                }
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // the server went away, or the test is done
            }
        }, Ct);
        var answer = new MemoryStream();
        var reading = stream.CopyToAsync(answer, Ct);
        await Task.Delay(1500, Ct);
        Assert.Equal(0, answer.Length); // still replaying

        var (elapsed, code) = await Sigterm(service);
        Assert.True(elapsed < TimeSpan.FromSeconds(5), $"SIGTERM took {elapsed.TotalSeconds:F1} s with a replay running:\n{service.Output}");
        Assert.Equal(0, code);

        // Its client was told why before the connection closed.
        try
        {
            await reading.WaitAsync(TimeSpan.FromSeconds(5), Ct);
        }
        catch (IOException)
        {
            // reset after the answer: what was read stays
        }
        await stopUpload.CancelAsync();
        await upload;
        var text = System.Text.Encoding.UTF8.GetString(answer.ToArray());
        Assert.StartsWith("HTTP/1.1 503", text, StringComparison.Ordinal);
        Assert.Contains("\"kind\":\"stopping\"", text, StringComparison.Ordinal);
    }

    /// <summary>Sends SIGTERM, as docker stop does, and waits for the process to exit: how long it took, and its exit code.</summary>
    private static async Task<(TimeSpan Elapsed, int Code)> Sigterm(ServiceProcess service)
    {
        var watch = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-TERM", service.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(Ct);
        }
        var code = await service.Exited(TimeSpan.FromSeconds(40));
        return (watch.Elapsed, code);
    }
}
