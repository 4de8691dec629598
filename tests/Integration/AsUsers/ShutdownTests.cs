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

        var watch = Stopwatch.StartNew();
        using (var kill = Process.Start("kill", ["-TERM", service.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(Ct);
        }
        var code = await service.Exited(TimeSpan.FromSeconds(20));
        watch.Stop();

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"SIGTERM took {watch.Elapsed.TotalSeconds:F1} s with a stream open:\n{service.Output}");
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
}
