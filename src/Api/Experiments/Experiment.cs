using PageAlloc.Api.Contracts;
using PageAlloc.Domain.Allocator;
using PageAlloc.Domain.Experiments;

namespace PageAlloc.Api.Experiments;

/// <summary>
/// One experiment as the service holds it: its spec, where it is, and once done its result. It runs
/// on a thread of its own (<see cref="ExperimentRunner"/>'s runs on theirs) from the template the
/// machine was forked into when it was asked for; it ends done, cancelled (DELETE, its timeout, the
/// service stopping, its machine going) or failed, and its forks go with its runs.
/// </summary>
public sealed partial class Experiment : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    private long _doneSteps;
    private volatile string? _cancelReason;
    private volatile ExperimentResultHolder? _ended;

    public Experiment(string id, string machine, string? owner, ExperimentSpec spec, int parallelism, DateTimeOffset createdAt)
    {
        Id = id;
        Machine = machine;
        Owner = owner;
        Spec = spec;
        Parallelism = parallelism;
        CreatedAt = createdAt;
        TotalSteps = Workloads.StepsOf(spec.Workload) * spec.Runs;
    }

    public string Id { get; }

    public string Machine { get; }

    /// <summary>The API key that asked for it (null with keys off).</summary>
    public string? Owner { get; }

    public ExperimentSpec Spec { get; }

    public int Parallelism { get; }

    public DateTimeOffset CreatedAt { get; }

    public long TotalSteps { get; }

    public long DoneSteps => Interlocked.Read(ref _doneSteps);

    /// <summary>Completes when the experiment has ended, whichever way.</summary>
    public Task Completion { get; private set; } = Task.CompletedTask;

    /// <summary>Set once, when it ends: state, reason, time and (when done) the result.</summary>
    private sealed record ExperimentResultHolder(ExperimentState State, string? Reason, DateTimeOffset EndedAt, ExperimentResult? Result);

    public ExperimentState State => _ended?.State ?? ExperimentState.Running;

    public string? Reason => _ended?.Reason;

    public DateTimeOffset? EndedAt => _ended?.EndedAt;

    public ExperimentResult? Result => _ended?.Result;

    public bool IsRunning => _ended is null;

    /// <summary>Starts the runs on a thread of its own, from <paramref name="template"/> (the machine's fork, or its fragmented reboot); the experiment is cancelled after <paramref name="timeout"/>.</summary>
    public void Start(Machine template, TimeSpan timeout, TimeProvider time, ILogger logger)
    {
        _cancel.CancelAfter(timeout);
        var timeoutReason = $"It ran past Limits:ExperimentTimeoutSeconds ({timeout.TotalSeconds:0} s).";
        Completion = Task.Factory.StartNew(() =>
        {
            try
            {
                // A fragmented template was made from the spec already (ExperimentRegistry.Start).
                var result = ExperimentRunner.Run(template, Spec with { Fragment = null }, Parallelism, done => Interlocked.Add(ref _doneSteps, done), _cancel.Token);
                result = result with { Spec = Spec };
                _ended = new(ExperimentState.Done, null, time.GetUtcNow(), result);
            }
            catch (OperationCanceledException)
            {
                _ended = new(ExperimentState.Cancelled, _cancelReason ?? timeoutReason, time.GetUtcNow(), null);
            }
#pragma warning disable CA1031 // a fault of one experiment is its answer (failed, with the reason), not the service's end
            catch (Exception failure)
#pragma warning restore CA1031
            {
                LogFailed(logger, failure, Id, Machine);
                _ended = new(ExperimentState.Failed, $"{failure.GetType().Name}: {failure.Message}", time.GetUtcNow(), null);
            }
            finally
            {
                Dispose(); // the timeout's timer; a later Cancel finds the experiment ended and does nothing
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Asks the runs to stop (they do within 256 steps); <paramref name="reason"/> is what the experiment then says.</summary>
    public void Cancel(string reason)
    {
        _cancelReason ??= reason;
        if (!IsRunning)
        {
            return;
        }
        try
        {
            _cancel.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // It ended meanwhile.
        }
    }

    public void Dispose() => _cancel.Dispose();

    [LoggerMessage(Level = LogLevel.Error, Message = "Experiment {Id} on machine {Machine} failed")]
    private static partial void LogFailed(ILogger logger, Exception failure, string id, string machine);
}
