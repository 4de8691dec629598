using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using PageAlloc.Api.Infrastructure;
using PageAlloc.Api.Machines;
using PageAlloc.Domain.Experiments;

namespace PageAlloc.Api.Experiments;

/// <summary>A refused experiment: the problem kind and why.</summary>
public sealed record ExperimentRefusal(ProblemKind Kind, string Detail);

/// <summary>
/// The experiments this silo holds, for the machines activated here (an experiment runs where its
/// machine is, as every machine-scoped route does). Bounded on purpose: Limits:ExperimentsRunning
/// at once, Limits:ExperimentsKept in all (the oldest finished makes way), each one's forks within
/// Limits:ExperimentMemoryBytes, each cancelled after Limits:ExperimentTimeoutSeconds, all of them
/// when the service stops, and a machine's when it leaves this silo (deleted or moved).
/// Experiments are results, not state: they are not written to grain storage.
/// </summary>
public sealed class ExperimentRegistry : IDisposable
{
    private readonly Lock _lock = new();
    private readonly List<Experiment> _experiments = []; // oldest first
    private readonly LimitsOptions _limits;
    private readonly TimeProvider _time;
    private readonly ILogger<ExperimentRegistry> _logger;
    private readonly CancellationTokenRegistration _stopping;
    private int _progressStreams;

    public ExperimentRegistry(IOptions<LimitsOptions> limits, TimeProvider time, IHostApplicationLifetime lifetime, MachineRegistry machines, ILogger<ExperimentRegistry> logger)
    {
        _limits = limits.Value;
        _time = time;
        _logger = logger;
        _stopping = lifetime.ApplicationStopping.Register(() => CancelAll("The service is stopping."));
        machines.MachineLeft += name => RemoveMachine(name);
    }

    public int Kept => _limits.ExperimentsKept;

    public int ProgressStreams => _limits.ExperimentProgressStreams;

    /// <summary>
    /// Forks the machine (under its gate: no page call inside) into the experiment's template and starts
    /// the runs; or says why not (too many running, every kept one running, forks that would not fit).
    /// </summary>
    public (Experiment? Started, ExperimentRefusal? Refused) Start(HostedMachine hosted, string? owner, ExperimentSpec spec)
    {
        var forkBytes = Math.Max(1, hosted.Machine.Config.StateBytes());
        var fits = _limits.ExperimentMemoryBytes / forkBytes - 1; // the template, then one fork per run at once
        if (fits < 1)
        {
            return (null, new(ProblemCatalog.MachineLimit, $"An experiment on machine '{hosted.Name}' needs two forks of {forkBytes} bytes each "
                + $"(the template and one run) at least; Limits:ExperimentMemoryBytes is {_limits.ExperimentMemoryBytes}."));
        }
        var parallelism = (int)Math.Min(Math.Min(_limits.ExperimentParallelism, fits), spec.Runs);
        Experiment experiment;
        lock (_lock)
        {
            var running = _experiments.Count(e => e.IsRunning);
            if (running >= _limits.ExperimentsRunning)
            {
                return (null, new(ProblemCatalog.TooManyRequests, $"{running} experiment(s) already running here (Limits:ExperimentsRunning {_limits.ExperimentsRunning}): "
                    + "try again when it has ended (GET .../experiments/{id}/progress follows one), or DELETE it."));
            }
            if (_experiments.Count >= _limits.ExperimentsKept)
            {
                if (_experiments.FirstOrDefault(e => !e.IsRunning) is not { } oldest)
                {
                    return (null, new(ProblemCatalog.TooManyRequests, $"Every one of the {_limits.ExperimentsKept} experiments kept here is running (Limits:ExperimentsKept)."));
                }
                _experiments.Remove(oldest);
            }
            experiment = new Experiment(NewId(), hosted.Name, owner, spec, parallelism, _time.GetUtcNow());
            _experiments.Add(experiment);
        }
        // The template is made once the running place is taken, so racing starts cannot boot more
        // machines than Limits:ExperimentsRunning allows. A fragmented start is the machine's shape
        // booted afresh and fragmented (the machine itself is not read); refused, it gives the place back.
        Domain.Allocator.Machine template;
        if (spec.Fragment is { } fragment)
        {
            var made = ExperimentRunner.Fragmented(hosted.Machine.Config, spec.Workload.Zone, fragment);
            if (made.Error is { } error)
            {
                lock (_lock)
                {
                    _experiments.Remove(experiment);
                }
                experiment.Dispose();
                return (null, new(ProblemCatalog.Of(error.Kind), error.Detail));
            }
            template = made.Value;
        }
        else
        {
            template = hosted.Gate.Exclusive(() => hosted.Machine.Fork());
        }
        experiment.Start(template, TimeSpan.FromSeconds(_limits.ExperimentTimeoutSeconds), _time, _logger);
        return (experiment, null);
    }

    /// <summary>The machine's experiments, newest first.</summary>
    public IReadOnlyList<Experiment> Of(string machine)
    {
        lock (_lock)
        {
            return [.. _experiments.Where(e => e.Machine == machine).Reverse()];
        }
    }

    public Experiment? Find(string machine, string id)
    {
        lock (_lock)
        {
            return _experiments.FirstOrDefault(e => e.Machine == machine && e.Id == id);
        }
    }

    /// <summary>Cancels the experiment if it runs and forgets it: its forks go with its runs.</summary>
    public async Task<bool> DeleteAsync(string machine, string id)
    {
        Experiment? experiment;
        lock (_lock)
        {
            experiment = _experiments.FirstOrDefault(e => e.Machine == machine && e.Id == id);
            if (experiment is not null)
            {
                _experiments.Remove(experiment);
            }
        }
        if (experiment is null)
        {
            return false;
        }
        experiment.Cancel("It was deleted.");
        await experiment.Completion; // its runs have stopped and their forks are garbage when DELETE answers
        return true;
    }

    /// <summary>Takes a place for a progress stream (Limits:ExperimentProgressStreams); false when none is left.</summary>
    public bool TryOpenProgressStream()
    {
        if (Interlocked.Increment(ref _progressStreams) <= _limits.ExperimentProgressStreams)
        {
            return true;
        }
        Interlocked.Decrement(ref _progressStreams);
        return false;
    }

    public void CloseProgressStream() => Interlocked.Decrement(ref _progressStreams);

    private void RemoveMachine(string name)
    {
        List<Experiment> gone;
        lock (_lock)
        {
            gone = [.. _experiments.Where(e => e.Machine == name)];
            _experiments.RemoveAll(e => e.Machine == name);
        }
        foreach (var experiment in gone)
        {
            experiment.Cancel($"Its machine '{name}' was deleted or moved to another silo.");
        }
    }

    private void CancelAll(string reason)
    {
        lock (_lock)
        {
            foreach (var experiment in _experiments)
            {
                experiment.Cancel(reason);
            }
        }
    }

    /// <summary>An id no other experiment here has: 12 hex digits, random (ids say nothing about how many ran).</summary>
    private static string NewId() => "x" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    public void Dispose() => _stopping.Dispose();
}
