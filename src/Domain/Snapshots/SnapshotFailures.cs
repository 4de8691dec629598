namespace PageAlloc.Domain.Snapshots;

/// <summary>The refusals of a snapshot whose checksums match, in the words the user reads.</summary>
internal static class SnapshotFailures
{
    /// <summary>Its bytes do not follow the format.</summary>
    public static SnapshotException Malformed(string what) => new(SnapshotProblem.Malformed, $"the snapshot is malformed: {what}.");

    /// <summary>It follows the format, but what it holds cannot be this machine.</summary>
    public static SnapshotException Inconsistent(string what) => new(SnapshotProblem.Inconsistent, $"the snapshot is inconsistent: {what}.");
}
