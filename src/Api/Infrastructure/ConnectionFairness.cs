using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Options;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// Who may hold the service's connections (a Kestrel connection middleware, on every endpoint):
/// each client (an IPv4 address, or an IPv6 /64) at most <see cref="LimitsOptions.ConnectionsPerClient"/>,
/// all clients together at most MaxConcurrentConnections less the <see cref="LimitsOptions.HealthConnections"/>
/// kept for health probes. A connection beyond its client's share, or beyond every slot, is closed on
/// accept, before the HTTP server reads a byte of it; one in a health slot is marked
/// (<see cref="HealthOnlyConnection"/>) and may only ask /health/*. This replaces Kestrel's own
/// MaxConcurrentConnections, which counts every connection alike, and logs one warning per refused
/// connection (ConnectionRejected, event 24 of Microsoft.AspNetCore.Server.Kestrel.Connections):
/// refusals here are counted and summed up in one line per <see cref="SummaryInterval"/>.
/// Its cost: one lock, a dictionary lookup and a count, when a connection opens and when it closes;
/// nothing per request.
/// </summary>
public sealed partial class ConnectionFairness : IDisposable
{
    /// <summary>How often refused connections are summed up in the log (when there were any).</summary>
    public static readonly TimeSpan SummaryInterval = TimeSpan.FromSeconds(10);

    /// <summary>A connection in a health slot is closed after this long, whatever it did.</summary>
    public static readonly TimeSpan HealthConnectionLifetime = TimeSpan.FromSeconds(5);

    private readonly Lock _lock = new();
    private readonly Dictionary<UInt128, int> _perClient = [];
    private readonly ILogger<ConnectionFairness> _logger;
    private readonly ITimer _summary;
    private int _open;
    private int _healthPortOpen;
    private long _refusedOverShare;
    private long _refusedFull;
    private string? _lastRefused;

    public ConnectionFairness(IOptions<LimitsOptions> limits, ILogger<ConnectionFairness> logger, TimeProvider time)
    {
        Max = limits.Value.MaxConcurrentConnections;
        General = Max - limits.Value.HealthConnections;
        PerClient = limits.Value.ConnectionsPerClient;
        HealthPort = limits.Value.HealthPort;
        HealthPortMax = limits.Value.HealthConnections;
        _logger = logger;
        _summary = time.CreateTimer(_ => Summarise(), null, SummaryInterval, SummaryInterval);
    }

    /// <summary>Every connection, health slots included (Limits:MaxConcurrentConnections).</summary>
    public int Max { get; }

    /// <summary>The connections for any request: Max less the health slots.</summary>
    public int General { get; }

    /// <summary>One client's share (Limits:ConnectionsPerClient).</summary>
    public int PerClient { get; }

    /// <summary>Connections open now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>The port for health probes only (Limits:HealthPort; 0: none), and how many connections it holds at most.</summary>
    public int HealthPort { get; }

    private int HealthPortMax { get; }

    /// <summary>The connection middleware: admits, refuses, or admits to a health slot.</summary>
    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (HealthPort != 0 && connection.LocalEndPoint is IPEndPoint { Port: var port } && port == HealthPort)
        {
            await OnHealthPortAsync(connection, next);
            return;
        }
        var client = ClientOf(connection.RemoteEndPoint);
        var admission = Admit(client);
        if (admission == Admission.Refused)
        {
            // As Kestrel's own limit closes a connection: the client reads the end of the stream.
            await connection.Transport.Input.CompleteAsync();
            await connection.Transport.Output.CompleteAsync();
            Release(client);
            return;
        }
        try
        {
            if (admission == Admission.HealthOnly)
            {
                await InHealthSlotAsync(connection, next, HealthOnlyConnection.Instance);
            }
            else
            {
                await next(connection);
            }
        }
        finally
        {
            Release(client);
        }
    }

    /// <summary>A connection to the health port: outside the shares, a health slot of its own, at most HealthConnections at once.</summary>
    private async Task OnHealthPortAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        try
        {
            if (Interlocked.Increment(ref _healthPortOpen) > HealthPortMax)
            {
                lock (_lock)
                {
                    _refusedFull++;
                    _lastRefused = Describe(ClientOf(connection.RemoteEndPoint)) + " (on the health port)";
                }
                await connection.Transport.Input.CompleteAsync();
                await connection.Transport.Output.CompleteAsync();
                return;
            }
            await InHealthSlotAsync(connection, next, HealthOnlyConnection.OnHealthPort);
        }
        finally
        {
            Interlocked.Decrement(ref _healthPortOpen);
        }
    }

    /// <summary>Serves a connection that may only ask /health/*, for <see cref="HealthConnectionLifetime"/> at most.</summary>
    private static async Task InHealthSlotAsync(ConnectionContext connection, ConnectionDelegate next, HealthOnlyConnection slot)
    {
        connection.Features.Set(slot);
        using var lifetime = new CancellationTokenSource(HealthConnectionLifetime);
        using var abort = lifetime.Token.Register(static c => ((ConnectionContext)c!).Abort(
            new ConnectionAbortedException("A health slot's connection lives at most " + HealthConnectionLifetime.TotalSeconds + " s.")), connection);
        await next(connection);
    }

    private enum Admission { General, HealthOnly, Refused }

    private Admission Admit(UInt128 client)
    {
        lock (_lock)
        {
            ref var count = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_perClient, client, out _);
            count++;
            _open++;
            if (count > PerClient)
            {
                _refusedOverShare++;
                return Refuse(client);
            }
            if (_open > Max)
            {
                _refusedFull++;
                return Refuse(client);
            }
            return _open > General ? Admission.HealthOnly : Admission.General;
        }
    }

    private Admission Refuse(UInt128 client)
    {
        _lastRefused = Describe(client);
        return Admission.Refused;
    }

    private void Release(UInt128 client)
    {
        lock (_lock)
        {
            _open--;
            ref var count = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrNullRef(_perClient, client);
            if (--count == 0)
            {
                _perClient.Remove(client);
            }
        }
    }

    /// <summary>One line for the refusals since the last: how many, why, and the last client refused.</summary>
    public void Summarise()
    {
        long overShare, full;
        string? last;
        lock (_lock)
        {
            (overShare, full, last) = (_refusedOverShare, _refusedFull, _lastRefused);
            (_refusedOverShare, _refusedFull, _lastRefused) = (0, 0, null);
        }
        if (overShare + full > 0)
        {
            Refused(_logger, overShare + full, (int)SummaryInterval.TotalSeconds, overShare, PerClient, full, Max, last ?? "?");
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "Refused {Count} connections in the last {Seconds} s: {OverShare} beyond their client's share "
        + "(Limits:ConnectionsPerClient {PerClient}), {Full} with every connection taken (Limits:MaxConcurrentConnections {Max}); the last from {Client}.",
        EventName = "ConnectionsRefused")]
    private static partial void Refused(ILogger logger, long count, int seconds, long overShare, int perClient, long full, int max, string client);

    /// <summary>The client a remote address belongs to: an IPv4 address, or an IPv6 address's /64 (one host's, usually).</summary>
    internal static UInt128 ClientOf(EndPoint? endPoint)
    {
        if (endPoint is not IPEndPoint { Address: var address })
        {
            return UInt128.Zero; // a Unix socket, or a test server: one client
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        return address.AddressFamily == AddressFamily.InterNetwork
            ? new UInt128(ulong.MaxValue, BinaryPrimitives.ReadUInt32BigEndian(bytes))
            : new UInt128(0, BinaryPrimitives.ReadUInt64BigEndian(bytes));
    }

    /// <summary>The client an address belongs to, as a refusal names it: "192.0.2.7", "2001:db8::/64", or "a local socket" (no address).</summary>
    internal static string Describe(IPAddress? address) => Describe(address is null ? UInt128.Zero : ClientOf(new IPEndPoint(address, 0)));

    private static string Describe(UInt128 client)
    {
        if (client == UInt128.Zero)
        {
            return "a local socket";
        }
        var (upper, lower) = ((ulong)(client >> 64), (ulong)client);
        if (upper == ulong.MaxValue)
        {
            Span<byte> v4 = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(v4, (uint)lower);
            return new IPAddress(v4).ToString();
        }
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, lower);
        return new IPAddress(bytes).ToString() + "/64";
    }

    public void Dispose()
    {
        _summary.Dispose();
        Summarise();
    }
}

/// <summary>
/// A connection admitted to a health slot (<see cref="ConnectionFairness"/>): it may ask /health/live,
/// /health/ready or /healthz, and is closed after the answer; anything else is 503.
/// </summary>
public sealed class HealthOnlyConnection
{
    /// <summary>A health slot of the service's connections, taken because every other one is.</summary>
    public static readonly HealthOnlyConnection Instance = new("Every connection is taken (Limits:MaxConcurrentConnections); this one is kept for health probes. Retry later.");

    /// <summary>A connection to the health port (Limits:HealthPort).</summary>
    public static readonly HealthOnlyConnection OnHealthPort = new("This port (Limits:HealthPort) serves health probes only: /health/live, /health/ready, /healthz.");

    private readonly string _refusal;

    private HealthOnlyConnection(string refusal) => _refusal = refusal;

    /// <summary>
    /// The HTTP middleware of health slots: one feature lookup per request (and no allocation: the
    /// RequestDelegate overload of Use); on a health slot's
    /// connection, health answers with Connection: close and anything else is 503.
    /// </summary>
    public static Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<HealthOnlyConnection>() is not { } slot)
        {
            return next(context);
        }
        context.Response.Headers.Connection = "close";
        var path = context.Request.Path;
        if (path.StartsWithSegments("/health") || path.Equals("/healthz", StringComparison.Ordinal))
        {
            return next(context);
        }
        context.Response.Headers.RetryAfter = "1";
        return Problems.WriteAsync(context, ProblemCatalog.ServiceFull, slot._refusal).AsTask();
    }
}
