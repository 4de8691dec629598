using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using PageAlloc.Tests.Integration.AsUsers;

namespace PageAlloc.Tests.Integration.Cluster;

/// <summary>
/// Two real PageAlloc processes and a real Redis, as the compose cluster profile runs them: a
/// machine made through one is used and deleted through the other, and a process killed outright
/// (SIGKILL: no snapshot on the way out) leaves its machines to the other, resumed from their last
/// snapshot, with what was lost said.
/// </summary>
public class ClusterProcessTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ServiceProcess StartSilo(RedisServer redis, string clusterId) =>
        ServiceProcess.Start($"dotnet {Path.Combine(AppContext.BaseDirectory, "PageAlloc.Api.dll")}", AppContext.BaseDirectory,
            environment: new Dictionary<string, string>
            {
                ["Orleans__Clustering"] = "Redis",
                ["Orleans__Redis"] = redis.ConnectionString,
                ["Orleans__ClusterId"] = clusterId,
                ["Orleans__AdvertisedAddress"] = "127.0.0.1",
                ["Orleans__SnapshotIntervalSeconds"] = "0", // snapshots on request only: the test says when
                ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
                ["Orleans__Membership__NumMissedProbesLimit"] = "2",
                ["Orleans__Membership__NumVotesForDeathDeclaration"] = "1",
                ["Orleans__Membership__TableRefreshTimeout"] = "00:00:02",
            });

    private static async Task<HttpClient> Ready(ServiceProcess silo)
    {
        var client = new HttpClient { BaseAddress = await silo.Listening(TimeSpan.FromSeconds(60)), Timeout = TimeSpan.FromSeconds(30) };
        await Eventually(async () => (await client.GetAsync("/health/ready", Ct)).StatusCode == HttpStatusCode.OK, TimeSpan.FromSeconds(60), "ready");
        return client;
    }

    private static async Task Eventually(Func<Task<bool>> condition, TimeSpan within, string what)
    {
        var deadline = DateTime.UtcNow + within;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not {what} within {within}");
            await Task.Delay(100, Ct);
        }
    }

    private static object Small(string name) => new
    {
        name,
        config = new { cpus = 2, nodes = new[] { new { id = 0, zones = new[] { new { name = "Normal", startPfn = 0x100000, pages = 16384 } } } } },
    };

    [Fact]
    public async Task AMachineMadeThroughOneProcess_IsUsedAndDeletedThroughTheOther_AndOutlivesTheKillOfItsProcess()
    {
        await using var redis = await RedisServer.StartAsync();
        var clusterId = "proc-" + Guid.NewGuid().ToString("N")[..8];
        await using var a = StartSilo(redis, clusterId);
        await using var b = StartSilo(redis, clusterId);
        using var viaA = await Ready(a);
        using var viaB = await Ready(b);

        // Made through A (so activated there), used and deleted through B.
        await viaA.PostOk("/machines", Small("shared"), 201);
        var pfn = (await viaB.PostOk("/machines/shared/zones/Normal/alloc_pages", new { order = 1 }, 201))["pfn"]!.GetValue<long>();
        await viaB.PostOk("/machines/shared/zones/Normal/free_pages", new { pfn, order = 1 });
        Assert.Equal(HttpStatusCode.NoContent, (await viaB.DeleteAsync("/machines/shared", Ct)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await viaA.GetAsync("/machines/shared", Ct)).StatusCode);

        // A machine on A, changed through B, its recovery point written (POST .../checkpoint).
        await viaA.PostOk("/machines", Small("survivor"), 201);
        for (var order = 0; order < 4; order++)
        {
            await viaB.PostOk("/machines/survivor/zones/Normal/alloc_pages", new { order }, 201);
        }
        var durability = (await viaB.PostOk("/machines/survivor/checkpoint", new { }))["durability"]!;
        Assert.Equal(0, durability["operationsSinceSnapshot"]!.GetValue<long>());
        Assert.NotNull(durability["snapshotAt"]);
        var snapshotted = await viaB.GetStringAsync("/machines/survivor/proc/buddyinfo", Ct);
        var home = durability["silo"]!.GetValue<string>();
        var held = durability["operations"]!.GetValue<long>();
        // One more change, after the snapshot: it is what the kill loses.
        await viaB.PostOk("/machines/survivor/zones/Normal/alloc_pages", new { order = 5 }, 201);

        a.Kill();

        JsonNode? resumed = null;
        await Eventually(async () =>
        {
            var response = await viaB.GetAsync("/machines/survivor", Ct);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return false;
            }
            resumed = JsonNode.Parse(await response.Content.ReadAsStringAsync(Ct))!["durability"];
            return resumed!["silo"]!.GetValue<string>() != home;
        }, TimeSpan.FromSeconds(60), "resumed on the other process");
        var from = resumed!["resumedFrom"]!;
        Assert.False(from["clean"]!.GetValue<bool>(), resumed.ToJsonString());
        Assert.Equal(held, from["operations"]!.GetValue<long>());
        Assert.Equal(home, from["silo"]!.GetValue<string>());
        // The machine is as its snapshot had it: the order-5 allocation made after it is gone.
        Assert.Equal(snapshotted, await viaB.GetStringAsync("/machines/survivor/proc/buddyinfo", Ct));
        Assert.Contains("Recovered after its silo", b.Output, StringComparison.Ordinal);
    }
}
