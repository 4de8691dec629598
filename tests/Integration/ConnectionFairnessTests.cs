using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// One client cannot take every connection: its share (Limits:ConnectionsPerClient), the slots kept
/// for health probes (Limits:HealthConnections), and refusals summed up in the log instead of a
/// warning each. Real sockets on a real Kestrel; the clients are different loopback addresses
/// (127.0.0.1, 127.0.0.2, ...), which Linux routes to the listener on 127.0.0.1.
/// </summary>
public class ConnectionFairnessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly (string, string)[] Small =
        [("Limits:MaxConcurrentConnections", "8"), ("Limits:ConnectionsPerClient", "3"), ("Limits:HealthConnections", "2")];

    [Fact]
    public async Task AClientPastItsShare_IsClosedOnAccept_WhileAnotherClientIsServed()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "connects from 127.0.0.2, which only Linux routes without setup");
        await using var app = PageAllocApp.OnKestrel(Small);
        var held = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                held.Add(await Served(app.Address, "127.0.0.1", "/health/live", "200"));
            }
            for (var i = 0; i < 3; i++)
            {
                using var extra = await Connect(app.Address, "127.0.0.1");
                Assert.True(await ReadsEndOfStream(extra), "a connection past its client's share was served");
            }
            held.Add(await Served(app.Address, "127.0.0.2", "/zones", "200"));
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task WithEveryConnectionTaken_HealthStillAnswers_OtherCallsGet503_AndPastTheHealthSlotsConnectionsAreClosed()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "connects from 127.0.0.x, which only Linux routes without setup");
        await using var app = PageAllocApp.OnKestrel(Small);
        var held = new List<TcpClient>();
        try
        {
            // Two clients of three connections each: the 6 connections that are not health slots.
            foreach (var client in new[] { "127.0.0.1", "127.0.0.2" })
            {
                for (var i = 0; i < 3; i++)
                {
                    held.Add(await Served(app.Address, client, "/health/live", "200"));
                }
            }

            // A probe is answered in a health slot, and told the connection closes after it.
            using (var probe = await Connect(app.Address, "127.0.0.3"))
            {
                var answer = await Ask(probe, "/health/live");
                Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
                Assert.Contains("Connection: close", answer, StringComparison.OrdinalIgnoreCase);
            }
            // Anything else in a health slot is a problem saying why.
            using (var call = await Connect(app.Address, "127.0.0.4"))
            {
                var answer = await Ask(call, "/zones");
                Assert.StartsWith("HTTP/1.1 503", answer, StringComparison.Ordinal);
                Assert.Contains("service-full", answer, StringComparison.Ordinal);
                Assert.Contains("Retry-After: 1", answer, StringComparison.OrdinalIgnoreCase);
            }

            // Both health slots held idle: the next connection is closed on accept. (First the probe's and
            // the call's connections must have been let go by the server, or the slots are still theirs.)
            await WaitUntil(() => app.Services.GetRequiredService<ConnectionFairness>().Open == 6);
            using var idle1 = await Connect(app.Address, "127.0.0.5");
            using var idle2 = await Connect(app.Address, "127.0.0.6");
            await WaitUntil(() => app.Services.GetRequiredService<ConnectionFairness>().Open == 8);
            using var beyond = await Connect(app.Address, "127.0.0.7");
            Assert.True(await ReadsEndOfStream(beyond), "a connection beyond every slot was served");
            // ... and a health slot's idle connection does not keep it: it is closed within 5 s.
            Assert.True(await ReadsEndOfStream(idle1, TimeSpan.FromSeconds(15)), "a health slot was held");
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }
        using var http = new HttpClient { BaseAddress = app.Address };
        await WaitUntil(() => app.Services.GetRequiredService<ConnectionFairness>().Open == 0);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/zones", Ct)).StatusCode);
    }

    [Fact]
    public async Task RefusedConnections_AreSummedUpInOneLine_NotAWarningEach()
    {
        var recorder = new LogRecorder();
        await using var app = PageAllocApp.OnKestrel(s => s.AddLogging(l => l.AddProvider(recorder)), Small);
        var held = new List<TcpClient>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                held.Add(await Served(app.Address, "127.0.0.1", "/health/live", "200"));
            }
            for (var i = 0; i < 20; i++)
            {
                using var extra = await Connect(app.Address, "127.0.0.1");
                Assert.True(await ReadsEndOfStream(extra));
            }
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }
        app.Services.GetRequiredService<ConnectionFairness>().Summarise();

        var warnings = recorder.Entries.Where(e => e.Level >= LogLevel.Warning).ToList();
        Assert.DoesNotContain(warnings, e => e.Category.StartsWith("Microsoft.AspNetCore.Server.Kestrel", StringComparison.Ordinal));
        var summaries = warnings.Where(e => e.Category == typeof(ConnectionFairness).FullName).ToList();
        Assert.InRange(summaries.Count, 1, 2); // the timer may have summed up part of them first
        Assert.Equal(20, summaries.Sum(e => Convert.ToInt64(e.Values.Single(v => v.Key == "Count").Value, System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Contains("127.0.0.1", summaries[^1].Message, StringComparison.Ordinal);
    }

    /// <summary>A connection from <paramref name="source"/> that has been answered once (so the server surely counts it), left open.</summary>
    [Fact]
    public async Task TheHealthPort_AnswersAProbeFromAnAddressThatHoldsItsWholeShare_AndOnlyHealth()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "connects from 127.0.0.x, which only Linux routes without setup");
        var healthPort = FreePort();
        await using var app = PageAllocApp.OnKestrel([.. Small, ("urls", $"http://127.0.0.1:0;http://127.0.0.1:{healthPort}"), ("Limits:HealthPort", $"{healthPort}")]);
        var addresses = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.Select(a => new Uri(a)).ToList();
        var main = addresses.Single(a => a.Port != healthPort);
        var health = addresses.Single(a => a.Port == healthPort);
        var held = new List<TcpClient>();
        try
        {
            // 127.0.0.1 holds its whole share on the service's port: a probe from it there is refused ...
            for (var i = 0; i < 3; i++)
            {
                held.Add(await Served(main, "127.0.0.1", "/zones", "200"));
            }
            using (var refused = await Connect(main, "127.0.0.1"))
            {
                Assert.True(await ReadsEndOfStream(refused), "a connection past its client's share was served");
            }

            // ... and answered on the health port, which serves health and nothing else.
            using (var probe = await Connect(health, "127.0.0.1"))
            {
                var answer = await Ask(probe, "/health/live");
                Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
                Assert.Contains("Connection: close", answer, StringComparison.OrdinalIgnoreCase);
            }
            using (var call = await Connect(health, "127.0.0.1"))
            {
                var answer = await Ask(call, "/zones");
                Assert.StartsWith("HTTP/1.1 503", answer, StringComparison.Ordinal);
                Assert.Contains("Limits:HealthPort", answer, StringComparison.Ordinal);
            }

            // The health port holds at most Limits:HealthConnections (2) at once.
            for (var i = 0; i < 2; i++)
            {
                held.Add(await Connect(health, "127.0.0.2"));
            }
            using var third = await Connect(health, "127.0.0.3");
            Assert.True(await ReadsEndOfStream(third), "a third connection on the health port was served");
        }
        finally
        {
            held.ForEach(c => c.Dispose());
        }
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    private static async Task<TcpClient> Served(Uri address, string source, string path, string status)
    {
        var client = await Connect(address, source);
        var answer = await Ask(client, path);
        Assert.True(answer.StartsWith("HTTP/1.1 " + status, StringComparison.Ordinal), $"{source} {path}: {answer}");
        return client;
    }

    /// <summary>GET <paramref name="path"/> on the connection: the answer's head and what came of its body in the first read.</summary>
    private static async Task<string> Ask(TcpClient client, string path)
    {
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"), Ct);
        var buffer = new byte[8192];
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        wait.CancelAfter(TimeSpan.FromSeconds(10));
        var read = await stream.ReadAsync(buffer, wait.Token);
        return Encoding.ASCII.GetString(buffer, 0, read);
    }

    private static async Task<TcpClient> Connect(Uri address, string source)
    {
        var client = new TcpClient(new IPEndPoint(IPAddress.Parse(source), 0));
        await client.ConnectAsync(address.Host, address.Port, Ct);
        return client;
    }

    /// <summary>True when the server closes the connection (end of stream, or a reset) before sending anything.</summary>
    private static async Task<bool> ReadsEndOfStream(TcpClient client, TimeSpan? within = null)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        wait.CancelAfter(within ?? TimeSpan.FromSeconds(10));
        try
        {
            return await client.GetStream().ReadAsync(new byte[1], wait.Token) == 0;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        for (var i = 0; i < 200 && !condition(); i++)
        {
            await Task.Delay(25, Ct);
        }
        Assert.True(condition(), "the condition did not hold within 5 s");
    }
}
