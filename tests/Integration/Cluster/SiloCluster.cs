namespace PageAlloc.Tests.Integration.Cluster;

/// <summary>
/// Several PageAlloc hosts in this process, each a silo of one Redis-backed cluster (a Redis of its
/// own, a ClusterId of its own): every host serves the whole HTTP API, as each process of the
/// compose cluster profile does. Failure detection is tightened (a silo that stops answering is
/// declared dead in seconds, not the default tens of seconds).
/// </summary>
internal sealed class SiloCluster : IAsyncDisposable
{
    private readonly RedisServer _redis;
    private readonly (string Key, string Value)[] _settings;
    private readonly string _clusterId = "test-" + Guid.NewGuid().ToString("N")[..12];

    private SiloCluster(RedisServer redis, (string Key, string Value)[] settings)
    {
        _redis = redis;
        _settings = settings;
    }

    public List<PageAllocApp?> Silos { get; } = [];

    /// <summary>The cluster's Redis (membership and grain storage).</summary>
    public RedisServer Redis => _redis;

    public static async Task<SiloCluster> StartAsync(int silos, params (string Key, string Value)[] settings)
    {
        var cluster = new SiloCluster(await RedisServer.StartAsync(), settings);
        try
        {
            for (var i = 0; i < silos; i++)
            {
                cluster.Add();
            }
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync(); // the Redis and the silos already started
            throw;
        }
    }

    /// <summary>One more silo, started; it joins the cluster.</summary>
    public PageAllocApp Add()
    {
        var silo = new PageAllocApp([
            ("Orleans:Clustering", "Redis"),
            ("Orleans:Redis", _redis.ConnectionString),
            ("Orleans:ClusterId", _clusterId),
            ("Orleans:AdvertisedAddress", "127.0.0.1"),
            ("Orleans:Membership:ProbeTimeout", "00:00:01"),
            ("Orleans:Membership:NumMissedProbesLimit", "2"),
            ("Orleans:Membership:TableRefreshTimeout", "00:00:02"),
            .. _settings]);
        _ = silo.Server; // starts it
        Silos.Add(silo);
        return silo;
    }

    public HttpClient Client(int silo) => Silos[silo]!.CreateClient();

    /// <summary>Stops a silo gracefully (its machines' snapshots are written as their grains deactivate).</summary>
    public async Task StopAsync(int silo)
    {
        await Silos[silo]!.DisposeAsync();
        Silos[silo] = null;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var silo in Silos.Where(s => s is not null))
        {
            await silo!.DisposeAsync();
        }
        await _redis.DisposeAsync();
    }
}
