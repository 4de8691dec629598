using Microsoft.AspNetCore.Http.Features;

namespace PageAlloc.Api.Cluster;

/// <summary>
/// The reader's side of a relayed stream (GET /machines/{m}/events through a silo that does not
/// hold m): the machine's silo runs the endpoint (<see cref="StreamRelays"/>), this silo writes its
/// status and headers, then pulls its body a long poll at a time and writes each piece as it comes,
/// until the stream ends there, the reader goes away, or this silo stops (as a local stream ends
/// when its host stops). Pulls are sequential, so a slow reader here slows the pulls, and the
/// machine's silo sees it fall behind exactly as it would a slow local reader.
/// </summary>
public static class RelayedAnswer
{
    public static async Task RelayAsync(HttpContext context, IMachineGrain grain, string name, ForwardedRequest request)
    {
        var lifetime = context.RequestServices.GetRequiredService<IHostApplicationLifetime>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, lifetime.ApplicationStopping);
        StreamOpened opened;
        try
        {
            opened = await MachineForwarding.UntilDelivered(() => grain.OpenStream(request), stop.Token);
        }
        catch (Exception failure) when (failure is not OperationCanceledException && ClusterFailures.IsUnavailable(failure))
        {
            await MachineForwarding.UnavailableAsync(context, name, failure);
            return;
        }
        if (opened.NoMachine)
        {
            await Endpoints.MachinesEndpoints.Unknown(name).ExecuteAsync(context);
            return;
        }
        MachineForwarding.Head(context, opened.Status, opened.Headers);
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        var ended = false;
        try
        {
            // The headers go out now, before any event (as a local stream's do): curl -N shows the stream open.
            await context.Response.StartAsync(stop.Token);
            await context.Response.Body.FlushAsync(stop.Token);
            while (!ended)
            {
                var chunk = await grain.ReadStream(opened.Id, stop.Token);
                ended = chunk.Ended;
                if (chunk.Bytes.Length > 0)
                {
                    await context.Response.Body.WriteAsync(chunk.Bytes, stop.Token);
                    await context.Response.Body.FlushAsync(stop.Token);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            // The reader went away or this silo stops: the stream ends here, and there (below).
        }
        catch (Exception failure) when (ClusterFailures.IsUnavailable(failure))
        {
            // The machine's silo went away mid-stream: the answer has started, so it can only end.
        }
        finally
        {
            if (!ended)
            {
                try
                {
                    await grain.CloseStream(opened.Id).WaitAsync(TimeSpan.FromSeconds(5));
                }
                catch (Exception failure) when (failure is TimeoutException || ClusterFailures.IsUnavailable(failure))
                {
                    // Its silo ends a relay nobody pulls within StreamRelays.IdleTimeout anyway.
                }
            }
        }
    }
}
