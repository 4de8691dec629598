using System.ComponentModel.DataAnnotations;

namespace PageAlloc.Api.Cluster;

/// <summary>How a PageAlloc process joins its cluster of silos.</summary>
public enum ClusteringKind
{
    /// <summary>One silo on this host, membership in memory: the embedded default, nothing else to run.</summary>
    Localhost,

    /// <summary>Membership and machine snapshots in Redis (Orleans:Redis): many silos, any number of hosts.</summary>
    Redis,
}

/// <summary>
/// The "Orleans" section. The four names operators set are fixed (Clustering, Redis, SiloPort,
/// GatewayPort); the rest tune what tests and benchmarks need.
/// </summary>
public sealed class PageAllocClusterOptions : IValidatableObject
{
    public const string Section = "Orleans";

    public ClusteringKind Clustering { get; set; } = ClusteringKind.Localhost;

    /// <summary>The Redis connection string (StackExchange.Redis syntax, "host:port[,options]"), with Clustering = Redis.</summary>
    public string? Redis { get; set; }

    /// <summary>Silo-to-silo port (Orleans' default 11111).</summary>
    [Range(1, 65535)]
    public int SiloPort { get; set; } = 11111;

    /// <summary>Gateway port for Orleans clients (Orleans' default 30000); PageAlloc itself needs none, 0 turns it off.</summary>
    [Range(0, 65535)]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>The address other silos reach this one at; left out, Orleans picks this host's first non-loopback address.</summary>
    public string? AdvertisedAddress { get; set; }

    /// <summary>Orleans' ClusterId and ServiceId: silos sharing a membership store and this id are one cluster (and share its snapshots).</summary>
    [RegularExpression("^[A-Za-z0-9._-]{1,64}$")]
    public string ClusterId { get; set; } = "pagealloc";

    /// <summary>
    /// Orleans' ClusterMembershipOptions, bound as they are (ProbeTimeout, NumMissedProbesLimit, ...):
    /// how fast a lost silo is declared dead, hence how soon its machines resume elsewhere.
    /// </summary>
    public Dictionary<string, string>? Membership { get; set; }

    /// <summary>With Localhost clustering and several silos on one host: the first silo's port, which the others join.</summary>
    [Range(0, 65535)]
    public int PrimarySiloPort { get; set; }

    /// <summary>How often a machine that changed is written to grain storage (its recovery point); 0 writes only on deactivation.</summary>
    [Range(0, 86_400)]
    public int SnapshotIntervalSeconds { get; set; } = 30;

    /// <summary>
    /// A request for a machine activated on this silo runs here, on the activation's machine, without
    /// a grain message (as Orleans runs a local call). False sends it through a grain call even then:
    /// for measuring what the forwarded path costs on one silo, never needed in operation.
    /// </summary>
    public bool LocalShortcut { get; set; } = true;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Clustering == ClusteringKind.Redis && string.IsNullOrWhiteSpace(Redis))
        {
            yield return new ValidationResult("Orleans:Clustering is Redis but Orleans:Redis (the connection string) is not set.", [nameof(Redis)]);
        }
        if (AdvertisedAddress is { Length: > 0 } address && !System.Net.IPAddress.TryParse(address, out _))
        {
            yield return new ValidationResult($"Orleans:AdvertisedAddress '{address}' is not an IP address.", [nameof(AdvertisedAddress)]);
        }
        if (GatewayPort != 0 && GatewayPort == SiloPort)
        {
            yield return new ValidationResult($"Orleans:SiloPort and Orleans:GatewayPort are both {SiloPort}; they need two ports.", [nameof(GatewayPort)]);
        }
    }
}
