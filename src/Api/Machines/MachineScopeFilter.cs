using System.Reflection;
using PageAlloc.Api.Infrastructure;

namespace PageAlloc.Api.Machines;

/// <summary>Marks a call that administers its machine (reset, import, fault injection, ...): with keys, an administrator's or the machine's owner's.</summary>
public sealed class MachineAdministrationMetadata;

/// <summary>
/// Marks a POST that does not change the served machine in place: it works on private machines
/// (tests, replay) or swaps in a new one (reset, import, fragment), so a snapshot need not wait for it.
/// </summary>
public sealed class OutsideMachineGateMetadata;

/// <summary>
/// The filter in front of every machine-scoped endpoint: answers the request's <see cref="MachineScope"/>
/// problem (an unknown machine or zone) before the handler; refuses a call that administers a machine
/// to a key that neither administers the service nor owns the machine; and lets a call that changes
/// the machine in through the machine's <see cref="MachineGate"/>, so that a snapshot or fork never
/// sees it half done. Every endpoint under it must take a scope: one that does not fails the start.
/// </summary>
public static class MachineScopeFilter
{
    public static TBuilder RequireMachineScope<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder
    {
        builder.AddEndpointFilterFactory(Create);
        return builder;
    }

    /// <summary>With keys, only an administrator, or the owner of the machine in the path, may make this call.</summary>
    public static TBuilder RequireMachineAdministration<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new MachineAdministrationMetadata());

    /// <summary>This POST does not change the served machine in place (see <see cref="OutsideMachineGateMetadata"/>).</summary>
    public static TBuilder OutsideMachineGate<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new OutsideMachineGateMetadata());

    private static EndpointFilterDelegate Create(EndpointFilterFactoryContext factory, EndpointFilterDelegate next)
    {
        var index = Array.FindIndex(factory.MethodInfo.GetParameters(), p => typeof(MachineScope).IsAssignableFrom(p.ParameterType));
        if (index < 0)
        {
            throw new InvalidOperationException($"{factory.MethodInfo.DeclaringType?.Name}.{factory.MethodInfo.Name} is mapped under a machine but takes no MachineScope.");
        }
        var registry = factory.ApplicationServices.GetRequiredService<MachineRegistry>();
        // What the endpoint is (it administers, it changes the machine) is in its metadata, which the
        // factory does not see: read from the endpoint on its first request, then kept.
        Kind? kind = null;

        return context =>
        {
            var scope = context.GetArgument<MachineScope>(index);
            if (scope.Problem is { } problem)
            {
                return ValueTask.FromResult<object?>(problem);
            }
            kind ??= KindOf(context.HttpContext.GetEndpoint(), registry.SecurityEnabled);
            if (kind.Value.Administers && !MayAdminister(scope))
            {
                return ValueTask.FromResult<object?>(Problems.Of(ProblemCatalog.Forbidden, scope.Hosted.Owner is null
                    ? $"Only an administrator's key may make this call on the shared machine '{scope.Hosted.Name}'."
                    : $"Only an administrator's key, or the key that owns machine '{scope.Hosted.Name}', may make this call."));
            }
            return kind.Value.Changes ? Gated(scope.Hosted, next, context) : next(context);
        };
    }

    private readonly record struct Kind(bool Administers, bool Changes);

    private static Kind KindOf(Endpoint? endpoint, bool securityEnabled)
    {
        var metadata = endpoint?.Metadata ?? new EndpointMetadataCollection();
        var methods = metadata.OfType<IHttpMethodMetadata>().SelectMany(m => m.HttpMethods);
        return new Kind(
            securityEnabled && metadata.GetMetadata<MachineAdministrationMetadata>() is not null,
            methods.Any(m => m is "POST" or "PATCH" or "PUT" or "DELETE") && metadata.GetMetadata<OutsideMachineGateMetadata>() is null);
    }

    private static bool MayAdminister(MachineScope scope)
    {
        var user = scope.Http.User;
        return MachineRegistry.IsAdministrator(user)
            || (scope.Hosted.Owner is { } owner && string.Equals(user.Identity?.Name, owner, StringComparison.Ordinal));
    }

    /// <summary>Runs the call inside the machine's gate; the synchronous page calls leave it without an await.</summary>
    private static ValueTask<object?> Gated(HostedMachine hosted, EndpointFilterDelegate next, EndpointFilterInvocationContext context)
    {
        var gate = hosted.Gate;
        gate.EnterShared();
        if (hosted.Retired)
        {
            // Its last snapshot is taken: a change now would be lost with this activation. Nothing was
            // done; the retry reaches the machine's next activation.
            gate.ExitShared();
            context.HttpContext.Response.Headers.RetryAfter = "1";
            return ValueTask.FromResult<object?>(Problems.Of(ProblemCatalog.MachineUnavailable,
                $"Machine '{hosted.Name}' is moving to another silo (its silo stops); nothing was changed. Try again."));
        }
        ValueTask<object?> pending;
        try
        {
            pending = next(context);
        }
        catch
        {
            gate.ExitShared();
            throw;
        }
        if (pending.IsCompleted)
        {
            gate.ExitShared();
            return pending;
        }
        return ExitWhenDone(gate, pending);
    }

    private static async ValueTask<object?> ExitWhenDone(MachineGate gate, ValueTask<object?> pending)
    {
        try
        {
            return await pending;
        }
        finally
        {
            gate.ExitShared();
        }
    }
}
