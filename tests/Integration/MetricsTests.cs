using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Reflection;
using System.Text.RegularExpressions;
using PageAlloc.Client;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// GET /metrics: the PageAlloc meter in the Prometheus text format, saying what /stats says. Alone:
/// OpenTelemetry subscribes to meters by name process-wide, so a host running in parallel in this
/// test process would add its own zones' measurements to the scrape (one host per process in production).
/// </summary>
[Collection(nameof(MetricsTests))]
[CollectionDefinition(nameof(MetricsTests), DisableParallelization = true)]
public partial class MetricsTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Every sample of the scrape: "name{labels}" → value, the scope and silo labels left out (every
    /// machine's sample names the silo that exports it, which each scrape checks).
    /// </summary>
    private static async Task<Dictionary<string, double>> Scrape(HttpClient client)
    {
        var text = await client.GetStringAsync("/metrics", Ct);
        var samples = new Dictionary<string, double>();
        foreach (Match m in Sample().Matches(text))
        {
            var all = m.Groups["labels"].Value.Split(',', StringSplitOptions.RemoveEmptyEntries);
            if (all.Any(l => l.StartsWith("machine=", StringComparison.Ordinal)))
            {
                Assert.Contains(all, l => l.StartsWith("silo=\"S127.0.0.1:", StringComparison.Ordinal));
            }
            var labels = string.Join(",", all
                .Where(l => !l.StartsWith("otel_scope", StringComparison.Ordinal) && !l.StartsWith("silo=", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
            samples[$"{m.Groups["name"].Value}{{{labels}}}"] = double.Parse(m.Groups["value"].Value, CultureInfo.InvariantCulture);
        }
        return samples;
    }

    [GeneratedRegex(@"^(?<name>pagealloc_[a-z_]+)\{(?<labels>[^}]*)\} (?<value>[0-9.e+-]+)", RegexOptions.Multiline)]
    private static partial Regex Sample();

    /// <summary>"# TYPE name type" of every metric family in a scrape.</summary>
    [GeneratedRegex(@"^# TYPE (?<name>\S+) (?<type>\S+)$", RegexOptions.Multiline)]
    private static partial Regex Family();

    private const string AdminKey = "an-administrator-key-0123";

    /// <summary>
    /// A host on Kestrel with API keys on (as docker-compose.yml runs it), so the scrape has every
    /// framework meter there is: Kestrel's connections and memory pool, HTTP server requests,
    /// routing, authentication and authorization, rate limiting, the exception handler, the runtime.
    /// </summary>
    private static PageAllocApp AppWithEveryMeter(params (string Key, string Value)[] settings) => PageAllocApp.OnKestrel(
        [("Security:ApiKeys:0:Name", "admin"), ("Security:ApiKeys:0:Key", AdminKey), ("Security:ApiKeys:0:Admin", "true"), .. settings]);

    /// <summary>
    /// GET /metrics after calls that make each framework instrument measure: pages allocated, an
    /// injected failure (507), a 404, a 400, a 401, /proc/buddyinfo, a second of /events.
    /// </summary>
    private static async Task<string> ScrapeAfterTraffic(PageAllocApp app)
    {
        using var anonymous = new HttpClient { BaseAddress = app.Address };
        using var http = new HttpClient { BaseAddress = app.Address };
        http.DefaultRequestHeaders.Add("X-Api-Key", AdminKey);
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(201, (int)(await http.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0, cpu = 0 }, Ct)).StatusCode);
        }
        Assert.Equal(404, (int)(await http.GetAsync("/no-such-path", Ct)).StatusCode);
        Assert.Equal(400, (int)(await http.PostAsync("/zones/Normal/alloc_pages", new StringContent("{not json", null, "application/json"), Ct)).StatusCode);
        Assert.Equal(401, (int)(await anonymous.GetAsync("/proc/buddyinfo", Ct)).StatusCode);
        Assert.Equal(200, (int)(await http.GetAsync("/proc/buddyinfo", Ct)).StatusCode);
        using (var events = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            events.CancelAfter(TimeSpan.FromSeconds(1));
            try
            {
                using var stream = await http.GetStreamAsync("/events", events.Token);
                await stream.CopyToAsync(Stream.Null, events.Token);
            }
            catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
            {
                // a second of the stream, as `curl -m1` would
            }
        }
        await http.PatchAsJsonAsync("/sys/kernel/debug/fail_page_alloc", new { probability = 100, times = 1, minOrder = 0, ignoreGfpWait = false }, Ct);
        Assert.Equal(507, (int)(await http.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0 }, Ct)).StatusCode);

        var text = await anonymous.GetStringAsync("/metrics", Ct);
        foreach (var family in new[] { "http_server_request_duration_seconds", "kestrel_active_connections", "aspnetcore_authorization_attempts_total",
            "dotnet_gc_heap_total_allocated_bytes_total", "pagealloc_free_pages" })
        {
            Assert.Contains($"# TYPE {family} ", text, StringComparison.Ordinal); // the scrape has the meters the checks are about
        }
        return text;
    }

    /// <summary>promtool from PATH, or null.</summary>
    private static string? Promtool() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "promtool")).FirstOrDefault(File.Exists);

    [Fact]
    public async Task TheMeter_SaysWhatStatsSays_AfterTheSeedFlow()
    {
        await using var app = new PageAllocApp();
        var api = app.Api();
        var block = await api.AllocPagesAsync("default", "Normal", new AllocPagesRequest { Order = 9, Cpu = 1 }, Ct);
        await api.SplitPageAsync("default", "Normal", new BlockRequest { Pfn = block.Pfn, Order = 9 }, Ct);
        await api.FreeContigRangeAsync("default", "Normal", null, new FreeContigRangeRequest { Pfn = block.Pfn, NrPages = 512, Strategy = FreeStrategy.PerPage, Cpu = 1 }, Ct);
        await api.AllocPagesAsync("default", "DMA", new AllocPagesRequest { Order = 10, Gfp = "GFP_DMA" }, Ct);
        var client = app.CreateClient();
        await client.PatchAsJsonAsync("/sys/kernel/debug/fail_page_alloc", new { probability = 100, times = 1, minOrder = 0, ignoreGfpWait = false }, Ct);
        Assert.Equal(507, (int)(await client.PostAsJsonAsync("/zones/Normal/alloc_pages", new { order = 0 }, Ct)).StatusCode);

        var stats = await api.GetStatsAsync("default", Ct);
        var metrics = await Scrape(app.CreateClient());

        foreach (var zone in stats.Zones)
        {
            var z = $"machine=\"default\",zone=\"{zone.Zone}\"";
            Assert.Equal(zone.Vmstat["pgalloc"], metrics[$"pagealloc_pages_allocated_total{{{z}}}"]);
            Assert.Equal(zone.Vmstat["pgfree"], metrics[$"pagealloc_pages_freed_total{{{z}}}"]);
            Assert.Equal(zone.Vmstat["alloc_fail"], metrics[$"pagealloc_allocation_failures_total{{{z}}}"]);
            Assert.Equal(zone.Vmstat["pcp_drain"], metrics[$"pagealloc_pcp_drains_total{{{z}}}"]);
            Assert.Equal(zone.Vmstat["pcp_refill"], metrics[$"pagealloc_pcp_refills_total{{{z}}}"]);
            Assert.Equal(zone.Vmstat["fallback_claim"], metrics[$"pagealloc_fallbacks_total{{kind=\"claim\",{z}}}"]);
            Assert.Equal(zone.FreePages, metrics[$"pagealloc_free_pages{{{z}}}"]);
            Assert.Equal(zone.PcpPages, Enumerable.Range(0, stats.Cpus).Sum(cpu => metrics[$"pagealloc_pcp_pages{{cpu=\"{cpu}\",{z}}}"]));
            for (var order = 0; order <= 10; order++)
            {
                var free = zone.Pagetypeinfo.Sum(t => t.Value[order]);
                Assert.Equal(free, metrics.Where(m => m.Key.StartsWith("pagealloc_free_blocks{", StringComparison.Ordinal)
                    && m.Key.Contains("machine=\"default\",", StringComparison.Ordinal) && m.Key.Contains($"order=\"{order}\",", StringComparison.Ordinal)
                    && m.Key.EndsWith($"zone=\"{zone.Zone}\"}}", StringComparison.Ordinal)).Sum(m => m.Value));
            }
            var pagesByOrder = Enumerable.Range(0, 11).Sum(o => metrics[$"pagealloc_allocations_total{{machine=\"default\",order=\"{o}\",zone=\"{zone.Zone}\"}}"] * (1L << o));
            Assert.Equal(zone.Vmstat["pgalloc"], pagesByOrder);
        }
        Assert.Equal(1, metrics["pagealloc_allocation_injected_failures_total{machine=\"default\"}"]); // apart from the zones' real failures
        Assert.Equal(1, metrics["pagealloc_allocations_total{machine=\"default\",order=\"9\",zone=\"Normal\"}"]);
        Assert.Equal(512, metrics["pagealloc_frees_total{machine=\"default\",order=\"0\",zone=\"Normal\"}"]);
        Assert.True(metrics["pagealloc_lock_acquisitions_total{lock=\"zone\",machine=\"default\",zone=\"Normal\"}"] > 0);
    }

    [Fact]
    public async Task Metrics_AreOpenWithoutAKey_AndIncludeTheFrameworksOwn()
    {
        await using var app = new PageAllocApp(
            ("Security:ApiKeys:0:Name", "admin"), ("Security:ApiKeys:0:Key", "an-administrator-key-0123"), ("Security:ApiKeys:0:Admin", "true"));
        var client = app.CreateClient();
        Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await client.GetAsync("/stats", Ct)).StatusCode);

        var text = await client.GetStringAsync("/metrics", Ct);

        Assert.Contains("pagealloc_free_pages{", text, StringComparison.Ordinal);
        Assert.Contains("dotnet_gc_", text, StringComparison.Ordinal); // runtime instrumentation
    }

    [Fact]
    public async Task TheScrape_PassesPromtoolsCheck_WithoutAFinding()
    {
        var promtool = Promtool();
        if (promtool is null)
        {
            // CI installs promtool (.ci/run), so there its absence is a failure, not a reason to skip.
            Assert.True(string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")), "CI is set and promtool is not on PATH (apt-get install prometheus)");
            Assert.Skip("promtool is not on PATH (apt-get install prometheus; .ci/run installs it)");
        }
        await using var app = AppWithEveryMeter();
        var text = await ScrapeAfterTraffic(app);

        var start = new ProcessStartInfo(promtool, ["check", "metrics"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        await process.StandardInput.WriteAsync(text);
        process.StandardInput.Close();
        await process.WaitForExitAsync(Ct);

        var findings = (await stdout + await stderr).Trim();
        Assert.True(process.ExitCode == 0 && findings.Length == 0, $"promtool check metrics exited {process.ExitCode}:\n{findings}");
    }

    [Fact]
    public async Task TheScrape_KeepsTheSuffixesForTheirTypes_AndNamesTheService()
    {
        await using var app = AppWithEveryMeter();
        var text = await ScrapeAfterTraffic(app);

        // Prometheus reserves _count, _sum and _bucket for histograms' and summaries' series, and
        // _total for counters (https://prometheus.io/docs/practices/naming/), as promtool does.
        var misnamed = Family().Matches(text).Select(m => (Name: m.Groups["name"].Value, Type: m.Groups["type"].Value))
            .Where(f => f.Type is not ("histogram" or "summary") && (f.Name.EndsWith("_count", StringComparison.Ordinal)
                || f.Name.EndsWith("_sum", StringComparison.Ordinal) || f.Name.EndsWith("_bucket", StringComparison.Ordinal)
                || (f.Type == "gauge" && f.Name.EndsWith("_total", StringComparison.Ordinal))))
            .Select(f => $"{f.Name} ({f.Type})").ToList();
        Assert.Empty(misnamed);

        var version = typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        var target = Assert.Single(text.Split('\n'), line => line.StartsWith("target_info{", StringComparison.Ordinal));
        Assert.Contains("service_name=\"PageAlloc\"", target, StringComparison.Ordinal);
        Assert.Contains($"service_version=\"{version}\"", target, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OtelServiceName_StillNamesTheService()
    {
        // A host setting: the SDK reads OTEL_SERVICE_NAME from the host's configuration, which has the
        // environment's variables, and a variable set here would reach every host of this test process.
        await using var app = new PageAllocApp(("OTEL_SERVICE_NAME", "pagealloc-canary"));

        var text = await app.CreateClient().GetStringAsync("/metrics", Ct);

        var target = Assert.Single(text.Split('\n'), line => line.StartsWith("target_info{", StringComparison.Ordinal));
        Assert.Contains("service_name=\"pagealloc-canary\"", target, StringComparison.Ordinal);
    }
}
