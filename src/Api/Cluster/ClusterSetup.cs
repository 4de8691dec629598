using System.Net;
using Orleans.Configuration;

namespace PageAlloc.Api.Cluster;

/// <summary>
/// Makes this process an Orleans silo co-hosted with the API (AddOrleans on the same host): a
/// one-silo cluster on localhost by default, or a member of a Redis-backed cluster. Machines are
/// grains (<see cref="MachineGrain"/>); their snapshots are kept in the "machines" grain storage,
/// in memory on localhost, in Redis in a cluster.
/// </summary>
public static class ClusterSetup
{
    /// <summary>The grain storage provider machines' snapshots and the catalog are written to.</summary>
    public const string Storage = "machines";

    public static WebApplicationBuilder AddPageAllocCluster(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<PageAllocClusterOptions>()
            .BindConfiguration(PageAllocClusterOptions.Section, o => o.ErrorOnUnknownConfiguration = true)
            .ValidateDataAnnotations()
            .ValidateOnStart();

        // The silo is configured now, when the host is built; a value that does not bind or validate is
        // reported by ValidateOnStart above (named, before listening), so here it falls back to the default.
        var options = TryBind(builder.Configuration) ?? new PageAllocClusterOptions();
        var redis = options.Clustering == ClusteringKind.Redis && !string.IsNullOrWhiteSpace(options.Redis) ? options.Redis : null;
        // AddOrleans on this host's services, not builder.UseOrleans: the latter also reads the "Orleans"
        // section as Orleans' own provider configuration, where "Orleans:Clustering" must be a section
        // naming a provider type; ours is the operator's one-word choice (Localhost or Redis).
        builder.Services.AddOrleans(silo =>
        {
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = options.ClusterId;
                o.ServiceId = options.ClusterId;
            });
            // A forwarded request is one grain call: it may last as long as the longest request
            // (a test or replay, Limits:TestTimeoutSeconds); Orleans' default 30 s would cut it short.
            silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromMinutes(3));
            silo.Configure<ClusterMembershipOptions>(builder.Configuration.GetSection(PageAllocClusterOptions.Section + ":" + nameof(PageAllocClusterOptions.Membership)));
            if (redis is null)
            {
                var primary = options.PrimarySiloPort is > 0 and var port ? new IPEndPoint(IPAddress.Loopback, port) : null;
                silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, primary, options.ClusterId, options.ClusterId);
                silo.AddMemoryGrainStorage(Storage);
            }
            else
            {
                silo.UseRedisClustering(redis);
                silo.AddRedisGrainStorage(Storage, o => o.ConfigurationOptions = StackExchange.Redis.ConfigurationOptions.Parse(redis));
                silo.Configure<EndpointOptions>(o =>
                {
                    o.SiloPort = options.SiloPort;
                    o.GatewayPort = options.GatewayPort;
                    if (options.AdvertisedAddress is { Length: > 0 } address && IPAddress.TryParse(address, out var ip))
                    {
                        o.AdvertisedIPAddress = ip;
                    }
                    // Listen on every interface: a container's silo is reached on its network address.
                    o.SiloListeningEndpoint = new IPEndPoint(IPAddress.Any, options.SiloPort);
                    o.GatewayListeningEndpoint = options.GatewayPort == 0 ? null : new IPEndPoint(IPAddress.Any, options.GatewayPort);
                });
            }
        });
        // Orleans logs every placement and membership step at Information (through Polly pipelines
        // of its own); the service's console keeps what is worth an operator's attention. (Program.cs
        // holds Orleans' start-up notes back further, until the host has started.)
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        return builder;
    }

    private static PageAllocClusterOptions? TryBind(ConfigurationManager configuration)
    {
        try
        {
            return configuration.GetSection(PageAllocClusterOptions.Section).Get<PageAllocClusterOptions>(o => o.ErrorOnUnknownConfiguration = true);
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }
}
