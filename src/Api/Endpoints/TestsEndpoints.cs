using Microsoft.AspNetCore.Http.HttpResults;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;
using PageAlloc.Api.Security;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Testing;

namespace PageAlloc.Api.Endpoints;

/// <summary>/tests: the kernel's in-kernel tests, run on a private machine.</summary>
public static class TestsEndpoints
{
    /// <summary>The rate-limiter policy that lets one test run at a time.</summary>
    public const string OneAtATime = "tests-one-at-a-time";

    /// <summary>The request-timeout policy of the tests: longer than a maximal run, not unbounded.</summary>
    public const string TestTimeout = "tests-timeout";

    public static IEndpointRouteBuilder MapTests(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/tests").WithTags("Tests")
            .MapPost("/page_alloc_high_order", PageAllocHighOrder)
            .WithName("PageAllocHighOrderTest")
            .WithSummary("The seed's page_alloc_high_order_test (alloc, split_page, free_contig_range) on a private machine")
            .WithDescription("Boots private machines from the configuration of the machine in the path, so it measures the algorithm rather than "
                + "other clients' traffic and leaves the served zones untouched. Runs each strategy asked for (all three when "
                + $"strategy is left out), at most {HighOrderTestRequest.MaxIterations} iterations: first untimed, until the code is "
                + "warm (about a second for a strategy's first run in the process), then `rounds` timed runs, each on a fresh machine; "
                + "a strategy's result is its median round, with every round's time in `nsPerIterationByRound`. One run at a time; others get 429. A run stops when its client goes away or its time runs out (504).")
            .Answers(200, "Each strategy's run: its time per iteration, the state left behind, and whether every block came back.")
            .Refuses("The request is invalid (iterations, order, zone, strategy); nothing ran.", ProblemCatalog.Validation, ProblemCatalog.MalformedRequest,
                ProblemCatalog.Of(PageErrorKind.InvalidOrder), ProblemCatalog.Of(PageErrorKind.OutOfZone), ProblemCatalog.Of(PageErrorKind.InvalidLength))
            .Refuses("API keys are configured and the request has none, or an unknown one.", ProblemCatalog.Unauthenticated)
            .Refuses("The key is not an administrator's.", ProblemCatalog.Forbidden)
            .Refuses("A test is already running (one at a time), or the key's request budget is spent.", ProblemCatalog.TooManyRequests)
            .Refuses("The run took longer than Limits:TestTimeoutSeconds and was stopped.", ProblemCatalog.Timeout)
            .RequireRateLimiting(OneAtATime)
            .WithRequestTimeout(TestTimeout)
            .EndsWhenTheServiceStops()
            .RequireAdministrator()
            .OutsideMachineGate();
        return app;
    }

    public static Results<Ok<HighOrderTestResponse>, ProblemHttpResult> PageAllocHighOrder(MachineScope scope, HighOrderTestRequest request, CancellationToken cancellationToken)
    {
        var zone = request.Zone ?? "Normal";
        var strategies = request.Strategy is { } one ? [one] : Enum.GetValues<FreeStrategy>();
        var results = new List<HighOrderTestResult>();
        foreach (var strategy in strategies)
        {
            var result = PageAllocHighOrderTest.RunRounds(scope.Hosted.Config, zone, strategy, request.Iterations!.Value, request.Order ?? 9,
                request.Rounds ?? HighOrderTestRequest.DefaultRounds, cancellationToken);
            if (result.Error is { } error)
            {
                return Problems.From(error);
            }
            results.Add(result.Value);
        }
        return TypedResults.Ok(new HighOrderTestResponse(request.Iterations!.Value, request.Order ?? 9, zone, [.. results]));
    }
}
