using System.Net;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Model;

namespace PageAlloc.Tests.Integration;

/// <summary>Configuration checked at start, health, resets, and the switches a deployment sets.</summary>
public class StartupTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Theory]
    [InlineData("Machine:Nodes:0:Zones:2:Pages", "1.5", "'Machine:Nodes:0:Zones:2:Pages'")]
    [InlineData("Machine:Nodes:0:Zones:2:Pages", "abc", "'abc'")]
    [InlineData("Machine:Nodes:0:Zones:2:Pages", "2147483647", "more than the")]
    [InlineData("Machine:Nodes:0:Zones:2:Name", "Highmem", "DMA, DMA32, Normal or Movable")]
    [InlineData("Machine:MinFreeKbytes", "100000000", "every allocation would fail")]
    [InlineData("Machine:MinFreeKbytes", "4611686018427387904", "every allocation would fail")]
    [InlineData("Machine:Cpus", "0", "Cpus must be")]
    [InlineData("Machine:Nodes:0:Zones:0:StartPfn", "9223372036854775000", "StartPfn 9223372036854775000")]
    [InlineData("Machine:Nodes:0:Zones:2:StartPfn", "1099511000000", "past the largest pfn")]
    [InlineData("Machine:Cpuz", "4", "'Cpuz'")]
    [InlineData("Limits:PageCallBodyBytes", "1", "PageCallBodyBytes")]
    [InlineData("Limits:MaxConcurrentConnectionz", "1", "'MaxConcurrentConnectionz'")]
    public void ABadSetting_IsRefusedAtStart_Named(string key, string value, string named)
    {
        var failure = StartWith((key, value));

        var problems = StartupFailure.ConfigurationProblems(failure);
        Assert.True(problems is not null, failure.ToString());
        Assert.Contains(problems, p => p.Contains(named, StringComparison.Ordinal));
    }

    [Fact]
    public void AConnectionLimitTheOpenFileLimitCannotHold_StopsTheStart()
    {
        Assert.SkipWhen(LimitsOptions.OpenFileLimit() is null, "the open-file limit cannot be read on this platform");
        var tooMany = LimitsOptions.OpenFileLimit()!.Value - 10;
        Assert.SkipWhen(tooMany > 1_000_000, "the open-file limit is above what the setting accepts anyway");
        var failure = StartWith(("Limits:MaxConcurrentConnections", tooMany.ToString(System.Globalization.CultureInfo.InvariantCulture)));

        Assert.Contains(StartupFailure.ConfigurationProblems(failure)!, p => p.Contains("ulimit -n", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheServiceProcess_WithABadSetting_ExitsNonZero_BeforeItListens()
    {
        await using var service = AsUsers.ServiceProcess.Start(
            $"dotnet {Path.Combine(AppContext.BaseDirectory, "PageAlloc.Api.dll")} --Machine:MinFreeKbytes=100000000", AppContext.BaseDirectory);

        Assert.Equal(2, await service.Exited(TimeSpan.FromSeconds(30)));
        Assert.Contains("MinFreeKbytes 100000000", service.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", service.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheServiceProcess_WithAStartPfnPastTheLargestPfn_ExitsWith2_NamingIt_WithoutAStackTrace()
    {
        await using var service = AsUsers.ServiceProcess.Start(
            $"dotnet {Path.Combine(AppContext.BaseDirectory, "PageAlloc.Api.dll")} --Machine:Nodes:0:Zones:0:StartPfn=9223372036854775000", AppContext.BaseDirectory);

        Assert.Equal(2, await service.Exited(TimeSpan.FromSeconds(30)));
        Assert.Contains("StartPfn 9223372036854775000", service.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Now listening", service.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(service.Output.Split('\n'), l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal));
    }

    [Fact]
    public async Task TheServiceProcess_OnABusyPort_SaysSoInOneLine_AndExitsNonZero()
    {
        using var holder = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var busy = $"http://127.0.0.1:{((IPEndPoint)holder.LocalEndpoint).Port}";
        await using var service = AsUsers.ServiceProcess.Start($"dotnet {Path.Combine(AppContext.BaseDirectory, "PageAlloc.Api.dll")}",
            AppContext.BaseDirectory, urls: busy);

        Assert.Equal(1, await service.Exited(TimeSpan.FromSeconds(30)));
        var lines = service.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var failure = Assert.Single(lines, l => l.StartsWith("PageAlloc cannot start", StringComparison.Ordinal));
        Assert.Contains($"{busy}: address already in use", failure, StringComparison.Ordinal);
        Assert.Contains("--urls", failure, StringComparison.Ordinal);
        Assert.DoesNotContain(lines, l => l.TrimStart().StartsWith("at ", StringComparison.Ordinal)); // no stack trace
    }

    [Theory]
    [InlineData("/health/live")]
    [InlineData("/health/ready")]
    [InlineData("/healthz")]
    public async Task HealthEndpoints_AreHealthyOnceStarted(string path)
    {
        await using var app = new PageAllocApp();
        var response = await app.CreateClient().GetAsync(path, Ct);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("Healthy", await response.Content.ReadAsStringAsync(Ct));
    }

    [Fact]
    public async Task SwaggerSwitchedOff_ServesNeitherTheUiNorTheDocument()
    {
        await using var app = new PageAllocApp(("Swagger:Enabled", "false"));
        var client = app.CreateClient();
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/swagger/v1/swagger.json", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/swagger/index.html", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/zones", Ct)).StatusCode);
    }

    [Fact]
    public async Task RacingResets_BootOneMachineAtATime_AndAllAnswer200()
    {
        var booting = 0;
        var mostAtOnce = 0;
        var boots = 0;
        await using var app = new PageAllocApp();
        await using var watched = app.WithWebHostBuilder(b => b.ConfigureTestServices(services =>
            services.AddSingleton(provider => new MachineRegistry(provider.GetRequiredService<IOptions<LimitsOptions>>(),
                provider.GetRequiredService<IOptions<SecurityOptions>>(), provider.GetRequiredService<IOptions<PageAlloc.Api.Cluster.PageAllocClusterOptions>>(),
                provider.GetRequiredService<Orleans.Runtime.ILocalSiloDetails>(), NullLoggerFactory.Instance)
            {
                BootMachine = (config, tracepoints) =>
                {
                    var now = Interlocked.Increment(ref booting);
                    InterlockedMax(ref mostAtOnce, now);
                    Interlocked.Increment(ref boots);
                    try
                    {
                        return new Machine(config, tracepoints);
                    }
                    finally
                    {
                        Interlocked.Decrement(ref booting);
                    }
                },
            })));
        var client = watched.CreateClient();

        var resets = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => client.PostAsync("/reset", null, Ct)));

        Assert.All(resets, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.Equal(1, mostAtOnce);
        Assert.InRange(boots, 2, 17); // the start's boot, then at least one reset; waiting resets share a boot
    }

    /// <summary>
    /// Resolves every validated section as the host does at start (ValidateOnStart), with the
    /// service's appsettings.json and one setting changed; returns what stopped it.
    /// </summary>
    private static Exception StartWith((string Key, string Value) setting)
    {
        var configuration = new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"))
            .AddInMemoryCollection([new(setting.Key, setting.Value)])
            .Build();
        using var services = new ServiceCollection()
            .AddSingleton<IConfiguration>(configuration)
            .AddPageAllocConfiguration()
            .BuildServiceProvider();
        return Assert.ThrowsAny<Exception>(() =>
        {
            _ = services.GetRequiredService<IOptions<MachineConfig>>().Value;
            _ = services.GetRequiredService<IOptions<LimitsOptions>>().Value;
        });
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (var seen = Volatile.Read(ref target); value > seen; seen = Volatile.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, seen) == seen)
            {
                return;
            }
        }
    }
}
