using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PageAlloc.Tests.Integration;

/// <summary>
/// tools/grafana, what docker-compose.yml's observe profile provisions: the dashboard is JSON Grafana
/// can load, every panel reads the provisioned data source, and every metric a panel's query names
/// is one the service exports (so a renamed metric cannot leave a panel silently empty).
/// </summary>
[Collection(nameof(MetricsTests))] // scrapes /metrics: alone, as MetricsTests does
public partial class GrafanaDashboardTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [GeneratedRegex(@"\bpagealloc_[a-z0-9_]+")]
    private static partial Regex MetricName();

    [GeneratedRegex(@"^# TYPE (?<name>\S+) ", RegexOptions.Multiline)]
    private static partial Regex Family();

    [Fact]
    public async Task EveryPanel_QueriesTheProvisionedPrometheus_ForMetricsTheServiceExports()
    {
        var dashboard = JsonNode.Parse(await File.ReadAllTextAsync(Repository.File("tools/grafana/dashboards/pagealloc.json"), Ct))!;
        var datasource = await File.ReadAllTextAsync(Repository.File("tools/grafana/provisioning/datasources/prometheus.yml"), Ct);
        Assert.Contains("uid: prometheus", datasource, StringComparison.Ordinal);
        Assert.Contains("url: http://prometheus:9090", datasource, StringComparison.Ordinal);
        await using var app = new PageAllocApp();
        var exported = Family().Matches(await app.CreateClient().GetStringAsync("/metrics", Ct)).Select(m => m.Groups["name"].Value).ToHashSet();

        var panels = dashboard["panels"]!.AsArray();
        Assert.NotEmpty(panels);
        var named = new HashSet<string>();
        foreach (var panel in panels)
        {
            var title = (string)panel!["title"]!;
            Assert.Equal("prometheus", (string)panel["datasource"]!["uid"]!);
            var targets = panel["targets"]!.AsArray();
            Assert.True(targets.Count > 0, $"panel '{title}' has no query");
            foreach (var target in targets)
            {
                var expr = (string)target!["expr"]!;
                var metrics = MetricName().Matches(expr).Select(m => m.Value).ToList();
                Assert.True(metrics.Count > 0, $"panel '{title}': {expr} names no pagealloc metric");
                foreach (var metric in metrics)
                {
                    Assert.True(exported.Contains(metric), $"panel '{title}' queries {metric}, which GET /metrics does not export");
                    named.Add(metric);
                }
            }
        }
        // What the issue asks the dashboard to show, each on some panel.
        Assert.Superset(new HashSet<string> { "pagealloc_free_pages", "pagealloc_free_blocks", "pagealloc_fragmentation_unusable_index",
            "pagealloc_fragmentation_extfrag_index", "pagealloc_pcp_pages", "pagealloc_lock_contentions_total", "pagealloc_allocation_failures_total" }, named);
        foreach (var variable in dashboard["templating"]!["list"]!.AsArray())
        {
            Assert.All(MetricName().Matches((string)variable!["definition"]!).Select(m => m.Value), m => Assert.Contains(m, exported));
        }
    }

    [Fact]
    public void TheObserveProfile_MountsWhatGrafanaNeeds()
    {
        var compose = File.ReadAllText(Repository.File("docker-compose.yml"));
        Assert.Contains("./tools/grafana/provisioning:/etc/grafana/provisioning:ro", compose, StringComparison.Ordinal);
        Assert.Contains("./tools/grafana/dashboards:/var/lib/grafana/dashboards:ro", compose, StringComparison.Ordinal);
        var provider = File.ReadAllText(Repository.File("tools/grafana/provisioning/dashboards/pagealloc.yml"));
        Assert.Contains("path: /var/lib/grafana/dashboards", provider, StringComparison.Ordinal);
    }
}
