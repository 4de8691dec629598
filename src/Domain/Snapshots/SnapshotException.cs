namespace PageAlloc.Domain.Snapshots;

/// <summary>
/// A snapshot that <see cref="MachineSnapshot.Read"/> refuses, and why, in a sentence for the user
/// who sent it ("the snapshot is damaged: its body's checksum does not match"). Nothing was built.
/// </summary>
public sealed class SnapshotException : Exception
{
    public SnapshotException()
        : this(SnapshotProblem.Malformed, "the snapshot cannot be read.")
    {
    }

    public SnapshotException(string message)
        : this(SnapshotProblem.Malformed, message)
    {
    }

    public SnapshotException(string message, Exception innerException)
        : this(SnapshotProblem.Malformed, message, innerException)
    {
    }

    public SnapshotException(SnapshotProblem problem, string message, Exception? innerException = null)
        : base(message, innerException) => Problem = problem;

    /// <summary>What kind of refusal this is, for a caller that answers each kind its own way.</summary>
    public SnapshotProblem Problem { get; }
}

/// <summary>The kinds of snapshot <see cref="MachineSnapshot.Read"/> refuses.</summary>
public enum SnapshotProblem
{
    /// <summary>Its first bytes are not a PageAlloc snapshot's magic.</summary>
    NotASnapshot,

    /// <summary>It has another format version than this build reads (versions are refused, never converted).</summary>
    UnsupportedVersion,

    /// <summary>It ends before the lengths its header declares.</summary>
    Truncated,

    /// <summary>A checksum does not match: bytes changed after it was written.</summary>
    Damaged,

    /// <summary>Its checksums match but its bytes do not follow the format (a faulty or hostile writer).</summary>
    Malformed,

    /// <summary>It follows the format, but what it holds cannot be a machine: a configuration that does not validate, counters that do not match the pages.</summary>
    Inconsistent,

    /// <summary>The caller's check of the snapshot's machine configuration refused it (too large for the service, say).</summary>
    Refused,
}
