using Microsoft.AspNetCore.Http.HttpResults;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;
using PageAlloc.Api.Security;
using PageAlloc.Domain.FaultInjection;

namespace PageAlloc.Api.Endpoints;

/// <summary>
/// /sys/kernel/debug/fail_page_alloc: the kernel's page allocation fault injection
/// (Documentation/fault-injection/fault-injection.rst), read as its debugfs files and set at run time.
/// </summary>
public static class FaultInjectionEndpoints
{
    /// <summary>The debugfs files, by name, as the kernel prints them.</summary>
    private static readonly Dictionary<string, Func<FailPageAlloc, string>> Files = new(StringComparer.Ordinal)
    {
        ["probability"] = f => $"{f.Probability}\n",
        ["interval"] = f => $"{f.Interval}\n",
        ["times"] = f => $"{f.Times}\n",
        ["space"] = f => $"{f.Space}\n",
        ["verbose"] = f => $"{f.Verbose}\n",
        ["min-order"] = f => $"{f.MinOrder}\n",
        ["ignore-gfp-wait"] = f => f.IgnoreGfpWait ? "Y\n" : "N\n",
        ["ignore-gfp-highmem"] = f => f.IgnoreGfpHighmem ? "Y\n" : "N\n",
    };

    public static IEndpointRouteBuilder MapFaultInjection(this IEndpointRouteBuilder app)
    {
        const string noKey = "API keys are configured and the request has none, or an unknown one.";
        var group = app.MapGroup("/sys/kernel/debug/fail_page_alloc").WithTags("Fault injection").Refuses(noKey, ProblemCatalog.Unauthenticated);
        group.MapGet("/", Get).WithName("GetFailPageAlloc")
            .WithSummary("fail_page_alloc: every attribute, and the failures injected since boot")
            .WithDescription("The attributes of the kernel's page allocation fault injection (mm/fail_page_alloc.c), one per debugfs file, "
                + "and how many allocations it has failed since the machine booted (counted apart from real failures). A reset boots "
                + "with the kernel's defaults: probability 0 (off), interval 1, times 1, space 0, verbose 2, min-order 1, ignore-gfp-wait "
                + "and ignore-gfp-highmem Y.")
            .Answers(200, "The attributes and the count.");
        group.MapPatch("/", Set).WithName("SetFailPageAlloc")
            .WithSummary("Write fail_page_alloc's debugfs files: probability, interval, times, space, verbose, min-order, ignore-gfp-*")
            .WithDescription("As echo N > /sys/kernel/debug/fail_page_alloc/<file>, for the members given (minOrder is min-order, "
                + "ignoreGfpWait ignore-gfp-wait, ignoreGfpHighmem ignore-gfp-highmem). should_fail_alloc_page() then fails an allocation "
                + "of at least min-order that is not __GFP_NOFAIL (nor may sleep, nor __GFP_HIGHMEM, unless those are let in), once the "
                + "space budget is spent, every interval-th time, with the probability, at most times times. A failed call answers "
                + "507 injected-failure and changes nothing. With API keys, only an administrator may write.")
            .RequireMachineAdministration()
            .Answers(200, "The attributes after the write.")
            .Refuses("A value is out of range (probability 0..100, interval >= 1, times >= -1, space >= 0, verbose 0..2, min-order 0..10; min-order alone: invalid-order); nothing changed.",
                ProblemCatalog.Validation, ProblemCatalog.MalformedRequest)
            .Refuses(MachineEndpoints.NotAdministrator, ProblemCatalog.Forbidden);
        group.MapGet("/{file}", ReadFile).WithName("ReadFailPageAllocFile")
            .WithSummary("One of fail_page_alloc's debugfs files, as cat prints it")
            .WithDescription("probability, interval, times, space, verbose, min-order, ignore-gfp-wait or ignore-gfp-highmem: the value and a newline "
                + "(Y or N for the ignore-gfp files), as the kernel's debugfs prints them.")
            .Produces<string>(200, "text/plain").Answers(200, "The file's text.")
            .Refuses("No such file.", ProblemCatalog.NotFound);
        return app;
    }

    public static Ok<FailPageAllocResponse> Get(MachineScope scope) => TypedResults.Ok(FailPageAllocResponse.From(scope.Machine.FailPageAlloc));

    public static Ok<FailPageAllocResponse> Set(MachineScope scope, FailPageAllocRequest request)
    {
        var f = scope.Machine.FailPageAlloc;
        // Every value was checked before this runs, so the writes cannot fail halfway; each is one
        // debugfs file's write.
        Write(request.Probability, v => f.Probability = v);
        Write(request.Interval, v => f.Interval = v);
        Write(request.Times, v => f.Times = v);
        Write(request.Space, v => f.Space = v);
        Write(request.Verbose, v => f.Verbose = v);
        Write(request.MinOrder, v => f.MinOrder = v);
        Write(request.IgnoreGfpWait, v => f.IgnoreGfpWait = v);
        Write(request.IgnoreGfpHighmem, v => f.IgnoreGfpHighmem = v);
        return TypedResults.Ok(FailPageAllocResponse.From(f));
    }

    /// <summary>Writes a member the request gave; one left out keeps its file's value.</summary>
    private static void Write<T>(T? value, Action<T> write)
        where T : struct
    {
        if (value is { } v)
        {
            write(v);
        }
    }

    public static Results<ContentHttpResult, ProblemHttpResult> ReadFile(MachineScope scope, string file) =>
        Files.TryGetValue(file, out var print)
            ? TypedResults.Text(print(scope.Machine.FailPageAlloc), "text/plain; charset=utf-8")
            : Problems.Of(ProblemCatalog.NotFound, $"/sys/kernel/debug/fail_page_alloc has no file '{file}'. Files: {string.Join(", ", Files.Keys)}.");
}
