namespace PageAlloc.Api.Cluster;

/// <summary>
/// One simulated machine, as an Orleans grain keyed by the machine's name. Its activation holds
/// the machine (a <see cref="Machines.HostedMachine"/>, registered in the silo's
/// <see cref="Machines.MachineRegistry"/>) and writes its snapshot to grain storage; a request
/// for it that arrives at another silo is forwarded here (<see cref="Serve"/>). Every method
/// interleaves (the grain is reentrant): the page calls it serves run on the machine's
/// thread-safe domain object side by side, off the grain's scheduler, so its zone and pcp locks
/// contend as they do in-process.
/// </summary>
public interface IMachineGrain : IGrainWithStringKey
{
    /// <summary>Runs a machine-scoped HTTP request that arrived at another silo, here, and answers it.</summary>
    Task<ForwardedResponse> Serve(ForwardedRequest request, CancellationToken cancellationToken);

    /// <summary>
    /// Starts, here, a request that arrived at another silo whose answer is a stream without end
    /// (GET .../events), and answers with its status and headers once it has started; its body is
    /// pulled with <see cref="ReadStream"/> (<see cref="StreamRelays"/>).
    /// </summary>
    Task<StreamOpened> OpenStream(ForwardedRequest request);

    /// <summary>The next bytes of a relayed stream (waiting up to a second for some); Ended when it is complete.</summary>
    Task<StreamChunk> ReadStream(Guid stream, CancellationToken cancellationToken);

    /// <summary>The relayed stream's reader went away: the stream ends here.</summary>
    Task CloseStream(Guid stream);

    /// <summary>Makes this grain the named machine: booted from a shape, or restored from a snapshot. Null when done, else why not (a problem kind and detail).</summary>
    Task<CatalogAnswer?> Create(MachineBirth birth);

    /// <summary>Deletes the machine: its storage is cleared and the activation ends. False when there was no machine.</summary>
    Task<bool> Delete(string why);

    /// <summary>The machine as GET /machines/{machine} describes it (JSON, MachineResponse), or null when there is none.</summary>
    Task<byte[]?> Describe();

    /// <summary>Writes the machine's snapshot to storage now if it changed since the last one; the recovery point moves here.</summary>
    Task Checkpoint();

    /// <summary>Where the machine is activated (the silo's address), activating it if it exists; null when there is none.</summary>
    Task<string?> Locate();
}

/// <summary>A machine's first state: a shape to boot (JSON of MachineConfig) or a snapshot to restore, and who it belongs to.</summary>
[GenerateSerializer, Immutable]
public sealed record MachineBirth(
    [property: Id(0)] string? Owner,
    [property: Id(1)] bool Pinned,
    [property: Id(2)] string? ConfigJson,
    [property: Id(3)] byte[]? Snapshot,
    [property: Id(4)] string How);

/// <summary>An HTTP request for a machine, as the silo that received it forwards it to the machine's silo.</summary>
[GenerateSerializer, Immutable]
public sealed record ForwardedRequest(
    [property: Id(0)] string Endpoint,
    [property: Id(1)] string Method,
    [property: Id(2)] string Path,
    [property: Id(3)] string QueryString,
    [property: Id(4)] KeyValuePair<string, string>[] Headers,
    [property: Id(5)] KeyValuePair<string, string>[] RouteValues,
    [property: Id(6)] byte[] Body,
    [property: Id(7)] string? UserName,
    [property: Id(8)] string[] UserRoles,
    [property: Id(9)] string? AuthenticationType,
    [property: Id(10)] string? RemoteAddress = null); // the client's, for what is shared out per client (event streams)

/// <summary>What the machine's silo answered: status, headers and body; <see cref="NoMachine"/> when the machine does not exist.</summary>
[GenerateSerializer, Immutable]
public sealed record ForwardedResponse(
    [property: Id(0)] int Status,
    [property: Id(1)] KeyValuePair<string, string>[] Headers,
    [property: Id(2)] byte[] Body,
    [property: Id(3)] bool NoMachine)
{
    public static readonly ForwardedResponse Missing = new(404, [], [], NoMachine: true);
}

/// <summary>A relayed stream has started on the machine's silo: its status and headers, and the id to pull its body by.</summary>
[GenerateSerializer, Immutable]
public sealed record StreamOpened(
    [property: Id(0)] Guid Id,
    [property: Id(1)] int Status,
    [property: Id(2)] KeyValuePair<string, string>[] Headers,
    [property: Id(3)] bool NoMachine)
{
    public static readonly StreamOpened Missing = new(Guid.Empty, 404, [], NoMachine: true);
}

/// <summary>Bytes of a relayed stream, as the endpoint wrote them; Ended when there are no more.</summary>
[GenerateSerializer, Immutable]
public sealed record StreamChunk(
    [property: Id(0)] byte[] Bytes,
    [property: Id(1)] bool Ended);
