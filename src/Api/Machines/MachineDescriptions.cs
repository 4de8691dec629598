using System.Text.Json;
using PageAlloc.Api.Contracts;

namespace PageAlloc.Api.Machines;

/// <summary>A machine as GET /machines/{machine} describes it, made on the silo that holds it.</summary>
public static class MachineDescriptions
{
    /// <summary>The JSON a grain hands another silo (the Web defaults, as both sides read it).</summary>
    public static readonly JsonSerializerOptions Json = JsonSerializerOptions.Web;

    public static byte[] JsonOf(MachineRegistry registry, HostedMachine hosted) =>
        JsonSerializer.SerializeToUtf8Bytes(Describe(registry, hosted), Json);

    public static MachineResponse? FromJson(byte[] json) => JsonSerializer.Deserialize<MachineResponse>(json, Json);

    public static string Href(string name) => "/machines/" + name;

    public static MachineResponse Describe(MachineRegistry registry, HostedMachine hosted)
    {
        var now = DateTimeOffset.UtcNow;
        var lastUsed = now.AddMilliseconds(hosted.LastUsedMs - registry.NowMs);
        var durability = RecoveryPoint(registry, hosted);
        if (!hosted.IsBooted)
        {
            return new MachineResponse(hosted.Name, hosted.Owner, hosted.Pinned, hosted.CreatedAt, lastUsed, registry.IdleDeadline(hosted), hosted.StateBytes,
                hosted.Config.Cpus, 0, [], new MachineTotals(0, 0, 0, 0, 0), MachineShape.From(hosted.Config), Href(hosted.Name), durability);
        }
        var machine = hosted.Machine;
        var zones = machine.Stats();
        return new MachineResponse(hosted.Name, hosted.Owner, hosted.Pinned, hosted.CreatedAt, lastUsed, registry.IdleDeadline(hosted), hosted.StateBytes,
            machine.Cpus, machine.MinFreeKbytes, [.. machine.Zones.Select(z => z.Key)], MachineTotals.From(zones), MachineShape.From(hosted.Config), Href(hosted.Name), durability);
    }

    private static MachineRecoveryPoint RecoveryPoint(MachineRegistry registry, HostedMachine hosted)
    {
        var d = hosted.Durability;
        var operations = d.Operations;
        var resumed = d.ResumedFrom is { } r
            ? new MachineResume(r.Clean ? "resumed" : "recovered", r.At, r.Operations, r.Clean, r.Silo)
            : new MachineResume("created", d.CreatedFromSnapshot ? hosted.CreatedAt : null, 0, true, null);
        return new MachineRecoveryPoint(registry.SiloAddress, d.SnapshotAt, d.SnapshotOperations, operations, Math.Max(0, operations - d.SnapshotOperations),
            d.SnapshotBytes, d.SnapshotPause.TotalMilliseconds, resumed);
    }
}
