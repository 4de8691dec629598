using Microsoft.AspNetCore.Http.HttpResults;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Allocator;

namespace PageAlloc.Api.Machines;

/// <summary>
/// The machine a request is about, resolved once when its parameters are bound (BindAsync), before
/// any filter or the handler runs: from the {machine} route value, or "default" on today's routes,
/// which are its aliases. A handler takes the machine from here, so it cannot read two machines
/// (a reset or a delete in the middle of a request leaves it on the machine it started with).
/// When the machine does not exist (or is another key's), <see cref="Problem"/> says so and
/// <see cref="MachineScopeFilter"/> answers it before the handler.
/// </summary>
// Resolved by the service, not sent by the client: nothing in it to validate, and the validator
// must not walk it (it holds the HttpContext; a page call once paid the whole validator walking one).
// SkipValidation is the framework's way to say so; it is marked experimental in .NET 10 (ASP0029).
#pragma warning disable ASP0029
[Microsoft.Extensions.Validation.SkipValidation]
#pragma warning restore ASP0029
public class MachineScope
{
    private readonly Machine? _machine;

    protected MachineScope(HttpContext http, HostedMachine? hosted, Machine? machine, ProblemHttpResult? problem, bool alias)
    {
        Http = http;
        Hosted = hosted!;
        _machine = machine;
        Problem = problem;
        IsAlias = alias;
    }

    public HttpContext Http { get; }

    /// <summary>
    /// The client hung up (Kestrel saw its connection reset or closed) before the answer was
    /// written: what the call allocated would be held by nobody. One read of the request's abort
    /// token, which Kestrel keeps per connection and resets between requests.
    /// </summary>
    public bool ClientGone => Http.RequestAborted.IsCancellationRequested;

    /// <summary>The machine as a resource (its name, owner, tracepoints, gate); set unless <see cref="Problem"/> is.</summary>
    public HostedMachine Hosted { get; }

    /// <summary>The simulated machine this request works on, read once; set unless <see cref="Problem"/> is.</summary>
    public Machine Machine => _machine!;

    /// <summary>Why the request cannot go on (an unknown machine or zone); null when it can.</summary>
    public ProblemHttpResult? Problem { get; }

    /// <summary>True on today's routes (no /machines/{machine} prefix): they name the default machine.</summary>
    public bool IsAlias { get; }

    /// <summary>The path prefix of this machine's routes as the request named it: "" on the aliases, else /machines/{name}.</summary>
    public string PathBase => IsAlias ? "" : "/machines/" + Hosted.Name;

    public static ValueTask<MachineScope?> BindAsync(HttpContext http)
    {
        var (hosted, problem, alias) = Resolve(http);
        return ValueTask.FromResult<MachineScope?>(new MachineScope(http, hosted, hosted?.Machine, problem, alias));
    }

    /// <summary>The machine the route names, if the caller may use it; touched as used.</summary>
    protected static (HostedMachine? Hosted, ProblemHttpResult? Problem, bool Alias) Resolve(HttpContext http)
    {
        var registry = http.RequestServices.GetRequiredService<MachineRegistry>();
        var alias = http.Request.RouteValues["machine"] is not string;
        var name = alias ? MachineRegistry.DefaultName : (string)http.Request.RouteValues["machine"]!;
        // With keys off, context.User is not asked for: the framework would build an empty principal per request.
        if (registry.Find(name, registry.SecurityEnabled ? http.User : null) is { } hosted)
        {
            hosted.Touch(registry.NowMs);
            return (hosted, null, alias);
        }
        if (registry.MovedAway(name) && !http.Items.ContainsKey(Cluster.MachineForwarding.ForwardedItem))
        {
            // The machine was here when the request was routed and has left since (its silo stops, or
            // it moved): nothing was done; the retry reaches it on its next silo.
            http.Response.Headers.RetryAfter = "1";
            return (null, Problems.Of(ProblemCatalog.MachineUnavailable, $"Machine '{name}' left this silo while the request was routed; nothing was changed. Try again."), alias);
        }
        return (null, Problems.Of(ProblemCatalog.UnknownMachine, $"There is no machine '{name}'. GET /machines lists the machines you may use."), alias);
    }
}

/// <summary>
/// A page call's machine, zone and caller, resolved once (see <see cref="MachineScope"/>): the zone
/// named in the route, found in the request's machine, and the memcg the caller charges and owns.
/// </summary>
public sealed class ZoneScope : MachineScope
{
    private readonly Zone? _zone;

    private ZoneScope(HttpContext http, HostedMachine? hosted, Machine? machine, ProblemHttpResult? problem, bool alias, Zone? zone, Caller caller)
        : base(http, hosted, machine, problem, alias)
    {
        _zone = zone;
        Caller = caller;
    }

    /// <summary>The zone in the route; set unless <see cref="MachineScope.Problem"/> is.</summary>
    public Zone Zone => _zone!;

    /// <summary>Who the call acts for: the memcg charged for its allocations and the owner its frees must match.</summary>
    public Caller Caller { get; }

    /// <summary>The memcg whose pages the caller may change; null for anyone when keys are off, and for administrators.</summary>
    public Memcg? Owner => Caller.Owner;

    /// <summary>The cpu a call runs on: the one asked for, or the one the request's thread is on (smp_processor_id()).</summary>
    public int Cpu(int? asked) => asked ?? Machine.CurrentCpu();

    public static new ValueTask<ZoneScope?> BindAsync(HttpContext http)
    {
        var (hosted, problem, alias) = Resolve(http);
        if (hosted is null)
        {
            return ValueTask.FromResult<ZoneScope?>(new ZoneScope(http, null, null, problem, alias, null, default));
        }
        var machine = hosted.Machine; // read once: the zone, the caller's memcg and the handler's machine are this one
        var name = (string)http.Request.RouteValues["zone"]!;
        if (machine.FindZone(name) is not { } zone)
        {
            return ValueTask.FromResult<ZoneScope?>(new ZoneScope(http, null, null, Problems.UnknownZone(name, machine.Zones.Select(z => z.Key)), alias, null, default));
        }
        return ValueTask.FromResult<ZoneScope?>(new ZoneScope(http, hosted, machine, null, alias, zone, Caller.Of(http, machine)));
    }
}
