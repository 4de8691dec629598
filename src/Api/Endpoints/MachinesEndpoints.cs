using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Snapshots;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Api.Endpoints;

/// <summary>
/// /machines: simulated machines as resources. Each has a name, its own shape, owner and lifetime,
/// and every machine-scoped route under /machines/{machine}/ (today's routes are default's).
/// </summary>
public static partial class MachinesEndpoints
{
    private const string NoKey = "API keys are configured and the request has none, or an unknown one.";

    /// <summary>The largest JSON body POST /machines takes: a shape of many nodes fits.</summary>
    public const int CreateBodyBytes = 64 << 10;

    /// <summary>The media type of a snapshot (docs/snapshot-format.md).</summary>
    public const string SnapshotMediaType = "application/vnd.pagealloc.snapshot";

    public static IEndpointRouteBuilder MapMachines(this IEndpointRouteBuilder app)
    {
        var limits = app.ServiceProvider.GetRequiredService<IOptions<LimitsOptions>>().Value;
        var machines = app.MapGroup("/machines").WithTags("Machines").Refuses(NoKey, ProblemCatalog.Unauthenticated);
        machines.MapPost("/", Create).WithName("CreateMachine")
            .WithSummary("Create a machine: booted from a shape (JSON), or restored from a snapshot")
            .WithDescription("With a JSON body {name?, config?, pinned?}: boots a new machine of that shape (the Machine configuration section's: cpus, "
                + "nodes and zones, minFreeKbytes, transparentHugepages; what is left out is the default machine's). With a snapshot body "
                + $"({SnapshotMediaType}, as GET /machines/{{machine}}/snapshot gives, name and pinned in the query): restores it, a machine that "
                + "answers every later call as the original would. With API keys, it belongs to the key (others get 404; administrators see "
                + "every machine) and has a memcg per key as default has. Bounded by Limits:MaxMachines, Limits:MachineMemoryBytes and "
                + "Limits:MachinesPerKey; idle machines are deleted after Limits:MachineIdleMinutes unless pinned.")
            .Accepts<CreateMachineRequest>("application/json", SnapshotMediaType) // routing's content-type check lets both in
            .WithMetadata(new NonJsonBody(SnapshotMediaType), new OptionalBodyMetadata())
            .WithMetadata(new RequestSizeLimitAttribute(limits.SnapshotBodyBytes)) // a JSON body is held to CreateBodyBytes in the handler
            .Answers(201, "The machine (the Location header names it).")
            .Refuses("The name is not a DNS label, the shape is invalid (every bad value named), or the body is not JSON; nothing was created.",
                ProblemCatalog.Validation, ProblemCatalog.MalformedRequest)
            .Refuses("The snapshot is of another format version, damaged, truncated or inconsistent; nothing was created.", ProblemCatalog.InvalidSnapshot)
            .Refuses("A machine of this name exists.", ProblemCatalog.MachineExists)
            .Refuses("The machines would pass Limits:MaxMachines or Limits:MachineMemoryBytes, or the key owns Limits:MachinesPerKey machines.", ProblemCatalog.MachineLimit);
        machines.MapGet("/", List).WithName("ListMachines")
            .WithSummary("The machines the caller may use, and the service's bounds on machines")
            .WithDescription("Every machine when keys are off (or for an administrator); with keys, default and the key's own. Beside them, how many "
                + "machines the service holds of its most (Limits:MaxMachines), and their page state against the memory budget (Limits:MachineMemoryBytes).")
            .Answers(200, "The machines, default first.");
        machines.MapGet("/{machine}", Get).WithName("GetMachine")
            .WithSummary("One machine: owner, lifetime, shape and totals")
            .WithDescription("The machine as a resource: its owner (with keys), whether it is pinned, when it was created and last used and when it "
                + "would be deleted for being idle, the page state it is counted for, its shape (what a reset boots) and its zones' totals.")
            .Answers(200, "The machine.")
            .Refuses(UnknownMachineHelp, ProblemCatalog.UnknownMachine);
        machines.MapDelete("/{machine}", Delete).WithName("DeleteMachine")
            .WithSummary("Delete a machine")
            .WithDescription("Requests already running on it finish; later ones get 404. With keys, the owner or an administrator may delete it. "
                + "The default machine cannot be deleted (POST /machines/default/reset reboots it).")
            .Answers(204, "Deleted.")
            .Refuses(UnknownMachineHelp, ProblemCatalog.UnknownMachine)
            .Refuses("The machine is default.", ProblemCatalog.DefaultMachine);
        machines.MapGet("/{machine}/snapshot", Snapshot).WithName("GetMachineSnapshot")
            .WithSummary("The machine's whole state as one file: versioned, checksummed, compressed")
            .WithDescription("Every page's state, the order of every free list and pcp list, every counter, pcp tuning, watermarks, highatomic "
                + "reserves, memcgs and page charges, fail_page_alloc with its random state, and the machine's shape "
                + $"(docs/snapshot-format.md), as {SnapshotMediaType}. POST /machines with it as the body restores it. Page calls on the "
                + "machine wait while it is written (a few milliseconds for the default machine).")
            .Produces<Stream>(200, SnapshotMediaType)
            .Answers(200, "The snapshot.")
            .Refuses(UnknownMachineHelp, ProblemCatalog.UnknownMachine);
        machines.MapPost("/{machine}/fork", Fork).WithName("ForkMachine")
            .WithSummary("Copy a machine as it is now, as a new machine")
            .WithDescription("The fork starts in the machine's exact state and behaves as the machine would from here: the same answers to the same "
                + "calls. It is a new machine (the caller's, with keys), counted against the same bounds as a create. Page calls on the "
                + "machine wait while it is copied (a few milliseconds for the default machine).")
            .Answers(201, "The fork (the Location header names it).")
            .Refuses(UnknownMachineHelp, ProblemCatalog.UnknownMachine)
            .Refuses("The name is not a DNS label.", ProblemCatalog.Validation, ProblemCatalog.MalformedRequest)
            .Refuses("A machine of this name exists.", ProblemCatalog.MachineExists)
            .Refuses("The fork would pass Limits:MaxMachines or Limits:MachineMemoryBytes, or the key owns Limits:MachinesPerKey machines.", ProblemCatalog.MachineLimit);
        return app;
    }

    private const string UnknownMachineHelp = "No machine has this name, or it is another key's (GET /machines lists yours).";

    /// <param name="name">With a snapshot body: the restored machine's name (made up when left out).</param>
    /// <param name="pinned">With a snapshot body: whether the restored machine is pinned.</param>
    public static async Task<Results<Created<MachineResponse>, ProblemHttpResult, ValidationProblem>> Create(
        HttpRequest request, MachineRegistry registry, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, string? name, bool? pinned,
        CancellationToken cancellationToken)
    {
        if (request.ContentType?.StartsWith(SnapshotMediaType, StringComparison.OrdinalIgnoreCase) == true)
        {
            return await Restore(request, registry, name, pinned ?? false, cancellationToken);
        }
        if (request.HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = CreateBodyBytes; // the endpoint's limit is a snapshot's
        }
        CreateMachineRequest body;
        try
        {
            body = request.ContentLength == 0 || (request.ContentLength is null && request.ContentType is null)
                ? new CreateMachineRequest()
                : await JsonSerializer.DeserializeAsync<CreateMachineRequest>(request.Body, json.Value.SerializerOptions, cancellationToken) ?? new CreateMachineRequest();
        }
        catch (JsonException bad)
        {
            return Problems.Of(ProblemCatalog.MalformedRequest, $"The body is not a machine request: {bad.Message}");
        }
        if (InvalidName(body.Name) is { } badName)
        {
            return badName;
        }
        var config = (body.Config ?? new MachineShape()).ToConfig(registry.Default.Config);
        if (config.Validate() is { Count: > 0 } problems)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["config"] = [.. problems] },
                detail: "The machine's shape is invalid: " + string.Join(" ", problems));
        }
        var (hosted, refusal) = registry.Create(body.Name, registry.OwnerFor(request.HttpContext.User), body.Pinned ?? false, config);
        if (refusal is not null)
        {
            return Problems.Of(refusal.Kind, refusal.Detail);
        }
        return TypedResults.Created(Href(hosted!), Describe(registry, hosted!));
    }

    /// <summary>
    /// Restores a snapshot as a new machine. The snapshot's shape is checked against the bounds (and
    /// its room reserved) from its header, before its pages are read, so a snapshot of a machine that
    /// would not fit allocates nothing; a damaged one is refused and leaves nothing behind.
    /// </summary>
    private static async Task<Results<Created<MachineResponse>, ProblemHttpResult, ValidationProblem>> Restore(
        HttpRequest request, MachineRegistry registry, string? name, bool pinned, CancellationToken cancellationToken)
    {
        if (InvalidName(name) is { } badName)
        {
            return badName;
        }
        // The body is read whole first (bounded by Limits:SnapshotBodyBytes): the reader is synchronous.
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body, cancellationToken);
        body.Position = 0;
        var owner = registry.OwnerFor(request.HttpContext.User);
        MachineReservation? reservation = null;
        MachineRefusal? refusal = null;
        var tracepoints = new Tracepoints();
        PageAlloc.Domain.Allocator.Machine machine;
        try
        {
            machine = MachineSnapshot.Read(body, tracepoints, config =>
            {
                (reservation, refusal) = registry.Reserve(name, owner, config.StateBytes());
                return refusal?.Detail;
            });
        }
        catch (SnapshotException bad)
        {
            if (reservation is not null)
            {
                registry.Cancel(reservation);
            }
            return refusal is not null ? Problems.Of(refusal.Kind, refusal.Detail) : Problems.Of(ProblemCatalog.InvalidSnapshot, bad.Message);
        }
        var hosted = registry.Publish(reservation!, pinned, machine.Config, tracepoints, h => h.Serve(machine, "Restored (from a snapshot)"));
        return TypedResults.Created(Href(hosted), Describe(registry, hosted));
    }

    public static Results<FileContentHttpResult, ProblemHttpResult> Snapshot(HttpContext http, MachineRegistry registry, string machine)
    {
        if (Find(http, registry, machine) is not { } hosted)
        {
            return Unknown(machine);
        }
        var served = hosted.Machine;
        using var file = new MemoryStream();
        hosted.Gate.Exclusive(() =>
        {
            MachineSnapshot.Write(served, file);
            return true;
        });
        return TypedResults.File(file.ToArray(), SnapshotMediaType, $"{hosted.Name}.pasnap");
    }

    public static Results<Created<MachineResponse>, ProblemHttpResult, ValidationProblem> Fork(
        HttpContext http, MachineRegistry registry, string machine, ForkMachineRequest? request)
    {
        if (Find(http, registry, machine) is not { } original)
        {
            return Unknown(machine);
        }
        if (InvalidName(request?.Name) is { } badName)
        {
            return badName;
        }
        var served = original.Machine;
        var config = served.Config;
        var (reservation, refusal) = registry.Reserve(request?.Name, registry.OwnerFor(http.User), config.StateBytes());
        if (reservation is null)
        {
            return Problems.Of(refusal!.Kind, refusal.Detail);
        }
        var tracepoints = new Tracepoints();
        PageAlloc.Domain.Allocator.Machine copy;
        try
        {
            copy = original.Gate.Exclusive(() => served.Fork(tracepoints));
        }
        catch
        {
            registry.Cancel(reservation); // the room reserved for the fork is given back
            throw;
        }
        var hosted = registry.Publish(reservation, request?.Pinned ?? false, config, tracepoints, h => h.Serve(copy, $"Forked (from {original.Name})"));
        return TypedResults.Created(Href(hosted), Describe(registry, hosted));
    }

    /// <summary>A name that is not a DNS label, as a validation problem; null for a good name or none.</summary>
    public static ValidationProblem? InvalidName(string? name)
    {
        if (name is null || MachineRegistry.NamePattern().IsMatch(name))
        {
            return null;
        }
        var message = $"'{name}' is not a machine name: 1..63 of a-z, 0-9 and '-', starting with a letter or digit.";
        return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["name"] = [message] }, detail: message);
    }

    public static Ok<MachineListResponse> List(HttpContext http, MachineRegistry registry)
    {
        var user = registry.SecurityEnabled ? http.User : null;
        var visible = registry.All.Where(m => registry.MayUse(m, user)).Select(m => Describe(registry, m)).ToArray();
        return TypedResults.Ok(new MachineListResponse(visible, registry.Count, registry.MaxMachines, registry.UsedBytes, registry.BudgetBytes));
    }

    public static Results<Ok<MachineResponse>, ProblemHttpResult> Get(HttpContext http, MachineRegistry registry, string machine) =>
        Find(http, registry, machine) is { } hosted ? TypedResults.Ok(Describe(registry, hosted)) : Unknown(machine);

    public static Results<NoContent, ProblemHttpResult> Delete(HttpContext http, MachineRegistry registry, string machine)
    {
        if (Find(http, registry, machine) is not { } hosted)
        {
            return Unknown(machine);
        }
        return registry.Delete(hosted, "deleted by a client") is { } refusal ? Problems.Of(refusal.Kind, refusal.Detail) : TypedResults.NoContent();
    }

    public static HostedMachine? Find(HttpContext http, MachineRegistry registry, string name)
    {
        var hosted = registry.Find(name, registry.SecurityEnabled ? http.User : null);
        hosted?.Touch(registry.NowMs);
        return hosted;
    }

    public static ProblemHttpResult Unknown(string name) =>
        Problems.Of(ProblemCatalog.UnknownMachine, $"There is no machine '{name}'. GET /machines lists the machines you may use.");

    public static string Href(HostedMachine hosted) => "/machines/" + hosted.Name;

    public static MachineResponse Describe(MachineRegistry registry, HostedMachine hosted)
    {
        var now = DateTimeOffset.UtcNow;
        var lastUsed = now.AddMilliseconds(hosted.LastUsedMs - registry.NowMs);
        if (!hosted.IsBooted)
        {
            return new MachineResponse(hosted.Name, hosted.Owner, hosted.Pinned, hosted.CreatedAt, lastUsed, registry.IdleDeadline(hosted), hosted.StateBytes,
                hosted.Config.Cpus, 0, [], new MachineTotals(0, 0, 0, 0, 0), MachineShape.From(hosted.Config), Href(hosted));
        }
        var machine = hosted.Machine;
        var zones = machine.Stats();
        return new MachineResponse(hosted.Name, hosted.Owner, hosted.Pinned, hosted.CreatedAt, lastUsed, registry.IdleDeadline(hosted), hosted.StateBytes,
            machine.Cpus, machine.MinFreeKbytes, [.. machine.Zones.Select(z => z.Key)], MachineTotals.From(zones), MachineShape.From(hosted.Config), Href(hosted));
    }
}
