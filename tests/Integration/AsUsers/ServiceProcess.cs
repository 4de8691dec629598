using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace PageAlloc.Tests.Integration.AsUsers;

/// <summary>
/// The service as a real process, started the way a user starts it (a command line, a working
/// directory, an environment without the test host's settings), on a port of 127.0.0.1 the
/// process picks itself. Disposing it kills the process and everything it started (dotnet run's child).
/// </summary>
internal sealed partial class ServiceProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource<Uri> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ServiceProcess(Process process) => _process = process;

    /// <summary>Everything the process wrote so far, stdout and stderr interleaved.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    /// <summary>Kills the process outright (SIGKILL): nothing it would do on the way out is done.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>The process's id (for kill(1)).</summary>
    public int ProcessId => _process.Id;

    /// <summary>Starts <paramref name="command"/> in <paramref name="workingDirectory"/>; the address comes from ASPNETCORE_URLS, as the README says.</summary>
    public static ServiceProcess Start(string command, string workingDirectory, string urls = "http://127.0.0.1:0", IReadOnlyDictionary<string, string>? environment = null)
    {
        var parts = command.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var start = new ProcessStartInfo(parts[0], parts[1..])
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // A user's shell: none of the settings this test process runs with (the test host's
        // environment name, its content root), and no build server left behind by dotnet run.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)
            || k.StartsWith("DOTNET_", StringComparison.Ordinal) && k != "DOTNET_ROOT").ToList())
        {
            start.Environment.Remove(key);
        }
        start.Environment["ASPNETCORE_URLS"] = urls;
        // The one departure from a user's shell: the silo's ports. A user runs one service and it takes
        // Orleans' defaults (11111, 30000); these tests run several at once.
        start.Environment["Orleans__SiloPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Orleans__GatewayPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[key] = value;
        }

        var service = new ServiceProcess(new Process { StartInfo = start, EnableRaisingEvents = true });
        service._process.OutputDataReceived += (_, line) => service.Record(line.Data);
        service._process.ErrorDataReceived += (_, line) => service.Record(line.Data);
        service._process.Exited += (_, _) => service._listening.TrySetException(
            new InvalidOperationException($"`{command}` exited with {service._process.ExitCode} before it listened:\n{service.Output}"));
        service._process.Start();
        service._process.BeginOutputReadLine();
        service._process.BeginErrorReadLine();
        return service;
    }

    /// <summary>The address from the host's "Now listening on:" line, once it has been written.</summary>
    public async Task<Uri> Listening(TimeSpan within)
    {
        try
        {
            return await _listening.Task.WaitAsync(within, TestContext.Current.CancellationToken);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"no \"Now listening on\" within {within}:\n{Output}");
        }
    }

    public async Task<int> Exited(TimeSpan within)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        wait.CancelAfter(within);
        await _process.WaitForExitAsync(wait.Token);
        return _process.ExitCode;
    }

    private void Record(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
        if (NowListening().Match(line) is { Success: true } m)
        {
            _listening.TrySetResult(new Uri(m.Groups["url"].Value));
        }
    }

    [GeneratedRegex(@"Now listening on: (?<url>http://\S+)")]
    private static partial Regex NowListening();

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
        }
        _process.Dispose();
    }
}
