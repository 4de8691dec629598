using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Replay;

namespace PageAlloc.Api.Endpoints;

/// <summary>
/// POST /replay: a real kernel's kmem trace replayed on a private machine booted from the served
/// configuration (the served zones stay untouched, as for /tests). The body streams through: memory
/// stays bounded by the machine and its live allocations, whatever the trace's length.
/// </summary>
public static class ReplayEndpoints
{
    public static IEndpointRouteBuilder MapReplay(this IEndpointRouteBuilder app)
    {
        var limits = app.ServiceProvider.GetRequiredService<IOptions<LimitsOptions>>().Value;
        app.MapPost("/replay", Replay).WithTags("Tests").WithName("ReplayTrace")
            .WithSummary("Replay a kernel kmem trace (perf script, ftrace or trace-cmd text, gzip accepted) on a private machine")
            .WithDescription("The body is the text `perf script` prints after `perf record -e kmem:mm_page_alloc -e kmem:mm_page_free "
                + "-e kmem:mm_page_free_batched ...` (or ftrace's trace, or trace-cmd report), as application/octet-stream, or gzipped "
                + "as application/gzip. Each mm_page_alloc becomes alloc_pages() with its order and gfp on the zone asked for (the "
                + "zonelist falls back from it), each mm_page_free the free of the block its pfn was given; see the result's skipped "
                + "counts for what could not be replayed and why. The answer sets what the simulator did beside the trace's own "
                + "zone_locked, pcpu_drain and extfrag counts, with the zone's buddyinfo and fragmentation indices over the replay.")
            .Accepts<string>("application/octet-stream", "application/gzip")
            .WithMetadata(new NonJsonBody("application/octet-stream", "application/gzip"))
            .WithMetadata(new RequestSizeLimitAttribute(limits.ReplayBodyBytes))
            .Answers(200, "What the replay did, beside what the kernel's trace says.")
            .Refuses("The body holds no kmem event (not a trace, or not gzip when it says so), or timelineEvery is below 1.",
                ProblemCatalog.NotATrace, ProblemCatalog.Validation)
            .Refuses("The zone is not one of the machine's (GET /zones lists them).", ProblemCatalog.UnknownZone)
            .Refuses("API keys are configured and the request has none, or an unknown one.", ProblemCatalog.Unauthenticated)
            .Refuses("The key is not an administrator's.", ProblemCatalog.Forbidden)
            .Refuses("A replay or a test is already running (one at a time), or the key's request budget is spent.", ProblemCatalog.TooManyRequests)
            .Refuses("The body is past Limits:ReplayBodyBytes, holds a line longer than Limits:BodyLineBytes, or more text than Limits:ReplayDecompressedBytes (after decompression); it was not read further.",
                ProblemCatalog.BodyTooLarge)
            .Refuses("The replay took longer than Limits:TestTimeoutSeconds and was stopped.", ProblemCatalog.Timeout)
            .RequireRateLimiting(TestsEndpoints.OneAtATime)
            .WithRequestTimeout(TestsEndpoints.TestTimeout)
            .EndsWhenTheServiceStops()
            .RequireAdministrator()
            .OutsideMachineGate();
        return app;
    }

    /// <param name="zone">The preferred zone of every allocation (default Normal).</param>
    /// <param name="timelineEvery">Events between two snapshots of the zone (default 10000); doubled as often as the timeline reaches Limits:ReplayTimelinePoints (the result's timelineEvery is the interval used).</param>
    public static async Task<Results<Ok<ReplayResult>, ProblemHttpResult>> Replay(
        MachineScope scope, IOptions<LimitsOptions> limits, HttpRequest request, string? zone, int? timelineEvery, CancellationToken cancellationToken)
    {
        if (timelineEvery is < 1)
        {
            return Problems.Of(ProblemCatalog.Validation, $"timelineEvery must be at least 1, not {timelineEvery}.");
        }
        var machine = new Machine(scope.Hosted.Config);
        if (machine.FindZone(zone ?? "Normal") is not { } preferred)
        {
            return Problems.UnknownZone(zone!, machine.Zones.Select(z => z.Key));
        }
        var gzip = request.ContentType?.StartsWith("application/gzip", StringComparison.OrdinalIgnoreCase) == true;
        ReplayResult result;
        try
        {
            using var lines = TraceInput.Open(request.Body, gzip, limits.Value.TraceBodyBounds());
            result = await new TraceReplayer(machine, preferred, timelineEvery ?? 10_000, limits.Value.ReplayTimelinePoints).ReplayAsync(lines, cancellationToken);
        }
        catch (TextTooLargeException tooLarge)
        {
            return Problems.Of(ProblemCatalog.BodyTooLarge, $"The body: {tooLarge.Message}");
        }
        catch (InvalidDataException bad)
        {
            return Problems.Of(ProblemCatalog.NotATrace, TraceInput.BadGzip(bad, "the body"));
        }
        if (TraceInput.NotATrace(result, "the body") is { } notATrace)
        {
            return Problems.Of(ProblemCatalog.NotATrace, notATrace);
        }
        return TypedResults.Ok(result);
    }
}
