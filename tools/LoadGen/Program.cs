using System.Runtime.InteropServices;
using System.Text.Json;
using PageAlloc.Client;

namespace PageAlloc.LoadGen;

/// <summary>The load generator: parse the command line, run the workload against a PageAlloc service, report.</summary>
public static class Program
{
    public static Task<int> Main(string[] args)
    {
        var parse = LoadCommand.Create(RunAsync).Parse(args);
        if (parse.Errors.Count > 0)
        {
            // Say what was wrong, then where the options are; exit 2 as a usage error does.
            foreach (var error in parse.Errors)
            {
                Console.Error.WriteLine(error.Message);
            }
            Console.Error.WriteLine("Run with --help for the options.");
            return Task.FromResult(2);
        }
        // Ctrl+C and SIGTERM are handled by the run itself (see Signals), not by System.CommandLine's
        // default, which would cancel the steps in flight and exit after 2 s with the pages still held.
        return parse.InvokeAsync(new() { ProcessTerminationTimeout = null });
    }

    public static async Task<int> RunAsync(LoadOptions options, CancellationToken _)
    {
        using var signals = new Signals();
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = options.Concurrency, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        using var resilience = new ResilienceHandler(ResiliencePipelines.Reads(options.AttemptTimeout), ResiliencePipelines.Writes(options.AttemptTimeout)) { InnerHandler = handler };
        using var http = new HttpClient(resilience) { BaseAddress = options.Url, Timeout = System.Threading.Timeout.InfiniteTimeSpan };
        if (options.ApiKey is { } apiKey)
        {
            http.DefaultRequestHeaders.Add("X-Api-Key", apiKey);
        }
        LoadReport report;
        try
        {
            report = await LoadRunner.RunAsync(new TimedCalls(new PageAllocClient(http)), options, options.Progress ? Console.Error : null, signals.Stop, signals.Abort);
        }
        catch (InvalidOperationException e)
        {
            await Console.Error.WriteLineAsync(e.Message);
            return 1;
        }
        Console.WriteLine(options.Json ? JsonSerializer.Serialize(report, JsonOptions) : report.ToText());
        return report.ExitCode;
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true };
}

/// <summary>
/// SIGINT (Ctrl+C) and SIGTERM (docker stop): the first stops the run cleanly (no new steps; steps in
/// flight finish; held pages are freed; the report is printed), the second aborts what is in flight.
/// </summary>
internal sealed class Signals : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _abort = new();
    private readonly PosixSignalRegistration[] _registrations;

    public Signals()
    {
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal), PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal)];
    }

    public CancellationToken Stop => _stop.Token;

    public CancellationToken Abort => _abort.Token;

    private void OnSignal(PosixSignalContext context)
    {
        context.Cancel = true; // the process is not terminated: the run winds down and exits with its report
        if (_stop.IsCancellationRequested)
        {
            Console.Error.WriteLine("\nsecond interrupt: aborting the calls in flight");
            _abort.Cancel();
        }
        else
        {
            Console.Error.WriteLine("\ninterrupted: finishing the steps in flight, freeing the pages held, then reporting (Ctrl+C again to abort)");
            _stop.Cancel();
        }
    }

    public void Dispose()
    {
        foreach (var registration in _registrations)
        {
            registration.Dispose();
        }
        _stop.Dispose();
        _abort.Dispose();
    }
}
