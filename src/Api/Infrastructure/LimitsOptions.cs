using System.ComponentModel.DataAnnotations;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// The "Limits" section: what one client can cost the service. Each bound is set on purpose, so
/// that idle connections, large bodies, long responses or slow runs cannot take the service down.
/// </summary>
public sealed class LimitsOptions : IValidatableObject
{
    public const string Section = "Limits";

    /// <summary>
    /// Descriptors a process needs beside its connections (runtime, assemblies, logs): the
    /// connection limit must leave these under the open-file limit, or the next accept kills it.
    /// </summary>
    public const int ReservedFileDescriptors = 256;

    /// <summary>Kestrel's MaxConcurrentConnections: connections beyond it are closed on accept.</summary>
    [Range(1, 1_000_000)]
    public int MaxConcurrentConnections { get; set; } = 512;

    /// <summary>Kestrel's KeepAliveTimeout: an idle connection is closed after this long.</summary>
    [Range(1, 3600)]
    public int KeepAliveSeconds { get; set; } = 30;

    /// <summary>The request timeout of POST /tests/page_alloc_high_order (a maximal run, 9 rounds of 100000 iterations, takes about 20 s here).</summary>
    [Range(1, 3600)]
    public int TestTimeoutSeconds { get; set; } = 60;

    /// <summary>The largest body of a call on one page or block (alloc, free, split, get/put).</summary>
    [Range(256, 1 << 20)]
    public int PageCallBodyBytes { get; set; } = 4 << 10;

    /// <summary>
    /// The largest body of free_pages_bulk (and of an import): 10 MiB, so that the longest list the
    /// request takes, 2^20 pfns of 7 digits, fits with every member and a space after each comma:
    /// {"pfns":[ + 2^20 * 7 digits + (2^20 - 1) commas + ]} is 8,388,618 bytes (past 8 MiB by 10), and
    /// 9,437,193 with the spaces; ,"strategy":"per-page","cpu":1023 adds 33.
    /// </summary>
    [Range(1 << 10, 64 << 20)]
    public int BulkBodyBytes { get; set; } = 10 << 20;

    /// <summary>The most chunks a range-free response lists (with listChunks=true); counts by order are always exact.</summary>
    [Range(0, 1 << 20)]
    public int ChunkListLimit { get; set; } = 4096;

    /// <summary>The largest trace POST /replay takes (it streams through: this bounds the time a replay may take, not memory).</summary>
    [Range(1 << 10, 1L << 32)]
    public long ReplayBodyBytes { get; set; } = 256L << 20;

    /// <summary>The most GET /events streams open at once; more are refused with 429.</summary>
    [Range(0, 1024)]
    public int EventListeners { get; set; } = 8;

    /// <summary>Each event stream's buffer, in events: when a reader falls this far behind, events are dropped and counted as lost.</summary>
    [Range(16, 1 << 24)]
    public int EventBufferEvents { get; set; } = 1 << 16;

    /// <summary>
    /// The most connections one client (one IPv4 address, or one IPv6 /64) may hold open at once;
    /// its connections beyond are closed on accept, before they count against
    /// <see cref="MaxConcurrentConnections"/>. The default, 64 of 512, lets eight clients fill the
    /// service and none take it alone. Behind a proxy every client has the proxy's address: raise it
    /// to MaxConcurrentConnections there.
    /// </summary>
    [Range(1, 1_000_000)]
    public int ConnectionsPerClient { get; set; } = 64;

    /// <summary>
    /// Connections of <see cref="MaxConcurrentConnections"/> kept for health probes: once the others
    /// are all taken, a new connection may ask /health/* (and /healthz) once and is then closed;
    /// anything else on it gets 503. Each is closed after 5 s whatever it did.
    /// </summary>
    [Range(1, 1024)]
    public int HealthConnections { get; set; } = 8;

    /// <summary>
    /// A local port that serves health probes only (0: none), one of the URLs the service listens on
    /// (e.g. --urls "http://+:8080;http://+:8081" with HealthPort 8081). Its connections are outside
    /// every client's share and the MaxConcurrentConnections slots, so that a client holding its own
    /// address's share (a probe from that address included) cannot keep the probes out; at most
    /// HealthConnections are open on it, and anything but /health/* there is 503. Keep it off the
    /// network the clients reach (compose does not publish it).
    /// </summary>
    [Range(0, 65535)]
    public int HealthPort { get; set; }

    /// <summary>The most GET /events streams one API key may hold open at once (with API keys; the global bound is EventListeners).</summary>
    [Range(1, 1024)]
    public int EventListenersPerKey { get; set; } = 2;

    /// <summary>With API keys off, the most GET /events streams one client (an IPv4 address, an IPv6 /64) may hold open at once: one client cannot take every place.</summary>
    [Range(1, 1024)]
    public int EventListenersPerClient { get; set; } = 4;

    /// <summary>GET /metrics answers at most this many scrapes a second, service-wide (429 beyond); a scrape every 15 s is Prometheus' default.</summary>
    [Range(1, 10_000)]
    public int MetricsScrapesPerSecond { get; set; } = 4;

    /// <summary>
    /// The most machines the service holds at once, default included (POST /machines beyond it: 507 machine-limit).
    /// </summary>
    [Range(1, 10_000)]
    public int MaxMachines { get; set; } = 128;

    /// <summary>
    /// The page state all machines together may hold, in bytes (each machine counted by its zones'
    /// pages, MachineConfig.StateBytes(): about 16 bytes a page, 33.6 MB for the default 8 GiB
    /// machine). A create, restore, fork or import that would pass it is refused (507 machine-limit).
    /// The default, 4 GiB, holds the default machine and 100 more of its size. A process that may use
    /// less than twice the budget (a container's memory limit) is held to half of what it may use,
    /// since a reset boots a machine's successor while it still serves (<see cref="EffectiveMachineMemoryBytes"/>).
    /// </summary>
    [Range(1L << 20, 1L << 50)]
    public long MachineMemoryBytes { get; set; } = 4L << 30;

    /// <summary>The budget in force: <see cref="MachineMemoryBytes"/>, at most half the memory this process may use.</summary>
    public long EffectiveMachineMemoryBytes()
    {
        var available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return available > 0 ? Math.Min(MachineMemoryBytes, available / 2) : MachineMemoryBytes;
    }

    /// <summary>The most machines one API key may own at once (administrators included; default is nobody's).</summary>
    [Range(0, 10_000)]
    public int MachinesPerKey { get; set; } = 8;

    /// <summary>A machine nobody has named in a request for this long is deleted, unless pinned (0: never).</summary>
    [Range(0, 10_080)]
    public int MachineIdleMinutes { get; set; } = 60;

    /// <summary>The largest snapshot POST /machines restores (compressed; the machine it describes is bounded by MachineMemoryBytes).</summary>
    [Range(1 << 10, 1L << 34)]
    public long SnapshotBodyBytes { get; set; } = 512L << 20;

    /// <summary>
    /// The most text POST /replay reads, after decompression for gzip (413 beyond). A replay streams,
    /// so this bounds its time, not its memory: 4 GiB, 16 times ReplayBodyBytes, since a perf script
    /// gzips about 15 to 1 (the shared trace: 594,533 bytes in 39,415) and a gzip body of the largest
    /// size must fit; a body that inflates further (a gzip bomb) is no trace.
    /// </summary>
    [Range(1 << 10, 1L << 40)]
    public long ReplayDecompressedBytes { get; set; } = 4L << 30;

    /// <summary>
    /// The longest line of a text body, POST /replay's and POST /zones/{zone}/import's (413 beyond):
    /// 64 KiB. This bounds a request's memory: it holds one line at a time. A perf script line is
    /// about 200 bytes, a /proc row under 200.
    /// </summary>
    [Range(256, 16 << 20)]
    public int BodyLineBytes { get; set; } = 64 << 10;

    /// <summary>
    /// The most timeline points a replay answers with, the final one beside them: at the limit every
    /// second point is dropped and the interval doubles (the result's timelineEvery says which was
    /// used), so a timeline of 4096 points of about 700 bytes each keeps a response under 3 MB
    /// whatever timelineEvery asks for.
    /// </summary>
    [Range(1, 1 << 20)]
    public int ReplayTimelinePoints { get; set; } = PageAlloc.Domain.Replay.TraceReplayer.DefaultTimelinePoints;

    /// <summary>Experiments running at once on a silo (POST .../experiments beyond: 429): each takes up to ExperimentParallelism cores.</summary>
    [Range(1, 64)]
    public int ExperimentsRunning { get; set; } = 1;

    /// <summary>Runs of one experiment at once, each on a fork of its own (default: the cores the process may use).</summary>
    [Range(1, 1024)]
    public int ExperimentParallelism { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// The page state an experiment's forks may hold at once (the template forked from the machine and
    /// one fork per run at once, each counted as MachineConfig.StateBytes(): 33.6 MB for the default
    /// machine): its parallelism is lowered to fit, and an experiment on a machine two forks of which
    /// do not fit is refused (507 machine-limit). Default 1 GiB.
    /// </summary>
    [Range(1, long.MaxValue)]
    public long ExperimentMemoryBytes { get; set; } = 1L << 30;

    /// <summary>
    /// Experiments a silo keeps, results included (a maximal one, 8 variants x 10 repeats x 1000
    /// samples, holds about 32 MB): a new one makes the oldest finished one go; with every kept one
    /// running, 429.
    /// </summary>
    [Range(1, 1024)]
    public int ExperimentsKept { get; set; } = 16;

    /// <summary>A running experiment is cancelled after this long (its reason says so).</summary>
    [Range(1, 86400)]
    public int ExperimentTimeoutSeconds { get; set; } = 600;

    /// <summary>
    /// Uploaded traces a silo keeps for experiments (POST .../experiments/traces), each held as the
    /// bytes sent (gzip or text): a new one makes the oldest go.
    /// </summary>
    [Range(1, 1024)]
    public int ExperimentTraces { get; set; } = 4;

    /// <summary>The largest trace an experiment upload takes, as sent (413 beyond): 64 MiB, a gzipped perf script of about 15 M events.</summary>
    [Range(1, int.MaxValue)]
    public int ExperimentTraceBytes { get; set; } = 64 << 20;

    /// <summary>GET .../experiments/{id}/progress streams open at once on a silo (429 beyond); each ends with its experiment.</summary>
    [Range(1, 1024)]
    public int ExperimentProgressStreams { get; set; } = 16;

    /// <summary>What a trace body may hold (POST /replay's, an experiment's upload): ReplayDecompressedBytes of text, BodyLineBytes a line.</summary>
    public PageAlloc.Domain.Replay.TextBounds TraceBodyBounds() => new(ReplayDecompressedBytes, BodyLineBytes,
        $"Limits:{nameof(ReplayDecompressedBytes)}", $"Limits:{nameof(BodyLineBytes)}");

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (HealthConnections >= MaxConcurrentConnections)
        {
            yield return new ValidationResult(
                $"Limits:HealthConnections {HealthConnections} must be below Limits:MaxConcurrentConnections {MaxConcurrentConnections}.",
                [nameof(HealthConnections)]);
        }
        if (OpenFileLimit() is { } limit && MaxConcurrentConnections > limit - ReservedFileDescriptors)
        {
            yield return new ValidationResult(
                $"Limits:MaxConcurrentConnections {MaxConcurrentConnections} leaves fewer than {ReservedFileDescriptors} of the "
                + $"process's {limit} open files (ulimit -n) for anything else; lower it or raise the limit.",
                [nameof(MaxConcurrentConnections)]);
        }
    }

    /// <summary>The soft RLIMIT_NOFILE, from /proc/self/limits on Linux; null where it cannot be read.</summary>
    public static long? OpenFileLimit()
    {
        const string path = "/proc/self/limits";
        if (!File.Exists(path))
        {
            return null;
        }
        foreach (var line in File.ReadLines(path))
        {
            if (line.StartsWith("Max open files", StringComparison.Ordinal))
            {
                var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                return fields.Length > 0 && long.TryParse(fields[0], out var soft) ? soft : null;
            }
        }
        return null;
    }
}
