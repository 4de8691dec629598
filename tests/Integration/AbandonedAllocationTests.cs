using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// A client that hangs up after sending alloc_pages never reads its 201, but the pages were
/// allocated: it can list its own allocations and free them all.
/// </summary>
public class AbandonedAllocationTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Sends alloc_pages on a raw socket and hangs up without reading the answer (after a moment, so the server has begun it).</summary>
    private static async Task AllocAndHangUp(Uri address, string key)
    {
        using var socket = new TcpClient();
        await socket.ConnectAsync(address.Host, address.Port, Ct);
        var body = """{"order":0}""";
        var request = $"POST /zones/Normal/alloc_pages HTTP/1.1\r\nHost: {address.Authority}\r\nX-Api-Key: {key}\r\n"
            + $"Content-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n{body}";
        await socket.GetStream().WriteAsync(Encoding.ASCII.GetBytes(request), Ct);
        await Task.Delay(50, Ct);
        socket.Client.LingerState = new LingerOption(true, 0); // a reset, as a client that dies does
        socket.Close();
    }

    [Fact]
    public async Task AKeyThatHungUp_FindsItsOwnAllocations_AndFreesThemAll_OthersUntouched()
    {
        await using var app = PageAllocApp.OnKestrel(
            ("Security:ApiKeys:0:Name", "alice"), ("Security:ApiKeys:0:Key", SecurityTests.AliceKey),
            ("Security:ApiKeys:1:Name", "bob"), ("Security:ApiKeys:1:Key", SecurityTests.BobKey));
        using var alice = new HttpClient { BaseAddress = app.Address };
        alice.DefaultRequestHeaders.Add("X-Api-Key", SecurityTests.AliceKey);
        using var bob = new HttpClient { BaseAddress = app.Address };
        bob.DefaultRequestHeaders.Add("X-Api-Key", SecurityTests.BobKey);
        var bobs = await bob.PostOk("/zones/Normal/alloc_pages", new { order = 3 }, 201);

        await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => AllocAndHangUp(app.Address, SecurityTests.AliceKey)));
        await Task.Delay(500, Ct); // the server finishes the requests whose clients are gone

        var listed = await alice.GetJson("/zones/Normal/allocations?limit=10000");
        var orphans = listed["allocations"]!.AsArray();
        Assert.NotEmpty(orphans); // the hang-ups left allocations nobody read
        Assert.DoesNotContain(orphans, a => a!["pfn"]!.GetValue<long>() == bobs["pfn"]!.GetValue<long>());
        var freed = await alice.PostOk("/zones/Normal/free_allocations", new { });
        Assert.Equal(orphans.Count, freed["blocks"]!.GetValue<long>());

        Assert.Empty((await alice.GetJson("/zones/Normal/allocations"))["allocations"]!.AsArray());
        var bobsNow = (await bob.GetJson("/zones/Normal/allocations"))["allocations"]!.AsArray();
        Assert.Equal(bobs["pfn"]!.GetValue<long>(), Assert.Single(bobsNow)!["pfn"]!.GetValue<long>());
    }

    [Fact]
    public async Task AnAllocationWhoseClientHungUpBeforeItsAnswer_IsFreedAgain_AndCounted()
    {
        await using var app = PageAllocApp.OnKestrel(("Security:ApiKeys:0:Name", "alice"), ("Security:ApiKeys:0:Key", SecurityTests.AliceKey));
        using var alice = new HttpClient { BaseAddress = app.Address };
        alice.DefaultRequestHeaders.Add("X-Api-Key", SecurityTests.AliceKey);
        var hosted = app.Services.GetRequiredService<PageAlloc.Api.Machines.MachineRegistry>().Find("default", null)!;
        var freeBefore = await FreePages(alice);
        var allocsBefore = await PgAlloc(alice);

        const int Rounds = 4;
        for (var round = 0; round < Rounds; round++)
        {
            // The machine's gate held as a snapshot holds it: the call waits there, after its request
            // was read and before it allocates, while its client resets the connection.
            using var release = new ManualResetEventSlim();
            var holder = new Thread(() => hosted.Gate.Exclusive(() => release.Wait(TimeSpan.FromSeconds(30))));
            holder.Start();
            try
            {
                using var socket = new TcpClient();
                await socket.ConnectAsync(app.Address.Host, app.Address.Port, Ct);
                var body = """{"order":1}""";
                var request = $"POST /zones/Normal/alloc_pages HTTP/1.1\r\nHost: {app.Address.Authority}\r\nX-Api-Key: {SecurityTests.AliceKey}\r\n"
                    + $"Content-Type: application/json\r\nContent-Length: {body.Length}\r\n\r\n{body}";
                await socket.GetStream().WriteAsync(Encoding.ASCII.GetBytes(request), Ct);
                await Task.Delay(300, Ct); // it reaches the gate
                socket.Client.LingerState = new LingerOption(true, 0);
                socket.Close();
                await Task.Delay(300, Ct); // the server sees the reset
            }
            finally
            {
                release.Set();
                holder.Join();
            }
        }

        // Every allocation made for a client gone was freed again: none is held, the zone is as it was.
        var made = 0L;
        for (var waited = 0; ; waited += 50)
        {
            made = await PgAlloc(alice) - allocsBefore;
            if (made > 0 && hosted.AbandonedAllocations == made / 2 || waited > 10_000)
            {
                break;
            }
            await Task.Delay(50, Ct);
        }
        Assert.True(made > 0, "no call reached the allocator: the test did not test the hang-up");
        Assert.Equal(made / 2, hosted.AbandonedAllocations); // order-1 blocks: two pages each
        Assert.Empty((await alice.GetJson("/zones/Normal/allocations"))["allocations"]!.AsArray());
        Assert.Equal(freeBefore, await FreePages(alice));
        var metrics = await alice.GetStringAsync("/metrics", Ct);
        Assert.Matches($"pagealloc_allocations_abandoned_total{{[^}}]*machine=\"default\"[^}}]*}} {made / 2}\n", metrics);
    }

    /// <summary>The zone's pages nobody holds: free in the buddy or on a pcp list.</summary>
    private static async Task<long> FreePages(HttpClient client)
    {
        var zone = await client.GetJson("/zones/Normal");
        return zone["freePages"]!.GetValue<long>() + zone["pcpPages"]!.GetValue<long>();
    }

    private static async Task<long> PgAlloc(HttpClient client) =>
        (await client.GetStringAsync("/proc/vmstat", Ct)).Split('\n').Where(l => l.StartsWith("pgalloc_normal ", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture)).Single();

    [Fact]
    public async Task TheListing_ComesInPages_ThatJoinUp()
    {
        await using var app = new PageAllocApp();
        var client = app.CreateClient();
        var pfns = new List<long>();
        for (var i = 0; i < 25; i++)
        {
            pfns.Add((await client.PostOk("/zones/Normal/alloc_pages", new { order = i % 3 }, 201))["pfn"]!.GetValue<long>());
        }

        var seen = new List<long>();
        string? from = null;
        do
        {
            var page = await client.GetJson($"/zones/Normal/allocations?limit=10{(from is null ? "" : "&from=" + from)}");
            seen.AddRange(page["allocations"]!.AsArray().Select(a => a!["pfn"]!.GetValue<long>()));
            from = page["next"]?.GetValue<long>().ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        while (from is not null);

        Assert.Equal(pfns.Order(), seen);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.GetAsync("/zones/Normal/allocations?limit=0", Ct)).StatusCode);
    }
}
