using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Mvc.Testing;

namespace PageAlloc.Tests.Integration;

/// <summary>A fresh PageAlloc host for one test (TodoApi style): no state leaks between tests.</summary>
internal sealed class PageAllocApp : WebApplicationFactory<Program>;

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
