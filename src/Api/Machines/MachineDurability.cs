namespace PageAlloc.Api.Machines;

/// <summary>
/// A machine's recovery point, as GET /machines/{machine} reports it: when its last snapshot was
/// written to grain storage and how many operations (calls that changed it, resets) it holds, how
/// many the machine has made since (what a lost silo would lose), and where this activation came
/// from (a clean resume, or a recovery after its silo was lost, and what that lost).
/// </summary>
public sealed class MachineDurability(MachineGate gate)
{
    private readonly Lock _lock = new();
    private long _base;

    /// <summary>Operations since the machine was created, across its activations.</summary>
    public long Operations => Volatile.Read(ref _base) + gate.Operations;

    public DateTimeOffset? SnapshotAt { get; private set; }

    public long SnapshotOperations { get; private set; }

    /// <summary>True for a machine made from a snapshot (a restore or a fork): that snapshot is its first recovery point.</summary>
    public bool CreatedFromSnapshot { get; private set; }

    public long SnapshotBytes { get; private set; }

    /// <summary>How long page calls waited while the last snapshot's copy was made.</summary>
    public TimeSpan SnapshotPause { get; private set; }

    /// <summary>How long the last snapshot took, copy, compression and storage write.</summary>
    public TimeSpan SnapshotDuration { get; private set; }

    /// <summary>What this activation started from: the snapshot's time and operations, whether its last activation ended cleanly, and on which silo.</summary>
    public (DateTimeOffset At, long Operations, bool Clean, string? Silo)? ResumedFrom { get; private set; }

    /// <summary>This activation starts from a snapshot (or a machine's creation) holding <paramref name="operations"/>.</summary>
    public void Resumed(DateTimeOffset at, long operations, bool clean, string? silo)
    {
        lock (_lock)
        {
            Volatile.Write(ref _base, operations - gate.Operations);
            SnapshotAt = at;
            SnapshotOperations = operations;
            ResumedFrom = (at, operations, clean, silo);
        }
    }

    /// <summary>A machine made here: its first recovery point is its shape (no snapshot yet), or the snapshot it was made from.</summary>
    public void Created(DateTimeOffset? snapshotAt)
    {
        lock (_lock)
        {
            Volatile.Write(ref _base, -gate.Operations);
            SnapshotAt = snapshotAt;
            CreatedFromSnapshot = snapshotAt is not null;
            SnapshotOperations = 0;
        }
    }

    public void Snapshotted(DateTimeOffset at, long operations, long bytes, TimeSpan pause, TimeSpan duration)
    {
        lock (_lock)
        {
            SnapshotAt = at;
            SnapshotOperations = operations;
            SnapshotBytes = bytes;
            SnapshotPause = pause;
            SnapshotDuration = duration;
        }
    }
}
