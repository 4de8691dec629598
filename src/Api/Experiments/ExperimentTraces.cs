using Microsoft.Extensions.Options;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Domain.Experiments;

namespace PageAlloc.Api.Experiments;

/// <summary>An uploaded trace as the service keeps it: what a workload reads, and what it was.</summary>
public sealed record UploadedTrace(string Machine, WorkloadTrace Trace, long Events, long Bytes, DateTimeOffset UploadedAt);

/// <summary>
/// The traces clients uploaded for their machines' experiments, on the machine's silo (where its
/// experiments run). Bounded: Limits:ExperimentTraces in all (the oldest makes way), each at most
/// Limits:ExperimentTraceBytes as sent; a machine's go when it leaves this silo.
/// </summary>
public sealed class ExperimentTraces
{
    private readonly Lock _lock = new();
    private readonly List<UploadedTrace> _traces = []; // oldest first
    private readonly LimitsOptions _limits;

    public ExperimentTraces(IOptions<LimitsOptions> limits, MachineRegistry machines)
    {
        _limits = limits.Value;
        machines.MachineLeft += name =>
        {
            lock (_lock)
            {
                _traces.RemoveAll(t => t.Machine == name);
            }
        };
    }

    /// <summary>Keeps the trace under its name (replacing one of that name), the oldest going past the bound.</summary>
    public void Add(UploadedTrace trace)
    {
        lock (_lock)
        {
            _traces.RemoveAll(t => t.Machine == trace.Machine && t.Trace.Name == trace.Trace.Name);
            _traces.Add(trace);
            while (_traces.Count > _limits.ExperimentTraces)
            {
                _traces.RemoveAt(0);
            }
        }
    }

    public UploadedTrace? Find(string machine, string name)
    {
        lock (_lock)
        {
            return _traces.FirstOrDefault(t => t.Machine == machine && t.Trace.Name == name);
        }
    }

    public IReadOnlyList<UploadedTrace> Of(string machine)
    {
        lock (_lock)
        {
            return [.. _traces.Where(t => t.Machine == machine)];
        }
    }
}
