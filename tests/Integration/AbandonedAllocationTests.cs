using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

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
