using System.Diagnostics;
using PageAlloc.Client;

namespace PageAlloc.LoadGen;

/// <summary>
/// Calls the generated client and times them: a call's outcome is a <see cref="CallResult{T}"/>
/// (the typed answer, or the status and the failure's name), so workloads count failures instead of
/// throwing. Resilience is below, in the client's <see cref="ResilienceHandler"/>.
/// </summary>
public sealed class TimedCalls(IPageAllocClient client)
{
    public async Task<CallResult<T>> Run<T>(Func<IPageAllocClient, CancellationToken, Task<T>> call, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        try
        {
            var value = await call(client, ct);
            return new CallResult<T>(200, value, Stopwatch.GetElapsedTime(start));
        }
        catch (PageAllocApiException e)
        {
            return new CallResult<T>(e.StatusCode, default, Stopwatch.GetElapsedTime(start), e.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch (Exception e) when (e is HttpRequestException or Polly.Timeout.TimeoutRejectedException or Polly.CircuitBreaker.BrokenCircuitException)
        {
            return new CallResult<T>(0, default, Stopwatch.GetElapsedTime(start), e.GetType().Name);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return new CallResult<T>(0, default, Stopwatch.GetElapsedTime(start), "cancelled");
        }
    }
}

/// <summary>One call: the answer when it succeeded; else the HTTP status (0 when no response came) and the failure's name.</summary>
public sealed record CallResult<T>(int Status, T? Value, TimeSpan Latency, string? Failure = null)
{
    public bool IsSuccess => Failure is null;
}
