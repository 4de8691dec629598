using System.ComponentModel;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Http.HttpResults;
using PageAlloc.Api.Cluster;
using PageAlloc.Api.Contracts;
using PageAlloc.Api.Experiments;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Api.OpenApi;
using PageAlloc.Domain.Experiments;

namespace PageAlloc.Api.Endpoints;

/// <summary>
/// /experiments: one workload on forks of the machine, a fork per variant and repeat, run side by
/// side; their timelines and summary as JSON or CSV, their progress as Server-Sent Events.
/// </summary>
public static class ExperimentsEndpoints
{
    public const string CsvMediaType = "text/csv";

    public static IEndpointRouteBuilder MapExperiments(this IEndpointRouteBuilder app)
    {
        var limits = app.ServiceProvider.GetRequiredService<Microsoft.Extensions.Options.IOptions<LimitsOptions>>().Value;
        var experiments = app.MapGroup("/experiments").WithTags("Experiments")
            .Refuses("API keys are configured and the request has none, or an unknown one.", ProblemCatalog.Unauthenticated);
        experiments.MapPost("/", Start).WithName("StartExperiment")
            .WithSummary("Run a workload on forks of the machine: one fork per variant and repeat, side by side")
            .WithDescription("The machine is forked as it is (page calls wait a few milliseconds), and each variant changes its own forks "
                + "(a free strategy, min_free_kbytes, fail_page_alloc) before the workload runs: the seed loop, the vmalloc loop, LoadGen's "
                + "mix, or a real kernel trace, with a range user beside a mix or a trace if asked. The runs go in parallel where cores "
                + "allow, each on one thread, so a run's timeline depends only on the machine, its variant and the seed. The answer comes "
                + "at once (202): follow .../progress, then GET the experiment for its timelines and summary. The machine itself is not "
                + "changed. With API keys, an administrator or the machine's owner may start one.")
            .Answers(202, "The experiment, running (the Location header names it).")
            .Refuses("A member is out of range, a zone or trace is unknown, two variants share a name; nothing ran.", ProblemCatalog.Validation, ProblemCatalog.MalformedRequest)
            .Refuses(MachineEndpoints.NotAdministrator, ProblemCatalog.Forbidden)
            .Refuses("An experiment already runs here (Limits:ExperimentsRunning), or every kept one runs (Limits:ExperimentsKept).", ProblemCatalog.TooManyRequests)
            .Refuses("Two forks of the machine do not fit Limits:ExperimentMemoryBytes.", ProblemCatalog.MachineLimit)
            .Refuses("The fragment's free lists do not fit the zone without merging; nothing ran.", ProblemCatalog.Of(Domain.Model.PageErrorKind.ImportDoesNotFit))
            .RequireMachineAdministration()
            .OutsideMachineGate(); // it forks the machine under the gate itself, and changes nothing served
        experiments.MapPost("/traces", UploadTrace).WithName("UploadExperimentTrace")
            .WithSummary("Upload a kernel kmem trace for the machine's experiments to replay (workload.trace names it)")
            .WithDescription("The body is what POST /replay takes: perf script, ftrace or trace-cmd text as application/octet-stream, or "
                + "gzipped as application/gzip. It is checked as a replay reads it (lines at most Limits:BodyLineBytes, at least one kmem "
                + "event) and kept as sent, on the machine's silo, for `{\"workload\":{\"kind\":\"trace\",\"trace\":name}}`; one of the same "
                + "name is replaced. A silo keeps Limits:ExperimentTraces uploads, the oldest making way; they go with the machine.")
            .Accepts<string>("application/octet-stream", "application/gzip")
            .WithMetadata(new NonJsonBody("application/octet-stream", "application/gzip"))
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(limits.ExperimentTraceBytes))
            .Answers(201, "The trace as kept.")
            .Refuses("name is not 1..64 of a-z, A-Z, 0-9, '-', '_' and '.', or names a built-in trace; or the body holds no kmem event (not a trace, or bad gzip).",
                ProblemCatalog.Validation, ProblemCatalog.NotATrace)
            .Refuses("The body is past Limits:ExperimentTraceBytes, or has a line longer than Limits:BodyLineBytes, or more text than Limits:ReplayDecompressedBytes once gunzipped.", ProblemCatalog.BodyTooLarge)
            .Refuses(MachineEndpoints.NotAdministrator, ProblemCatalog.Forbidden)
            .Refuses("A replay, a test or another upload is being read (one at a time: reading a trace is a replay's parse), or the key's request budget is spent.", ProblemCatalog.TooManyRequests)
            .Refuses("Reading the trace took longer than Limits:TestTimeoutSeconds and was stopped.", ProblemCatalog.Timeout)
            .RequireRateLimiting(TestsEndpoints.OneAtATime)
            .WithRequestTimeout(TestsEndpoints.TestTimeout)
            .EndsWhenTheServiceStops()
            .RequireMachineAdministration()
            .OutsideMachineGate();
        experiments.MapGet("/traces", ListTraces).WithName("ListExperimentTraces")
            .WithSummary("The traces the machine's experiments can replay: the built-in ones, and those uploaded for it")
            .WithDescription("Each with its lines and kmem events; workload.trace names one.")
            .Answers(200, "The traces.");
        experiments.MapGet("/", List).WithName("ListExperiments")
            .WithSummary("The machine's experiments, newest first, without their results")
            .WithDescription("Every experiment this silo keeps for the machine (Limits:ExperimentsKept in all, the oldest finished making way), "
                + "running or ended, with its state, progress and spec; GET one for its timelines and summary.")
            .Answers(200, "The experiments.");
        experiments.MapGet("/{id}", Get).WithName("GetExperiment")
            .WithSummary("One experiment: its state and progress, and once done every run's timeline and the summary side by side")
            .WithDescription("timelines=false leaves the timelines out. .../timeline.csv has them as CSV.")
            .Answers(200, "The experiment.")
            .Refuses("The machine has no experiment of this id.", ProblemCatalog.UnknownExperiment);
        experiments.MapGet("/{id}/timeline.csv", Csv).WithName("GetExperimentTimelineCsv")
            .WithSummary("Every run's timeline as CSV, once the experiment is done")
            .WithDescription("A row per sample (RFC 4180): variant, repeat, step, free pages and pcp pages, free blocks, unusable_index and "
                + "extfrag_index per order, and the run's counters since it began, for a spreadsheet, pandas or gnuplot.")
            .Produces<string>(200, CsvMediaType)
            .Answers(200, "The timelines.")
            .Refuses("The machine has no experiment of this id.", ProblemCatalog.UnknownExperiment)
            .Refuses("The experiment runs, or was cancelled or failed: it has no timelines.", ProblemCatalog.ExperimentNotDone);
        experiments.MapGet("/{id}/progress", Progress).WithName("ExperimentProgress")
            .WithSummary("The experiment's progress as Server-Sent Events, until it ends")
            .WithDescription("A `progress` event (doneSteps, totalSteps, fraction) about four times a second while it runs, then one `end` "
                + "event with the experiment (without its timelines), and the stream ends.")
            .Produces<ExperimentProgress>(200, "text/event-stream")
            .Answers(200, "The stream.")
            .Refuses("The machine has no experiment of this id.", ProblemCatalog.UnknownExperiment)
            .Refuses("Every progress stream is open (Limits:ExperimentProgressStreams).", ProblemCatalog.TooManyRequests)
            .StreamsFromMachineSilo();
        experiments.MapDelete("/{id}", Delete).WithName("DeleteExperiment")
            .WithSummary("Cancel the experiment if it runs, and delete it")
            .WithDescription("Its runs stop within 256 steps and their forks go with them, before the answer.")
            .Answers(204, "Deleted.")
            .Refuses("The machine has no experiment of this id.", ProblemCatalog.UnknownExperiment)
            .Refuses(MachineEndpoints.NotAdministrator, ProblemCatalog.Forbidden)
            .RequireMachineAdministration()
            .OutsideMachineGate();
        return app;
    }

    public static Results<Accepted<ExperimentResponse>, ProblemHttpResult, ValidationProblem> Start(
        MachineScope scope, ExperimentRegistry registry, MachineRegistry machines, ExperimentTraces traces, ExperimentRequest request)
    {
        var spec = request.ToSpec();
        if (spec.Workload.Trace is { } name && !KnownTraces.Exists(name) && traces.Find(scope.Hosted.Name, name) is { } uploaded)
        {
            spec = spec with { Workload = spec.Workload with { Source = uploaded.Trace } };
        }
        if (spec.Validate(scope.Machine) is { Count: > 0 } problems)
        {
            var errors = problems.GroupBy(p => p.Field).ToDictionary(g => g.Key, g => g.Select(p => p.Problem).ToArray());
            return TypedResults.ValidationProblem(errors, detail: string.Join(" ", problems.Select(p => $"{p.Field}: {p.Problem}")));
        }
        var (started, refused) = registry.Start(scope.Hosted, machines.OwnerFor(scope.Http.User), spec);
        if (refused is not null)
        {
            if (refused.Kind == ProblemCatalog.TooManyRequests)
            {
                scope.Http.Response.Headers.RetryAfter = "10";
            }
            return Problems.Of(refused.Kind, refused.Detail);
        }
        var response = Describe(scope, started!, timelines: false);
        return TypedResults.Accepted(response.Href, response);
    }

    public static async Task<Results<Created<ExperimentTraceResponse>, ProblemHttpResult, ValidationProblem>> UploadTrace(
        MachineScope scope, ExperimentTraces traces, Microsoft.Extensions.Options.IOptions<LimitsOptions> limits, HttpRequest request,
        [Description("The trace's name, for workload.trace: 1..64 of a-z, A-Z, 0-9, '-', '_' and '.'.")] string name, CancellationToken cancellationToken)
    {
        if (name.Length is < 1 or > 64 || name.AsSpan().ContainsAnyExcept(TraceNameCharacters) || KnownTraces.Exists(name))
        {
            var message = KnownTraces.Exists(name) ? $"'{name}' is a built-in trace's name." : $"'{name}' is not a trace name: 1..64 of a-z, A-Z, 0-9, '-', '_' and '.'.";
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["name"] = [message] }, detail: message);
        }
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body, cancellationToken); // bounded by the endpoint's RequestSizeLimit (413 past it)
        var bytes = body.ToArray();
        long lines = 0, events = 0;
        try
        {
            using var reader = PageAlloc.Domain.Replay.TraceInput.Open(new MemoryStream(bytes, writable: false), PageAlloc.Domain.Replay.TraceInput.IsGzip(bytes),
                limits.Value.TraceBodyBounds());
            while (await reader.ReadLineAsync(cancellationToken) is { } line)
            {
                lines++;
                events += PageAlloc.Domain.Replay.KmemTraceParser.TryParse(line, out _) ? 1 : 0;
            }
        }
        catch (PageAlloc.Domain.Replay.TextTooLargeException tooLarge)
        {
            return Problems.Of(ProblemCatalog.BodyTooLarge, $"The body: {tooLarge.Message}");
        }
        catch (InvalidDataException bad)
        {
            return Problems.Of(ProblemCatalog.NotATrace, PageAlloc.Domain.Replay.TraceInput.BadGzip(bad, "the body"));
        }
        if (events == 0)
        {
            return Problems.Of(ProblemCatalog.NotATrace, $"The body holds no kmem event in its {lines} lines: it is not a perf script, ftrace or trace-cmd kmem trace.");
        }
        var kept = new UploadedTrace(scope.Hosted.Name, WorkloadTrace.FromBytes(name, bytes, lines), events, bytes.Length, DateTimeOffset.UtcNow);
        traces.Add(kept);
        return TypedResults.Created($"{scope.PathBase}/experiments/traces", Describe(kept));
    }

    private static readonly System.Buffers.SearchValues<char> TraceNameCharacters =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    public static Ok<ExperimentTraceListResponse> ListTraces(MachineScope scope, ExperimentTraces traces, Microsoft.Extensions.Options.IOptions<LimitsOptions> limits) =>
        TypedResults.Ok(new ExperimentTraceListResponse(
            [.. KnownTraces.Names.Order(StringComparer.Ordinal).Select(n => new ExperimentTraceResponse(n, "built-in", KnownTraces.Lines(n).Count, KnownTraces.Events(n), 0)),
             .. traces.Of(scope.Hosted.Name).Select(Describe)],
            limits.Value.ExperimentTraces));

    private static ExperimentTraceResponse Describe(UploadedTrace t) => new(t.Trace.Name, "uploaded", t.Trace.LineCount, t.Events, t.Bytes);

    public static Ok<ExperimentListResponse> List(MachineScope scope, ExperimentRegistry registry) =>
        TypedResults.Ok(new ExperimentListResponse([.. registry.Of(scope.Hosted.Name).Select(e => Describe(scope, e, timelines: false))], registry.Kept));

    public static Results<Ok<ExperimentResponse>, ProblemHttpResult> Get(MachineScope scope, ExperimentRegistry registry, string id,
        [Description("Whether the answer carries every run's timeline (default true).")] bool? timelines) =>
        registry.Find(scope.Hosted.Name, id) is { } experiment
            ? TypedResults.Ok(Describe(scope, experiment, timelines ?? true))
            : Unknown(scope, id);

    public static Results<ContentHttpResult, ProblemHttpResult> Csv(MachineScope scope, ExperimentRegistry registry, string id)
    {
        if (registry.Find(scope.Hosted.Name, id) is not { } experiment)
        {
            return Unknown(scope, id);
        }
        return experiment.Result is { } result
            ? TypedResults.Text(ExperimentSummary.TimelineCsv(result), CsvMediaType + "; charset=utf-8")
            : Problems.Of(ProblemCatalog.ExperimentNotDone, $"Experiment {id} is {experiment.State.ToString().ToLowerInvariant()}: only a done experiment has timelines.");
    }

    public static async Task<Results<NoContent, ProblemHttpResult>> Delete(MachineScope scope, ExperimentRegistry registry, string id) =>
        await registry.DeleteAsync(scope.Hosted.Name, id) ? TypedResults.NoContent() : Unknown(scope, id);

    public static IResult Progress(MachineScope scope, ExperimentRegistry registry, IHostApplicationLifetime lifetime, string id, CancellationToken cancellationToken)
    {
        if (registry.Find(scope.Hosted.Name, id) is not { } experiment)
        {
            return Unknown(scope, id);
        }
        if (!registry.TryOpenProgressStream())
        {
            scope.Http.Response.Headers.RetryAfter = "5";
            return Problems.Of(ProblemCatalog.TooManyRequests, $"Every one of the {registry.ProgressStreams} progress streams is open (Limits:ExperimentProgressStreams).");
        }
        return TypedResults.ServerSentEvents(Events(scope, registry, experiment, lifetime.ApplicationStopping, cancellationToken));
    }

    /// <summary>Progress while it runs (when it moved, every 250 ms at most), then the end; the place is given back however the stream ends.</summary>
    private static async IAsyncEnumerable<SseItem<object>> Events(MachineScope scope, ExperimentRegistry registry, Experiment experiment,
        CancellationToken stopping, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        try
        {
            long last = -1;
            while (experiment.IsRunning && !stopping.IsCancellationRequested)
            {
                var done = experiment.DoneSteps;
                if (done != last)
                {
                    last = done;
                    yield return new SseItem<object>(ProgressOf(experiment), "progress");
                }
                await Task.WhenAny(experiment.Completion, Task.Delay(250, cancellationToken));
                cancellationToken.ThrowIfCancellationRequested();
            }
            await experiment.Completion.WaitAsync(cancellationToken);
            yield return new SseItem<object>(ProgressOf(experiment), "progress");
            yield return new SseItem<object>(Describe(scope, experiment, timelines: false), "end");
        }
        finally
        {
            registry.CloseProgressStream();
        }
    }

    private static ExperimentProgress ProgressOf(Experiment e)
    {
        var done = e.State == ExperimentState.Done ? e.TotalSteps : Math.Min(e.DoneSteps, e.TotalSteps);
        return new ExperimentProgress(done, e.TotalSteps, e.TotalSteps == 0 ? 1 : Math.Round((double)done / e.TotalSteps, 4));
    }

    public static ExperimentResponse Describe(MachineScope scope, Experiment e, bool timelines)
    {
        var result = e.Result;
        return new ExperimentResponse(e.Id, e.Machine, $"{scope.PathBase}/experiments/{e.Id}", e.State, e.Reason, e.CreatedAt, e.EndedAt,
            ProgressOf(e), e.Parallelism, e.Spec, result?.Summary, timelines ? result?.Variants : null);
    }

    private static ProblemHttpResult Unknown(MachineScope scope, string id) =>
        Problems.Of(ProblemCatalog.UnknownExperiment, $"Machine '{scope.Hosted.Name}' has no experiment '{id}'. GET {scope.PathBase}/experiments lists its experiments.");
}
