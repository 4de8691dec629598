using System.Net;
using PageAlloc.Client;
using PageAlloc.LoadGen;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Testing;
using Polly.Timeout;

namespace PageAlloc.Tests.Integration;

public class LoadGenTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>The load generator's client stack (generated client over the resilience handler) on a handler.</summary>
    private static TimedCalls CallsOver(HttpMessageHandler inner) =>
        new(new PageAllocClient(new HttpClient(new ResilienceHandler(ResiliencePipelines.Reads(TimeSpan.FromSeconds(5)), ResiliencePipelines.Writes(TimeSpan.FromSeconds(5)))
        {
            InnerHandler = inner,
        }) { BaseAddress = new Uri("http://localhost") }));

    /// <summary>The same stack on a test host, through the contract check every integration test's client has.</summary>
    private static TimedCalls CallsTo(PageAllocApp app) => CallsOver(new ContractCheckingHandler { InnerHandler = app.Server.CreateHandler() });

    [Theory]
    [InlineData("seed", "chunked")]
    [InlineData("seed", "per-page")]
    [InlineData("mixed", "chunked")]
    [InlineData("vmalloc", "upstream")]
    public async Task Workload_ShortRun_FreesEveryPage_AndMatchesTheServersStats(string workload, string strategy)
    {
        await using var app = new PageAllocApp();
        var options = new LoadOptions { Workload = workload, Strategy = Strategies.ByName[strategy], Concurrency = 4, Requests = 60, Pages = 24, LiveBlocks = 8 };

        var report = await LoadRunner.RunAsync(CallsTo(app), options, progress: null, Ct);

        Assert.True(report.EveryPageFreed, $"{report.PagesAllocated} allocated, {report.PagesFreed} freed");
        Assert.Empty(report.ErrorsByStatus);
        Assert.True(report.Requests >= 60);
        Assert.NotNull(report.Server);
        Assert.Equal(0, report.Server.AllocatedPagesChange);
        Assert.Equal(report.PagesAllocated, report.Server.PagesAllocated);
        Assert.Equal(report.PagesFreed, report.Server.PagesFreed);
        Assert.Contains(report.Operations, o => o.Operation == "alloc_pages" && o.P50Ms <= o.P90Ms && o.P90Ms <= o.P95Ms
            && o.P95Ms <= o.P99Ms && o.P99Ms <= o.P999Ms && o.P999Ms <= o.MaxMs);
        Assert.Equal(0, report.ExitCode);
    }

    [Fact]
    public void Reads_AreRetried_ThenBroken_ThenTimedOutPerAttempt()
    {
        var descriptor = ResiliencePipelines.Reads(TimeSpan.FromSeconds(2)).GetPipelineDescriptor();

        Assert.Collection(descriptor.Strategies,
            s => Assert.IsType<RetryStrategyOptions<HttpResponseMessage>>(s.Options),
            s => Assert.IsType<CircuitBreakerStrategyOptions<HttpResponseMessage>>(s.Options),
            s => Assert.Equal(TimeSpan.FromSeconds(2), Assert.IsType<TimeoutStrategyOptions>(s.Options).Timeout));
    }

    [Fact]
    public void Writes_HaveNoRetry()
    {
        var descriptor = ResiliencePipelines.Writes(TimeSpan.FromSeconds(2)).GetPipelineDescriptor();

        Assert.DoesNotContain(descriptor.Strategies, s => s.Options is RetryStrategyOptions<HttpResponseMessage>);
        Assert.Collection(descriptor.Strategies,
            s => Assert.IsType<CircuitBreakerStrategyOptions<HttpResponseMessage>>(s.Options),
            s => Assert.IsType<TimeoutStrategyOptions>(s.Options));
    }

    [Fact]
    public async Task AllocPages_ServerError_IsSentOnce_WhileStatsAreRetried()
    {
        var handler = new CountingHandler(HttpStatusCode.ServiceUnavailable);
        var calls = CallsOver(handler);

        var alloc = await calls.Run((c, t) => c.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 0 }, t), Ct);
        var stats = await calls.Run((c, t) => c.GetStatsAsync("default", t), Ct);

        Assert.Equal(503, alloc.Status);
        Assert.Equal(1, handler.Posts);
        Assert.Equal(503, stats.Status);
        Assert.Equal(4, handler.Gets); // the first try and 3 retries
    }

    [Fact]
    public async Task AllocPages_TransportFailure_IsNotRetried()
    {
        var handler = new CountingHandler(null);

        var alloc = await CallsOver(handler).Run((c, t) => c.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 0 }, t), Ct);

        Assert.Equal(0, alloc.Status);
        Assert.Equal(nameof(HttpRequestException), alloc.Failure);
        Assert.Equal(1, handler.Posts);
    }

    [Theory]
    [InlineData("10s", 10.0)]
    [InlineData("500ms", 0.5)]
    [InlineData("2m", 120.0)]
    [InlineData("3", 3.0)]
    public void Duration_ParsesUnits(string text, double seconds)
    {
        Assert.True(LoadOptions.TryParseDuration(text, out var duration));
        Assert.Equal(TimeSpan.FromSeconds(seconds), duration);
    }

    [Theory]
    [InlineData("--workload", "fragment", "fragment")]
    [InlineData("--concurrency", "0", "--concurrency")]
    [InlineData("--strategy", "PerPage", "PerPage")]
    [InlineData("--duration", "5x", "--duration")]
    [InlineData("--rate", "-1", "--rate")]
    [InlineData("--max-error-rate", "2", "--max-error-rate")]
    [InlineData("--bogus", "1", "--bogus")]
    public void CommandLine_BadValue_IsRefusedByName(string flag, string value, string named)
    {
        var parse = LoadCommand.Create((_, _) => Task.FromResult(0)).Parse([flag, value]);

        Assert.Contains(parse.Errors, e => e.Message.Contains(named, StringComparison.Ordinal));
    }

    [Fact]
    public async Task CommandLine_Help_ListsTheOptions_AndExitsZero()
    {
        var output = new StringWriter();
        var ran = false;

        var exit = await LoadCommand.Create((_, _) =>
            {
                ran = true;
                return Task.FromResult(0);
            }).Parse(["--help"])
            .InvokeAsync(new() { Output = output }, Ct);

        Assert.Equal(0, exit);
        Assert.False(ran);
        foreach (var option in new[] { "--url", "--workload", "--rate", "--max-error-rate", "--p99-ms", "per-page" })
        {
            Assert.Contains(option, output.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void CommandLine_Values_BecomeTheOptions()
    {
        var options = LoadCommand.OptionsFrom(LoadCommand.Create((_, _) => Task.FromResult(0))
            .Parse(["--strategy", "per-page", "--duration", "500ms", "--rate", "25", "--p99-ms", "7.5", "--zone", "DMA32"]));

        Assert.Equal(FreeStrategy.PerPage, options.Strategy);
        Assert.Equal(TimeSpan.FromMilliseconds(500), options.Duration);
        Assert.Equal(25, options.Rate);
        Assert.Equal(7.5, options.P99Ms);
        Assert.Equal("DMA32", options.Zone);
    }

    [Fact]
    public async Task ErrorRateAboveTheThreshold_FailsTheRun_WithExitCode4()
    {
        await using var app = new PageAllocApp();
        // The workers load a zone that does not exist: every call is a 404.
        var options = new LoadOptions { Workload = "seed", Zone = "Nowhere", Concurrency = 2, Requests = 20, MaxErrorRate = 0.05 };

        var report = await LoadRunner.RunAsync(CallsTo(app), options, progress: null, Ct);

        Assert.True(report.ErrorsByStatus["alloc_pages 404"] > 0, report.ToText());
        Assert.False(report.Thresholds.Single(t => t.Name == "max-error-rate").Passed, report.ToText());
        Assert.True(report.EveryPageFreed);
        Assert.Equal(4, report.ExitCode);
        Assert.Contains("threshold max-error-rate <= 0.05: CROSSED", report.ToText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task P99AboveTheThreshold_FailsTheRun()
    {
        await using var app = new PageAllocApp();
        var options = new LoadOptions { Workload = "seed", Concurrency = 2, Requests = 30, P99Ms = 0.000001 };

        var report = await LoadRunner.RunAsync(CallsTo(app), options, progress: null, Ct);

        Assert.False(report.Thresholds.Single(t => t.Name == "p99-ms").Passed);
        Assert.Equal(4, report.ExitCode);
    }

    /// <summary>The verdict names the operation whose p99 crossed the threshold, its p99 and the threshold.</summary>
    [Fact]
    public async Task P99AboveTheThreshold_NamesTheOperation_ItsP99_AndTheThreshold()
    {
        await using var app = new PageAllocApp();
        var options = new LoadOptions { Workload = "seed", Concurrency = 2, Requests = 30, P99Ms = 0.000001 };

        var report = await LoadRunner.RunAsync(CallsTo(app), options, progress: null, Ct);

        var worst = report.Operations.MaxBy(o => o.P99Ms)!;
        var line = report.ToText().Split('\n').Single(l => l.StartsWith("threshold p99-ms", StringComparison.Ordinal));
        Assert.StartsWith("threshold p99-ms <= 1E-06: CROSSED", line, StringComparison.Ordinal);
        Assert.Contains(FormattableString.Invariant($"{worst.Operation} p99 {worst.P99Ms:0.000} ms"), line, StringComparison.Ordinal);
        // Every operation is over a threshold this low: the others are named too.
        foreach (var other in report.Operations.Where(o => o != worst))
        {
            Assert.Contains(other.Operation, line, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task OpenModel_StartsStepsAtTheRate_AndFreesEveryPage()
    {
        await using var app = new PageAllocApp();
        var options = new LoadOptions { Workload = "seed", Concurrency = 4, Rate = 100, Duration = TimeSpan.FromSeconds(1) };

        var report = await LoadRunner.RunAsync(CallsTo(app), options, progress: null, Ct);

        // 100 steps/s for 1 s: about 100 steps (3 requests each), started or dropped, never many more.
        var steps = report.Operations.Single(o => o.Operation == "alloc_pages").Count + report.DroppedSteps;
        Assert.InRange(steps, 50, 110);
        Assert.True(report.EveryPageFreed);
        Assert.Equal(0, report.Server!.AllocatedPagesChange);
    }

    [Fact]
    public async Task StopToken_EndsTheRun_FinishesStepsInFlight_AndFreesEveryPage()
    {
        await using var app = new PageAllocApp();
        using var stop = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var options = new LoadOptions { Workload = "mixed", Concurrency = 4, LiveBlocks = 50, Duration = TimeSpan.FromMinutes(5) };

        var report = await LoadRunner.RunAsync(CallsTo(app), options, progress: null, stop.Token);

        Assert.True(report.Interrupted);
        Assert.True(report.Seconds < 60);
        Assert.True(report.EveryPageFreed, $"{report.PagesAllocated} allocated, {report.PagesFreed} freed");
        Assert.Equal(0, report.Server!.AllocatedPagesChange);
        Assert.Equal(130, report.ExitCode);
    }

    /// <summary>The real thing: the LoadGen process, a real server, and SIGINT as Ctrl+C sends it.</summary>
    [Fact]
    public async Task CtrlC_StopsTheProcessCleanly_PrintsTheReport_AndLeavesNoPageAllocated()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "sends SIGINT with kill(1)");
        await using var app = PageAllocApp.OnKestrel();
        var loadGen = Path.Combine(AppContext.BaseDirectory, "PageAlloc.LoadGen.dll");
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            ArgumentList = { loadGen, "--url", app.Address.ToString(), "--workload", "mixed", "--live", "100", "--duration", "2m", "--no-progress" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        var http = new HttpClient { BaseAddress = app.Address };
        // Wait until the run holds pages, so there is something to free.
        var api = new PageAllocClient(http);
        for (var i = 0; i < 200 && (await api.GetStatsAsync("default", Ct)).Totals.AllocatedPages == 0; i++)
        {
            await Task.Delay(50, Ct);
        }

        await Interrupt(process);

        var report = await stdout;
        Assert.True(process.ExitCode == 130, $"exit {process.ExitCode}\n{report}\n{await stderr}");
        Assert.Contains("(interrupted)", report, StringComparison.Ordinal);
        Assert.Contains("leak check: every page allocated was freed", report, StringComparison.Ordinal);
        Assert.Equal(0, (await api.GetStatsAsync("default", Ct)).Totals.AllocatedPages);
    }

    [Fact]
    public async Task Machines_SpreadsTheWorkersOverPrivateMachines_ReportsEach_AndDeletesThem()
    {
        await using var app = new PageAllocApp();
        var options = new LoadOptions { Workload = "mixed", Machines = 3, Concurrency = 6, Requests = 120, LiveBlocks = 8 };

        var report = await LoadRunner.RunAsync(CallsTo(app), options, progress: null, Ct);

        Assert.NotNull(report.Machines);
        Assert.Equal(3, report.Machines.Count);
        Assert.All(report.Machines, m =>
        {
            Assert.StartsWith("loadgen-", m.Name, StringComparison.Ordinal);
            Assert.True(m.Requests > 0);
            Assert.Equal(m.PagesAllocated, m.PagesFreed);
            Assert.Equal(m.PagesAllocated, m.Server!.PagesAllocated); // its own machine saw exactly its calls
            Assert.Equal(0, m.Server.AllocatedPagesChange);
        });
        Assert.Equal(report.Requests, report.Machines.Sum(m => m.Requests));
        Assert.Equal(report.Server!.PagesAllocated, report.Machines.Sum(m => m.Server!.PagesAllocated));
        var api = new PageAllocClient(app.CreateClient());
        Assert.Equal(["default"], (await api.ListMachinesAsync(Ct)).Machines.Select(m => m.Name));
        Assert.Equal(0, (await api.GetStatsAsync("default", Ct)).Totals.AllocatedPages);
    }

    /// <summary>Ctrl+C in a run over private machines: the process deletes every machine it made.</summary>
    [Fact]
    public async Task CtrlC_WithMachines_DeletesThemBeforeExiting()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux() || OperatingSystem.IsMacOS(), "sends SIGINT with kill(1)");
        await using var app = PageAllocApp.OnKestrel();
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            ArgumentList = { Path.Combine(AppContext.BaseDirectory, "PageAlloc.LoadGen.dll"), "--url", app.Address.ToString(), "--machines", "2", "--duration", "2m", "--no-progress" },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var api = new PageAllocClient(new HttpClient { BaseAddress = app.Address });
        for (var i = 0; i < 400 && (await api.ListMachinesAsync(Ct)).Machines.Count < 3; i++)
        {
            await Task.Delay(50, Ct);
        }
        Assert.Equal(3, (await api.ListMachinesAsync(Ct)).Machines.Count);
        await Task.Delay(300, Ct);

        await Interrupt(process);

        var report = await stdout;
        Assert.True(process.ExitCode == 130, $"exit {process.ExitCode}\n{report}");
        Assert.Contains("machine loadgen-", report, StringComparison.Ordinal);
        Assert.Equal(["default"], (await api.ListMachinesAsync(Ct)).Machines.Select(m => m.Name));
    }

    /// <summary>Ctrl+C as a terminal sends it (SIGINT with kill(1)), then waits up to a minute for the process to wind down.</summary>
    private static async Task Interrupt(System.Diagnostics.Process process)
    {
        using (var kill = System.Diagnostics.Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync(Ct);
        }
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>Answers every request with one status (or fails the connection when null) and counts them.</summary>
    private sealed class CountingHandler(HttpStatusCode? status) : HttpMessageHandler
    {
        private int _posts;
        private int _gets;

        public int Posts => _posts;

        public int Gets => _gets;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref request.Method == HttpMethod.Post ? ref _posts : ref _gets);
            return status is { } s
                ? Task.FromResult(new HttpResponseMessage(s))
                : Task.FromException<HttpResponseMessage>(new HttpRequestException("connection refused"));
        }
    }
}
