using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// A fresh PageAlloc host for one test (TodoApi style): no state leaks between tests. Settings
/// override the configuration ("Limits:MaxConcurrentConnections" = "8"); <see cref="OnKestrel"/>
/// serves it on a real socket of 127.0.0.1, for what only a real server does (connections, body
/// limits, the Server header).
/// </summary>
internal sealed class PageAllocApp(params (string Key, string Value)[] settings) : WebApplicationFactory<Program>
{
    /// <summary>The same host on Kestrel at a free port of 127.0.0.1, started.</summary>
    public static PageAllocApp OnKestrel(params (string Key, string Value)[] settings) => OnKestrel(null, settings);

    /// <summary>The same, with services of the test's own added (a logger provider).</summary>
    public static PageAllocApp OnKestrel(Action<IServiceCollection>? services, params (string Key, string Value)[] settings)
    {
        // Port 0 as the app's own URL, not UseKestrel(0): the factory rewrites the addresses after the
        // app has started binding, and loses that race now and then ("Addresses cannot be modified
        // after the server has started", dotnet/aspnetcore#67714).
        var app = new PageAllocApp([("urls", "http://127.0.0.1:0"), .. settings]) { _services = services };
        app.UseKestrel();
        app.StartServer();
        return app;
    }

    private Action<IServiceCollection>? _services;

    /// <summary>
    /// A client whose every answer is checked against the committed OpenAPI document
    /// (<see cref="ContractCheckingHandler"/>): an answer the document does not describe fails the test.
    /// </summary>
    public new HttpClient CreateClient() => CreateDefaultClient(new ContractCheckingHandler());

    /// <summary>The generated client (PageAlloc.Client) over <see cref="CreateClient()"/>: typed answers, refusals as exceptions.</summary>
    public PageAlloc.Client.PageAllocClient Api() => new(CreateClient());

    /// <summary>The address Kestrel listens on (<see cref="OnKestrel"/> only).</summary>
    public Uri Address => new(Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    // Every host this factory built, its own and those of WithWebHostBuilder (a derived factory
    // builds through this CreateHost), with the lifetime's tokens taken while the host was alive.
    private readonly List<(IHostApplicationLifetime Lifetime, CancellationToken Stopped)> _hosts = [];

    protected override IHost CreateHost(IHostBuilder builder)
    {
        var host = base.CreateHost(builder);
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        lock (_hosts)
        {
            _hosts.Add((lifetime, lifetime.ApplicationStopped));
        }
        return host;
    }

    /// <summary>
    /// Stops the application once, then disposes. Left to itself the host is stopped twice at once:
    /// by Program's own <c>app.Run()</c>, which stops the host when the application stops, and by the
    /// factory's dispose. Each stop calls every hosted service's StopAsync, and Orleans' silo answers
    /// a second stop while the first runs by polling its status once a second: about 1 s per host and
    /// 0.8 CPU-s, in two stops of three (measured). Stopping through the application and waiting for
    /// <c>ApplicationStopped</c> leaves the factory's stop nothing to wait for.
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        List<(IHostApplicationLifetime Lifetime, CancellationToken Stopped)> hosts;
        lock (_hosts)
        {
            hosts = [.. _hosts];
        }
        foreach (var (lifetime, stopped) in hosts.Where(h => !h.Stopped.IsCancellationRequested))
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (stopped.Register(() => done.TrySetResult()))
            {
                lifetime.StopApplication();
                await done.Task.WaitAsync(TimeSpan.FromSeconds(60));
            }
        }
        await base.DisposeAsync();
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        // Each host is a one-silo Orleans cluster: tests run hosts side by side, so each gets a silo
        // port of its own (Orleans' default 11111 would be taken by the first) and no gateway.
        builder.UseSetting("Orleans:SiloPort", FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("Orleans:GatewayPort", "0");
        foreach (var (key, value) in settings)
        {
            builder.UseSetting(key, value);
        }
        if (_services is { } services)
        {
            builder.ConfigureServices(services);
        }
    }
}

/// <summary>
/// Loopback ports nobody listens on, each handed out once per test run: the OS picks one (port 0),
/// and a port it picks again is skipped, so two hosts of one run never get the same.
/// </summary>
internal static class FreePorts
{
    private static readonly HashSet<int> Given = [];

    public static int Next()
    {
        lock (Given)
        {
            while (true)
            {
                using var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
                probe.Start();
                var port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
                probe.Stop();
                if (Given.Add(port))
                {
                    return port;
                }
            }
        }
    }
}

/// <summary>Calls that assert their status and hand back the JSON body.</summary>
internal static class HttpClientAssertions
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public static async Task<JsonNode> PostOk(this HttpClient client, string path, object body, int expectedStatus = 200)
    {
        var response = await client.PostAsJsonAsync(path, body, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True((int)response.StatusCode == expectedStatus, $"{path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    public static async Task<JsonNode> GetJson(this HttpClient client, string path)
    {
        var response = await client.GetAsync(path, Ct);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>GET /stats without the lock counters (every call, refused or not, takes locks).</summary>
    public static async Task<string> StatsWithoutLocks(this HttpClient client)
    {
        var stats = await client.GetJson("/stats");
        foreach (var zone in stats["zones"]!.AsArray())
        {
            zone!.AsObject().Remove("locks");
        }
        return stats.ToJsonString();
    }
}
