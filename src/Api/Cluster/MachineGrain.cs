using System.Text.Json;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;
using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Storage;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Domain.Model;
using PageAlloc.Domain.Snapshots;
using PageAlloc.Domain.Tracing;

namespace PageAlloc.Api.Cluster;

/// <summary>
/// A machine's stored state: who it belongs to, its shape, and its last snapshot (the recovery
/// point): the machine as it was at <see cref="SnapshotAt"/>, after <see cref="SnapshotOperations"/>
/// operations. <see cref="Clean"/> says the snapshot was written as its activation ended (a delete
/// aside, nothing after it was lost); false after a periodic one, so an activation that finds it
/// false knows its last silo was lost.
/// </summary>
[GenerateSerializer]
public sealed class MachineState
{
    [Id(0)] public string? Owner { get; set; }
    [Id(1)] public bool Pinned { get; set; }
    [Id(2)] public DateTimeOffset CreatedAt { get; set; }
    [Id(3)] public string ConfigJson { get; set; } = "";
    [Id(4)] public byte[]? Snapshot { get; set; }
    [Id(5)] public DateTimeOffset? SnapshotAt { get; set; }
    [Id(6)] public long SnapshotOperations { get; set; }
    [Id(7)] public bool Clean { get; set; }
    [Id(8)] public string? Silo { get; set; }
    [Id(9)] public Guid WrittenBy { get; set; }
}

/// <summary>
/// <see cref="IMachineGrain"/>. Its activation boots or resumes the machine and registers it in
/// the silo's <see cref="MachineRegistry"/>, where requests that reach this silo find it; it is
/// kept active (a machine is a resource, deleted by its client or for being idle, not collected),
/// and written to storage every Orleans:SnapshotIntervalSeconds while it changes and when the
/// activation ends (the silo stops, or Orleans moves it). A snapshot is taken from a copy made
/// while page calls wait (Machine.Fork, milliseconds), then compressed and written in the
/// background while they go on.
/// </summary>
// Placed on the silo whose request first names it: the balancer spreads requests, so it spreads machines.
[Reentrant, KeepAlive, PreferLocalPlacement]
public sealed partial class MachineGrain(
    [PersistentState("machine", ClusterSetup.Storage)] IPersistentState<MachineState> state,
    MachineRegistry registry,
    IOptions<MachineConfig> defaultConfig,
    IOptions<PageAllocClusterOptions> options,
    ForwardedRequestRunner runner,
    StreamRelays relays,
    ILocalSiloDetails silo,
    TimeProvider time,
    ILogger<MachineGrain> logger) : Grain, IMachineGrain
{
    private static readonly JsonSerializerOptions ConfigJson = new();

    private HostedMachine? _hosted;
    private bool _deleted;
    private Task _checkpointing = Task.CompletedTask; // the snapshot being written: the next waits for it
    private readonly Guid _activation = Guid.NewGuid(); // which activation wrote the stored record (MachineState.WrittenBy)
    private bool _superseded; // another activation wrote the record since this one did: this one is not the machine any more

    private string Name => this.GetPrimaryKeyString();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (state.RecordExists)
        {
            _hosted = Resume();
        }
        else if (Name == MachineRegistry.DefaultName)
        {
            // The configured machine exists from the cluster's first start: booted, stored, catalogued.
            var config = defaultConfig.Value.Copy();
            config.Memcgs = registry.MemcgsFor(config);
            Remember(owner: null, pinned: true, config);
            _hosted = registry.NewHosted(Name, null, pinned: true, config, new Tracepoints(), time.GetUtcNow());
            _hosted.Reset();
            _hosted.Durability.Created(null);
            await WriteAsync();
            await GrainFactory.GetGrain<IMachineCatalogGrain>(IMachineCatalogGrain.Key).EnsureDefault(_hosted.StateBytes);
        }
        if (_hosted is not null)
        {
            Serve(_hosted);
        }
        // Else no such machine (yet): a Create makes it; any other call answers "none" and ends the activation (NoMachine).
    }

    /// <summary>The machine as storage has it: its last snapshot restored, or its shape booted when none was taken yet.</summary>
    private HostedMachine Resume()
    {
        var stored = state.State;
        var config = JsonSerializer.Deserialize<MachineConfig>(stored.ConfigJson, ConfigJson)!;
        var tracepoints = new Tracepoints();
        var hosted = registry.NewHosted(Name, stored.Owner, stored.Pinned, config, tracepoints, stored.CreatedAt);
        if (stored.Snapshot is { } snapshot)
        {
            var machine = MachineSnapshot.Read(new MemoryStream(snapshot, writable: false), tracepoints);
            var how = stored.Clean
                ? $"Resumed (from its snapshot of {stored.SnapshotAt:O}, written as its activation on {stored.Silo} ended)"
                : $"Recovered after its silo {stored.Silo} was lost: from its snapshot of {stored.SnapshotAt:O}, {stored.SnapshotOperations} operations; what it did after is lost";
            hosted.Serve(machine, how);
            hosted.Durability.Resumed(stored.SnapshotAt!.Value, stored.SnapshotOperations, stored.Clean, stored.Silo);
            if (!stored.Clean)
            {
                LogRecovered(logger, Name, stored.Silo ?? "?", stored.SnapshotAt, stored.SnapshotOperations);
            }
        }
        else
        {
            hosted.Reset(); // created, never snapshotted: its shape is all there was
            hosted.Durability.Resumed(stored.CreatedAt, 0, stored.Clean, stored.Silo);
        }
        return hosted;
    }

    /// <summary>
    /// Whether snapshots outlive this process: with Redis storage. The embedded default's storage is
    /// Orleans' in-memory one, itself grains of this silo that end before this one does at shutdown:
    /// there a machine lives as long as its process, and no snapshot is written for nothing.
    /// </summary>
    private bool Durable => options.Value.Clustering == ClusteringKind.Redis;

    private void Serve(HostedMachine hosted)
    {
        registry.Activated(hosted);
        var interval = options.Value.SnapshotIntervalSeconds;
        if (interval > 0 && Durable)
        {
            this.RegisterGrainTimer(_ => CheckpointAsync(clean: false), new GrainTimerCreationOptions
            {
                DueTime = TimeSpan.FromSeconds(interval),
                Period = TimeSpan.FromSeconds(interval),
                Interleave = true,
            });
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_hosted is not { } hosted)
        {
            return;
        }
        // Off the silo's list first: requests that reach this silo from now on are sent to the grain,
        // which Orleans holds until this activation has ended and then activates anew.
        registry.Deactivated(hosted, deleted: _deleted);
        relays.EndAll(Name);
        if (reason.ReasonCode == DeactivationReasonCode.DuplicateActivation)
        {
            // Two silos activated the machine while the cluster's view of itself settled (a silo
            // joining); Orleans keeps the other. This copy's state is not the machine's: writing it
            // would overwrite the survivor's recovery point and leave its etag stale, so that every
            // later snapshot of the survivor failed with a version conflict (seen at cluster start).
            LogDuplicate(logger, Name, hosted.Durability.Operations);
            return;
        }
        if (!_deleted && !_superseded && Durable)
        {
            await CheckpointAsync(clean: true, retire: true);
            LogDeactivated(logger, Name, reason.ReasonCode, hosted.Durability.Operations);
        }
    }

    public async Task<ForwardedResponse> Serve(ForwardedRequest request, CancellationToken cancellationToken)
    {
        if (_hosted is null || _deleted)
        {
            NoMachine();
            return ForwardedResponse.Missing;
        }
        // Off the grain's scheduler: the page calls of many requests run on the machine at once.
        return await Task.Run(() => runner.RunAsync(request, cancellationToken), cancellationToken);
    }

    public async Task<StreamOpened> OpenStream(ForwardedRequest request)
    {
        if (_hosted is null || _deleted)
        {
            NoMachine();
            return StreamOpened.Missing;
        }
        return await relays.OpenAsync(Name, (body, aborted, bind) => runner.RunIntoAsync(request, body, bind, aborted));
    }

    public Task<StreamChunk> ReadStream(Guid stream, CancellationToken cancellationToken) =>
        Task.Run(() => relays.ReadAsync(stream, cancellationToken), cancellationToken);

    public Task CloseStream(Guid stream)
    {
        relays.End(stream);
        return Task.CompletedTask;
    }

    public async Task<CatalogAnswer?> Create(MachineBirth birth)
    {
        if (_hosted is not null || state.RecordExists)
        {
            return new CatalogAnswer(null, ProblemCatalog.MachineExists.Kind, $"A machine named '{Name}' exists already; choose another name or leave it out.");
        }
        var tracepoints = new Tracepoints();
        HostedMachine hosted;
        if (birth.Snapshot is { } snapshot)
        {
            Domain.Allocator.Machine machine;
            try
            {
                machine = await Task.Run(() => MachineSnapshot.Read(new MemoryStream(snapshot, writable: false), tracepoints));
            }
            catch (SnapshotException bad)
            {
                NoMachine();
                return new CatalogAnswer(null, ProblemCatalog.InvalidSnapshot.Kind, bad.Message);
            }
            Remember(birth.Owner, birth.Pinned, machine.Config);
            hosted = registry.NewHosted(Name, birth.Owner, birth.Pinned, machine.Config, tracepoints, state.State.CreatedAt);
            hosted.Serve(machine, birth.How);
            // The snapshot it was made from is its first recovery point.
            state.State.Snapshot = snapshot;
            state.State.SnapshotAt = state.State.CreatedAt;
        }
        else
        {
            var config = JsonSerializer.Deserialize<MachineConfig>(birth.ConfigJson!, ConfigJson)!;
            Remember(birth.Owner, birth.Pinned, config);
            hosted = registry.NewHosted(Name, birth.Owner, birth.Pinned, config, tracepoints, state.State.CreatedAt);
            await Task.Run(hosted.Reset);
        }
        hosted.Durability.Created(state.State.SnapshotAt);
        await WriteAsync();
        _hosted = hosted;
        Serve(hosted);
        return null;
    }

    /// <summary>The stored record of a new machine (no snapshot yet).</summary>
    private void Remember(string? owner, bool pinned, MachineConfig config) =>
        state.State = new MachineState
        {
            Owner = owner,
            Pinned = pinned,
            CreatedAt = time.GetUtcNow(),
            ConfigJson = JsonSerializer.Serialize(config, ConfigJson),
            Silo = silo.SiloAddress.ToString(),
        };

    public async Task<bool> Delete(string why)
    {
        if (_hosted is not { } hosted || _deleted)
        {
            return false;
        }
        _deleted = true;
        registry.Deactivated(hosted, deleted: true);
        // The grain is reentrant: a snapshot being written now must land before the record is deleted,
        // not after (it would bring the deleted machine's record back). Snapshots after this see _deleted.
        await Task.WhenAny(_checkpointing);
        await ClearAsync();
        LogDeleted(logger, Name, why);
        this.DeactivateOnIdle();
        return true;
    }

    public Task<byte[]?> Describe()
    {
        if (_hosted is { } hosted && !_deleted)
        {
            return Task.FromResult<byte[]?>(MachineDescriptions.JsonOf(registry, hosted));
        }
        NoMachine();
        return Task.FromResult<byte[]?>(null);
    }

    /// <summary>An activation with no machine (a name nobody created, or one just deleted) ends after answering.</summary>
    private void NoMachine()
    {
        if (_hosted is null || _deleted)
        {
            this.DeactivateOnIdle();
        }
    }

    public Task Checkpoint() => Durable ? CheckpointAsync(clean: false, requested: true) : Task.CompletedTask;

    public Task<string?> Locate()
    {
        NoMachine();
        return Task.FromResult(_hosted is null || _deleted ? null : silo.SiloAddress.ToString());
    }

    /// <summary>
    /// Writes the machine's snapshot if it changed since the last (always when <paramref name="clean"/>:
    /// the record must say the activation ended well). <paramref name="retire"/>: the last one, after
    /// which no call changes this activation's machine. <paramref name="requested"/>: a client asked
    /// (POST .../checkpoint), so a failed write is thrown to it rather than only logged.
    /// </summary>
    private Task CheckpointAsync(bool clean, bool retire = false, bool requested = false)
    {
        // Grain code runs one piece at a time between awaits, so this chain needs no lock: each
        // snapshot starts after the one before has been written.
        var previous = _checkpointing;
        return _checkpointing = After(previous, clean, retire, requested);
    }

    private async Task After(Task previous, bool clean, bool retire, bool requested)
    {
        await Task.WhenAny(previous); // after it, whether it was written or not: it reported its own failure

        if (_hosted is not { } hosted || _deleted || _superseded)
        {
            return;
        }
        try
        {
            var durability = hosted.Durability;
            if (!clean && durability.Operations == durability.SnapshotOperations && state.State.Snapshot is not null)
            {
                return; // nothing changed since the last snapshot
            }
            var startedAt = time.GetTimestamp();
            // The copy is made with page calls held at the gate (a few ms); the compression and the
            // write to storage run while they go on, from the copy.
            var (snapshot, operations, pause) = await Task.Run(() =>
            {
                var served = hosted.Machine;
                var pausedAt = time.GetTimestamp();
                var (copy, ops) = hosted.Gate.Exclusive(() =>
                {
                    if (retire)
                    {
                        hosted.Retire();
                    }
                    return (served.Fork(new Tracepoints()), hosted.Durability.Operations);
                });
                var paused = time.GetElapsedTime(pausedAt);
                using var file = new MemoryStream();
                MachineSnapshot.Write(copy, file);
                return (file.ToArray(), ops, paused);
            });
            var at = time.GetUtcNow();
            state.State.Snapshot = snapshot;
            state.State.SnapshotAt = at;
            state.State.SnapshotOperations = operations;
            state.State.Clean = clean;
            state.State.Silo = silo.SiloAddress.ToString();
            await WriteAsync();
            durability.Snapshotted(at, operations, snapshot.Length, pause, time.GetElapsedTime(startedAt));
        }
        catch (Exception failure) when (!clean && !requested)
        {
            // A periodic snapshot that fails leaves the last recovery point in place; the next tick tries again.
            LogSnapshotFailed(logger, Name, failure);
        }
    }

    /// <summary>
    /// Writes the record with this activation's mark. Storage refuses a write whose version (etag)
    /// is not the stored one. A write of ours that timed out may have landed after all (Redis ran it
    /// late) under a version we never learnt: then the stored record is ours, and the write is made
    /// again over it. A record another activation wrote means this one is not the machine any more
    /// (the cluster activated it twice): it writes nothing from now on and ends.
    /// </summary>
    private Task WriteAsync()
    {
        state.State.WrittenBy = _activation;
        return PastLateWritesAsync(() => state.WriteStateAsync());
    }

    /// <summary>Deletes the record; past a version that moved under a late write of ours, as <see cref="WriteAsync"/> does.</summary>
    private Task ClearAsync() => PastLateWritesAsync(() => state.ClearStateAsync());

    /// <summary>Runs a write of the record; after a version conflict, once more when the stored record is this activation's own.</summary>
    private async Task PastLateWritesAsync(Func<Task> write)
    {
        var ours = state.State;
        try
        {
            await write();
            return;
        }
        catch (InconsistentStateException)
        {
            if (!await StoredIsOursAsync(ours))
            {
                throw;
            }
        }
        await write();
    }

    /// <summary>
    /// After a version conflict: reads the stored record (and its version) and says whether this
    /// activation wrote it; <paramref name="ours"/> stays the state either way. When another did,
    /// this activation is superseded and ends.
    /// </summary>
    private async Task<bool> StoredIsOursAsync(MachineState ours)
    {
        await state.ReadStateAsync();
        var writer = state.RecordExists ? state.State.WrittenBy : Guid.Empty;
        state.State = ours;
        if (writer == _activation)
        {
            LogLateWrite(logger, Name);
            return true;
        }
        _superseded = true;
        LogSuperseded(logger, Name);
        this.DeactivateOnIdle();
        return false;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Machine {Machine}: a write of its record that had failed landed late; written again over it")]
    private static partial void LogLateWrite(ILogger logger, string machine);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Machine {Machine}: another activation wrote its record; this one writes nothing more and ends")]
    private static partial void LogSuperseded(ILogger logger, string machine);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Machine {Machine} recovered after its silo {Silo} was lost: resumed from its snapshot of {SnapshotAt} ({Operations} operations); what it did after is lost")]
    private static partial void LogRecovered(ILogger logger, string machine, string silo, DateTimeOffset? snapshotAt, long operations);

    [LoggerMessage(Level = LogLevel.Information, Message = "Machine {Machine} deactivated ({Reason}) after {Operations} operations; its snapshot is stored")]
    private static partial void LogDeactivated(ILogger logger, string machine, DeactivationReasonCode reason, long operations);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Machine {Machine}: a duplicate activation of it ended (the cluster keeps the other); its {Operations} operations are not written")]
    private static partial void LogDuplicate(ILogger logger, string machine, long operations);

    [LoggerMessage(Level = LogLevel.Information, Message = "Machine {Machine} deleted: {Why}")]
    private static partial void LogDeleted(ILogger logger, string machine, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Machine {Machine}: a periodic snapshot failed; the last recovery point stays")]
    private static partial void LogSnapshotFailed(ILogger logger, string machine, Exception failure);
}
