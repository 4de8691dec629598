using Microsoft.AspNetCore.Mvc;
using PageAlloc.Domain.Model;

namespace PageAlloc.Api.Infrastructure;

/// <summary>One kind of problem the service answers with: its status, title, and when it happens.</summary>
public sealed record ProblemKind(string Kind, int Status, string Title, string When)
{
    /// <summary>The RFC 9457 type of this kind: urn:pagealloc:problem:{kind}.</summary>
    public string Type => ProblemCatalog.TypePrefix + Kind;
}

/// <summary>
/// Every problem the service can answer with, in one list: the domain's refusals (one per
/// <see cref="PageErrorKind"/>, spelled kebab-case as every enum is on the wire) and the service's
/// own (unknown zone, validation, authentication, limits). Each problem response carries its kind
/// twice: as the URN in <c>type</c> and as the <c>kind</c> member, so clients can switch on either.
/// The OpenAPI document's problem schema lists these kinds and types; nothing else may go out.
/// </summary>
public static class ProblemCatalog
{
    public const string TypePrefix = "urn:pagealloc:problem:";

    // Kinds the service itself answers with (not domain refusals); named so call sites cannot misspell them.
    public static readonly ProblemKind UnknownZone = new("unknown-zone", 404, "Unknown zone", "The zone in the path is not one of the machine's zones.");
    public static readonly ProblemKind UnknownMachine = new("unknown-machine", 404, "Unknown machine",
        "No machine has the name in the path, or it belongs to another API key (GET /machines lists the ones the caller may use).");
    public static readonly ProblemKind UnknownExperiment = new("unknown-experiment", 404, "Unknown experiment",
        "No experiment of the machine has the id in the path: it never did, it was deleted, it made way for newer ones (Limits:ExperimentsKept), or its machine left this silo.");
    public static readonly ProblemKind ExperimentNotDone = new("experiment-not-done", 409, "Experiment not done",
        "The experiment's timelines were asked for as CSV while it runs, or after it was cancelled or failed (it has none).");
    public static readonly ProblemKind MachineExists = new("machine-exists", 409, "Machine exists", "POST /machines (or a fork) named a machine that exists already.");
    public static readonly ProblemKind MachineLimit = new("machine-limit", 507, "Machine limit reached",
        "Another machine would pass Limits:MaxMachines, Limits:MachineMemoryBytes or the key's Limits:MachinesPerKey; delete one first.");
    public static readonly ProblemKind MachineUnavailable = new("machine-unavailable", 503, "Machine unavailable",
        "The machine's silo is stopping, was lost or did not answer; the machine resumes on another silo from its last snapshot. Retry after Retry-After "
        + "(a call that changes the machine may have been made when its silo did not answer in time).");
    public static readonly ProblemKind DefaultMachine = new("default-machine", 409, "The default machine stays", "DELETE /machines/default: the configured machine cannot be deleted (POST /reset reboots it).");
    public static readonly ProblemKind InvalidSnapshot = new("invalid-snapshot", 400, "Invalid snapshot",
        "The body is not a PageAlloc snapshot of this format version, or it is damaged (its checksum does not match) or inconsistent.");
    public static readonly ProblemKind InvalidPfn = new("invalid-pfn", 400, "Invalid pfn", "The pfn in the path is neither decimal nor 0x-prefixed hex.");
    public static readonly ProblemKind InvalidEventFilter = new("invalid-event-filter", 400, "Invalid event filter", "GET /events was asked for a format, tracepoint or order that does not exist.");
    public static readonly ProblemKind NotATrace = new("not-a-trace", 400, "Not a kmem trace", "POST /replay was given a body with no kmem event in it, or bad gzip.");
    public static readonly ProblemKind InvalidImport = new("invalid-import", 400, "Nothing to import", "The body has no /proc/pagetypeinfo or /proc/buddyinfo rows for the zone, or a count in them or in its /proc/zoneinfo that no zone can hold.");
    public static readonly ProblemKind Validation = new("validation", 400, "One or more validation errors occurred.",
        "A request member is missing or out of range, and the members that failed share no domain kind; errors names each one.");
    public static readonly ProblemKind MalformedRequest = new("malformed-request", 400, "Malformed request", "The body is not JSON, has a member the request does not have, or a value of the wrong type or spelling.");
    public static readonly ProblemKind BodyTooLarge = new("body-too-large", 413, "Body too large", "The body is larger than the endpoint accepts (Limits:PageCallBodyBytes, Limits:BulkBodyBytes, Limits:ReplayBodyBytes, Limits:SnapshotBodyBytes), or a text body has a line longer than Limits:BodyLineBytes or more text than Limits:ReplayDecompressedBytes once decompressed.");
    public static readonly ProblemKind RequestTimeout = new("request-timeout", 408, "Request body too slow",
        "The request body arrived more slowly than Kestrel's minimum data rate (240 bytes/s after a 5 s grace); the connection is closed.");
    public static readonly ProblemKind UnsupportedMediaType = new("unsupported-media-type", 415, "Unsupported media type", "A POST body that is not application/json.");
    public static readonly ProblemKind Unauthenticated = new("unauthenticated", 401, "API key required", "API keys are configured and the request has none, or an unknown one, in X-Api-Key.");
    public static readonly ProblemKind Forbidden = new("forbidden", 403, "Administrators only", "The call (reset, tests) takes an administrator's API key.");
    public static readonly ProblemKind TooManyRequests = new("too-many-requests", 429, "Too many requests",
        "The API key's request budget is spent, a test, replay, experiment or alloc_contig_pages scan is already running, every event or progress stream is open, or /metrics was scraped too often; retry after Retry-After.");
    public static readonly ProblemKind ServiceFull = new("service-full", 503, "Every connection taken",
        "Every connection but those kept for health probes is taken (Limits:MaxConcurrentConnections); this one may only ask /health/*.");
    public static readonly ProblemKind Stopping = new("stopping", 503, "Service stopping",
        "The service is shutting down (SIGTERM): a long call (a test, a replay, an alloc_contig_pages scan) was stopped and changed nothing that is served.");
    public static readonly ProblemKind Booting = new("booting", 503, "Booting", "The machine is booting (at start or during a reset); retry after Retry-After.");
    public static readonly ProblemKind Timeout = new("timeout", 504, "Timed out", "A test ran past Limits:TestTimeoutSeconds.");
    public static readonly ProblemKind NotFound = new("not-found", 404, "Not Found", "No endpoint has this path.");
    public static readonly ProblemKind MethodNotAllowed = new("method-not-allowed", 405, "Method Not Allowed", "The path exists but not with this method.");
    public static readonly ProblemKind ClientGone = new("client-gone", 499, "Client closed request",
        "The client hung up before the answer to its allocation was written; what the call allocated was freed again. Nobody receives this answer: it is for logs and traces (nginx's 499).");
    public static readonly ProblemKind Internal = new("internal", 500, "Internal error", "A fault in the service; it should never happen, and is a bug to report.");

    private static readonly ProblemKind[] ServiceKinds =
        [UnknownZone, UnknownMachine, UnknownExperiment, ExperimentNotDone, MachineExists, MachineLimit, MachineUnavailable, DefaultMachine, InvalidSnapshot, InvalidPfn, InvalidEventFilter, NotATrace, InvalidImport, Validation, MalformedRequest, BodyTooLarge, RequestTimeout, UnsupportedMediaType, Unauthenticated, Forbidden,
         TooManyRequests, ServiceFull, Stopping, Booting, Timeout, NotFound, MethodNotAllowed, ClientGone, Internal];

    private static readonly Dictionary<PageErrorKind, ProblemKind> DomainKinds =
        Enum.GetValues<PageErrorKind>().ToDictionary(k => k, k => new ProblemKind(Slug(k), StatusOf(k), TitleOf(k), WhenOf(k)));

    /// <summary>Every kind: the domain's refusals first, then the service's own.</summary>
    public static IReadOnlyList<ProblemKind> All { get; } = [.. DomainKinds.Values, .. ServiceKinds];

    public static ProblemKind Of(PageErrorKind kind) => DomainKinds[kind];

    /// <summary>
    /// Gives a problem the framework wrote (validation, rate limiting, an unknown route) a kind and a
    /// URN type by its status, so that every problem response has both. Problems the service wrote
    /// already have them. A validation problem's errors are put in the JSON spelling of the request
    /// (<see cref="ValidationProblems"/>), and it is of the domain's kind when every member that failed
    /// is out of range with the same one (<see cref="OutOfRange"/>): its title that kind's, its detail
    /// the messages, its errors still listed. Runs for every problem through AddProblemDetails'
    /// CustomizeProblemDetails.
    /// </summary>
    public static void Complete(ProblemDetails problem, HttpContext? http = null)
    {
        if (problem is HttpValidationProblemDetails validation && http is not null)
        {
            var failures = ValidationProblems.InJsonTerms(validation.Errors, http);
            ValidationProblems.Rewrite(validation, failures);
            if (DomainKindOf(failures) is { } domain && problem.Type?.StartsWith(TypePrefix, StringComparison.Ordinal) != true)
            {
                problem.Type = domain.Type;
                problem.Title = domain.Title;
                problem.Detail = string.Join(" ", failures.SelectMany(f => f.Messages));
            }
        }
        if (problem.Type is not { } type || !type.StartsWith(TypePrefix, StringComparison.Ordinal))
        {
            var kind = problem is HttpValidationProblemDetails ? Validation : ByStatus(problem.Status ?? 500);
            problem.Type = kind.Type;
            problem.Title ??= kind.Title;
        }
        var slug = problem.Type[TypePrefix.Length..];
        problem.Detail ??= All.FirstOrDefault(k => k.Kind == slug)?.When;
        problem.Extensions["kind"] = slug;
    }

    /// <summary>
    /// The domain's kind for a request member out of range, by its JSON name: what the domain answers
    /// for the same mistake where it is the domain that catches it (an order above MAX_PAGE_ORDER is
    /// invalid-order, an empty range invalid-length). Null for a member with no kind of its own.
    /// </summary>
    public static PageErrorKind? OutOfRange(string member) => member switch
    {
        "order" or "minOrder" => PageErrorKind.InvalidOrder,
        "cpu" => PageErrorKind.InvalidCpu,
        "pfn" => PageErrorKind.OutOfZone,
        "nrPages" or "pfns" or "iterations" or "rounds" => PageErrorKind.InvalidLength,
        _ => null,
    };

    /// <summary>The one domain kind of every member that failed, each out of range (not left out); null when there is none or more than one.</summary>
    private static ProblemKind? DomainKindOf(IReadOnlyList<ValidationProblems.Failure> failures)
    {
        PageErrorKind? shared = null;
        foreach (var failure in failures)
        {
            if (failure.Missing || failure.JsonName is not { } name || OutOfRange(name) is not { } kind || (shared is not null && shared != kind))
            {
                return null;
            }
            shared = kind;
        }
        return shared is { } one ? Of(one) : null;
    }

    private static ProblemKind ByStatus(int status) => status switch
    {
        400 => MalformedRequest,
        401 => Unauthenticated,
        403 => Forbidden,
        404 => NotFound,
        405 => MethodNotAllowed,
        408 => RequestTimeout,
        413 => BodyTooLarge,
        415 => UnsupportedMediaType,
        429 => TooManyRequests,
        503 => Booting,
        504 => Timeout,
        _ => Internal,
    };

    private static string Slug(PageErrorKind kind) => System.Text.Json.JsonNamingPolicy.KebabCaseLower.ConvertName(kind.ToString());

    private static int StatusOf(PageErrorKind kind) => kind switch
    {
        PageErrorKind.InvalidOrder or PageErrorKind.InvalidCpu or PageErrorKind.InvalidGfp
            or PageErrorKind.OutOfZone or PageErrorKind.Misaligned or PageErrorKind.InvalidLength => StatusCodes.Status400BadRequest,
        PageErrorKind.OutOfMemory or PageErrorKind.MemcgMax or PageErrorKind.InjectedFailure => StatusCodes.Status507InsufficientStorage,
        PageErrorKind.NotOwner => StatusCodes.Status403Forbidden,
        PageErrorKind.PageFree or PageErrorKind.NotHead or PageErrorKind.WrongOrder or PageErrorKind.CompoundPage
            or PageErrorKind.NotSplit or PageErrorKind.NonCompoundPut or PageErrorKind.HwPoisoned
            or PageErrorKind.ImportDoesNotFit or PageErrorKind.Busy or PageErrorKind.LruPage => StatusCodes.Status409Conflict,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "every PageErrorKind needs a status"),
    };

    private static string TitleOf(PageErrorKind kind) => kind switch
    {
        PageErrorKind.InvalidOrder => "Order out of range",
        PageErrorKind.InvalidCpu => "Unknown cpu",
        PageErrorKind.InvalidGfp => "Invalid gfp flags",
        PageErrorKind.OutOfZone => "Outside the zone",
        PageErrorKind.Misaligned => "Misaligned pfn",
        PageErrorKind.InvalidLength => "Invalid length",
        PageErrorKind.PageFree => "Page is free",
        PageErrorKind.NotHead => "Not the head of an allocation",
        PageErrorKind.WrongOrder => "Wrong order",
        PageErrorKind.CompoundPage => "Compound page",
        PageErrorKind.NotSplit => "Block not split",
        PageErrorKind.NonCompoundPut => "put_page would leak a non-compound block",
        PageErrorKind.HwPoisoned => "Page is HWPoison",
        PageErrorKind.OutOfMemory => "Allocation failed",
        PageErrorKind.MemcgMax => "Memory cgroup limit reached",
        PageErrorKind.NotOwner => "Page belongs to another client",
        PageErrorKind.ImportDoesNotFit => "Import does not fit the zone",
        PageErrorKind.InjectedFailure => "Failure injected",
        PageErrorKind.Busy => "Range busy",
        PageErrorKind.LruPage => "Page belongs to the system",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "every PageErrorKind needs a title"),
    };

    private static string WhenOf(PageErrorKind kind) => kind switch
    {
        PageErrorKind.InvalidOrder => "order is above MAX_PAGE_ORDER (10) or negative, or 0 where the call needs a block to split (the seed test, the fragmenter).",
        PageErrorKind.InvalidCpu => "cpu is not one of the machine's cpus.",
        PageErrorKind.InvalidGfp => "An unknown __GFP_ name, or a combination gfp_zone() rejects.",
        PageErrorKind.OutOfZone => "The pfn or range is not inside the zone in the path.",
        PageErrorKind.Misaligned => "The pfn is not aligned to 1 << order.",
        PageErrorKind.InvalidLength => "A count or length that is zero, negative or too large.",
        PageErrorKind.PageFree => "The page is free (buddy or pcp): a double free or a use after free.",
        PageErrorKind.NotHead => "The page is a tail of an allocation, not its head.",
        PageErrorKind.WrongOrder => "The order is not the one the block was allocated with.",
        PageErrorKind.CompoundPage => "A compound page where order-0 pages are required (split_page, free_contig_range).",
        PageErrorKind.NotSplit => "An order > 0 block that was not split, where order-0 pages are required.",
        PageErrorKind.NonCompoundPut => "put_page on a non-compound order > 0 block would free its head alone and leak its tails.",
        PageErrorKind.HwPoisoned => "The page carries PG_hwpoison and cannot be used this way.",
        PageErrorKind.OutOfMemory => "No zone in the zonelist has a free block of the order above its watermark.",
        PageErrorKind.MemcgMax => "The allocation would take the caller's memory cgroup past memory.max.",
        PageErrorKind.NotOwner => "The page is charged to another API key's memory cgroup.",
        PageErrorKind.ImportDoesNotFit => "The imported free lists have more pages, pageblocks or blocks of a type than the zone can hold without merging.",
        PageErrorKind.InjectedFailure => "fail_page_alloc (/sys/kernel/debug/fail_page_alloc) failed the allocation on purpose, before the allocator ran.",
        PageErrorKind.Busy => "-EBUSY: a page of the range is pinned (in use and not page cache, which is migrated), or another call has its pageblocks isolated.",
        PageErrorKind.LruPage => "The page is the system's (page cache or anon, on an LRU list): only reclaim frees it and only migration moves it.",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "every PageErrorKind needs a description"),
    };
}
