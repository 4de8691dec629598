using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Cluster;
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
        var machines = app.MapGroup("/machines").WithTags("Machines").Refuses(NoKey, ProblemCatalog.Unauthenticated)
            .Refuses(UnavailableHelp, ProblemCatalog.MachineUnavailable);
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
        machines.MapGet("/{machine}", Get).WithName("GetMachine").RunsOnMachineSilo()
            .WithSummary("One machine: owner, lifetime, shape and totals")
            .WithDescription("The machine as a resource: its owner (with keys), whether it is pinned, when it was created and last used and when it "
                + "would be deleted for being idle, the page state it is counted for, its shape (what a reset boots) and its zones' totals.")
            .Answers(200, "The machine.")
            .Refuses(UnknownMachineHelp, ProblemCatalog.UnknownMachine);
        machines.MapDelete("/{machine}", Delete).WithName("DeleteMachine").RunsOnMachineSilo()
            .WithSummary("Delete a machine")
            .WithDescription("Requests already running on it finish; later ones get 404. With keys, the owner or an administrator may delete it. "
                + "The default machine cannot be deleted (POST /machines/default/reset reboots it).")
            .Answers(204, "Deleted.")
            .Refuses(UnknownMachineHelp, ProblemCatalog.UnknownMachine)
            .Refuses("The machine is default.", ProblemCatalog.DefaultMachine);
        machines.MapGet("/{machine}/snapshot", Snapshot).WithName("GetMachineSnapshot").RunsOnMachineSilo()
            .WithSummary("The machine's whole state as one file: versioned, checksummed, compressed")
            .WithDescription("Every page's state, the order of every free list and pcp list, every counter, pcp tuning, watermarks, highatomic "
                + "reserves, memcgs and page charges, fail_page_alloc with its random state, and the machine's shape "
                + $"(docs/snapshot-format.md), as {SnapshotMediaType}. POST /machines with it as the body restores it. Page calls on the "
                + "machine wait while it is written (a few milliseconds for the default machine).")
            .Produces<Stream>(200, SnapshotMediaType)
            .Answers(200, "The snapshot.")
            .Refuses(UnknownMachineHelp, ProblemCatalog.UnknownMachine);
        machines.MapPost("/{machine}/checkpoint", Checkpoint).WithName("CheckpointMachine").RunsOnMachineSilo()
            .WithSummary("Write the machine's snapshot to grain storage now: its recovery point moves here")
            .WithDescription("With Redis (Orleans:Clustering), a machine's snapshot is written every Orleans:SnapshotIntervalSeconds while it changes "
                + "and when its grain deactivates; this writes one now, so that losing its silo loses nothing done before this call "
                + "(docs/scale-out.md). Page calls wait only while the copy is made. Answers the machine, with its recovery point. "
                + "With the embedded default (localhost, in-memory storage) nothing outlives the process, and nothing is written.")
            .Answers(200, "The machine, its recovery point just written.")
            .Refuses(UnknownMachineHelp, ProblemCatalog.UnknownMachine);
        machines.MapPost("/{machine}/fork", Fork).WithName("ForkMachine").RunsOnMachineSilo()
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

    private const string UnavailableHelp = "The machine's silo (or the catalog's) is stopping, was lost or did not answer: retry (docs/scale-out.md).";

    private const string UnknownMachineHelp = "No machine has this name, or it is another key's (GET /machines lists yours).";

    /// <param name="name">With a snapshot body: the restored machine's name (made up when left out).</param>
    /// <param name="pinned">With a snapshot body: whether the restored machine is pinned.</param>
    public static async Task<Results<Created<MachineResponse>, ProblemHttpResult, ValidationProblem>> Create(
        HttpRequest request, MachineRegistry registry, ClusterMachines cluster, IOptions<MachineConfig> defaults,
        IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, string? name, bool? pinned, CancellationToken cancellationToken)
    {
        if (request.ContentType?.StartsWith(SnapshotMediaType, StringComparison.OrdinalIgnoreCase) == true)
        {
            return await Restore(request, registry, cluster, name, pinned ?? false, cancellationToken);
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
        var config = (body.Config ?? new MachineShape()).ToConfig(defaults.Value);
        if (config.Validate() is { Count: > 0 } problems)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["config"] = [.. problems] },
                detail: "The machine's shape is invalid: " + string.Join(" ", problems));
        }
        var owner = registry.OwnerFor(request.HttpContext.User);
        var birth = cluster.FromShape(owner, body.Pinned ?? false, config);
        return await Created(registry, cluster, body.Name, owner, config.StateBytes(), birth);
    }

    /// <summary>Makes the machine through the catalog and its grain, and describes it as it is now.</summary>
    private static async Task<Results<Created<MachineResponse>, ProblemHttpResult, ValidationProblem>> Created(
        MachineRegistry registry, ClusterMachines cluster, string? name, string? owner, long bytes, MachineBirth birth)
    {
        var (created, refusal) = await cluster.Create(name, owner, bytes, birth);
        if (refusal is not null)
        {
            return Problems.Of(refusal.Kind, refusal.Detail);
        }
        return TypedResults.Created(Href(created!), await cluster.Describe(created!) ?? throw new InvalidOperationException($"Machine {created} was deleted as it was made."));
    }

    /// <summary>
    /// Restores a snapshot as a new machine. The snapshot is read whole here first: a damaged one is
    /// refused (400) before anything is reserved, and its shape gives the room to reserve. Its grain
    /// then restores it from the same bytes, which are its first recovery point.
    /// </summary>
    private static async Task<Results<Created<MachineResponse>, ProblemHttpResult, ValidationProblem>> Restore(
        HttpRequest request, MachineRegistry registry, ClusterMachines cluster, string? name, bool pinned, CancellationToken cancellationToken)
    {
        if (InvalidName(name) is { } badName)
        {
            return badName;
        }
        // The body is read whole first (bounded by Limits:SnapshotBodyBytes): the reader is synchronous.
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body, cancellationToken);
        var bytes = body.ToArray();
        // Its header gives the shape, hence the room to reserve, before any page is read; the grain
        // then reads it whole (checksum, every section), and a damaged one gives the room back.
        MachineConfig config;
        try
        {
            config = MachineSnapshot.ReadConfig(new MemoryStream(bytes, writable: false));
        }
        catch (SnapshotException bad)
        {
            return Problems.Of(ProblemCatalog.InvalidSnapshot, bad.Message);
        }
        var owner = registry.OwnerFor(request.HttpContext.User);
        return await Created(registry, cluster, name, owner, config.StateBytes(), new MachineBirth(owner, pinned, null, bytes, "Restored (from a snapshot)"));
    }

    public static Results<FileContentHttpResult, ProblemHttpResult> Snapshot(HttpContext http, MachineRegistry registry, string machine)
    {
        if (Find(http, registry, machine) is not { } hosted)
        {
            return Unknown(machine);
        }
        return TypedResults.File(SnapshotOf(hosted), SnapshotMediaType, $"{hosted.Name}.pasnap");
    }

    /// <summary>The machine's snapshot, written while page calls wait at its gate.</summary>
    private static byte[] SnapshotOf(HostedMachine hosted)
    {
        var served = hosted.Machine;
        using var file = new MemoryStream();
        hosted.Gate.Exclusive(() =>
        {
            MachineSnapshot.Write(served, file);
            return true;
        });
        return file.ToArray();
    }

    /// <summary>A fork is the machine's snapshot restored as a new machine: the same bytes a save and a restore would pass.</summary>
    public static async Task<Results<Created<MachineResponse>, ProblemHttpResult, ValidationProblem>> Fork(
        HttpContext http, MachineRegistry registry, ClusterMachines cluster, string machine, ForkMachineRequest? request)
    {
        if (Find(http, registry, machine) is not { } original)
        {
            return Unknown(machine);
        }
        if (InvalidName(request?.Name) is { } badName)
        {
            return badName;
        }
        var owner = registry.OwnerFor(http.User);
        var snapshot = SnapshotOf(original);
        return await Created(registry, cluster, request?.Name, owner, original.Machine.Config.StateBytes(),
            new MachineBirth(owner, request?.Pinned ?? false, null, snapshot, $"Forked (from {original.Name})"));
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

    public static async Task<Ok<MachineListResponse>> List(HttpContext http, MachineRegistry registry, ClusterMachines cluster) =>
        TypedResults.Ok(await cluster.List(registry.SecurityEnabled ? http.User : null));

    public static async Task<Results<Ok<MachineResponse>, ProblemHttpResult>> Checkpoint(
        HttpContext http, MachineRegistry registry, IGrainFactory grains, string machine)
    {
        if (Find(http, registry, machine) is not { } hosted)
        {
            return Unknown(machine);
        }
        try
        {
            await grains.GetGrain<IMachineGrain>(hosted.Name).Checkpoint();
        }
        catch (Exception failure) when (ClusterFailures.IsStorageFailure(failure) || ClusterFailures.IsUnavailable(failure))
        {
            // The write failed (Redis down or slow, a conflicting writer) or its silo did not answer:
            // the recovery point did not move. Anything else is a fault, for the exception handler.
            http.Response.Headers.RetryAfter = "1";
            // Spelled as the answer's durability.snapshotAt is (JSON drops trailing zeros of the fraction, "O" keeps seven digits).
            var at = hosted.Durability.SnapshotAt is { } last ? JsonSerializer.Serialize(last).Trim('"') : "the machine's creation";
            return Problems.Of(ProblemCatalog.MachineUnavailable,
                $"Machine '{machine}''s snapshot could not be written to grain storage ({failure.GetType().Name}): its recovery point stays at {at}. Try again shortly.");
        }
        return TypedResults.Ok(MachineDescriptions.Describe(registry, hosted));
    }

    public static Results<Ok<MachineResponse>, ProblemHttpResult> Get(HttpContext http, MachineRegistry registry, string machine) =>
        Find(http, registry, machine) is { } hosted ? TypedResults.Ok(MachineDescriptions.Describe(registry, hosted)) : Unknown(machine);

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(HttpContext http, MachineRegistry registry, ClusterMachines cluster, string machine)
    {
        if (Find(http, registry, machine) is not { } hosted)
        {
            return Unknown(machine);
        }
        return await cluster.Delete(hosted.Name, "deleted by a client") is { } refusal ? Problems.Of(refusal.Kind, refusal.Detail) : TypedResults.NoContent();
    }

    public static HostedMachine? Find(HttpContext http, MachineRegistry registry, string name)
    {
        var hosted = registry.Find(name, registry.SecurityEnabled ? http.User : null);
        hosted?.Touch(registry.NowMs);
        return hosted;
    }

    public static ProblemHttpResult Unknown(string name) =>
        Problems.Of(ProblemCatalog.UnknownMachine, $"There is no machine '{name}'. GET /machines lists the machines you may use.");

    public static string Href(string name) => MachineDescriptions.Href(name);
}
