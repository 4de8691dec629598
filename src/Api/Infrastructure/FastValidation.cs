#pragma warning disable ASP0029 // Microsoft.Extensions.Validation's types are marked for evaluation; they are the framework's own validation.
using System.ComponentModel.DataAnnotations;
using System.Reflection;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Validation;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// The framework's request validation (AddValidation: the DataAnnotations on the request records)
/// for the page calls, with a check in front that lets a valid request through for a few
/// comparisons. The framework's filter builds a ValidationContext per parameter and property and
/// awaits each attribute: about a microsecond and a kilobyte per request, as much as the rest of a
/// page call. <see cref="QuickCheck"/> compiles the same attributes into one predicate per request
/// type; only when it cannot vouch for a request does the framework's validator run, so a refusal
/// is the framework's own 400, message for message (both put in the request's JSON terms on the way
/// out, by <see cref="ProblemCatalog.Complete"/>). Endpoints that use this opt out of the
/// framework's filter (DisableValidation), so nothing is validated twice.
/// </summary>
public static class FastValidation
{
    /// <summary>Validates the endpoints' parameters as AddValidation would, at the cost of a predicate when they are valid.</summary>
    public static TBuilder WithFastValidation<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder =>
        builder.DisableValidation().AddEndpointFilterFactory(Create);

    /// <summary>
    /// What is checked for a handler's parameters: each parameter the client sends that the framework
    /// would validate, with its predicate (null: the framework validates it on every request).
    /// </summary>
    public sealed record Checked(int Index, string Name, Type Type, IValidatableInfo Info, Func<object?, bool>? Quick);

    /// <summary>
    /// Types the framework binds from the request's own context, not from anything the client sent.
    /// The runtime resolver calls an HttpContext validatable (it walks its properties), so without
    /// this every call taking one ran the framework's whole validator on it, for nothing.
    /// </summary>
    private static readonly Type[] BoundFromContext =
        [typeof(HttpContext), typeof(HttpRequest), typeof(HttpResponse), typeof(CancellationToken), typeof(System.Security.Claims.ClaimsPrincipal),
         typeof(Stream), typeof(System.IO.Pipelines.PipeReader), typeof(IFormFile), typeof(IFormFileCollection), typeof(IFormCollection)];

    /// <summary>The parameters of <paramref name="handler"/> that are validated, and how; empty when none is.</summary>
    public static Checked[] Plan(IServiceProvider services, MethodInfo handler)
    {
        var options = services.GetService<IOptions<ValidationOptions>>()?.Value;
        if (options is null || options.Resolvers.Count == 0)
        {
            return [];
        }
        var isService = services.GetService<IServiceProviderIsService>();
        var parameters = handler.GetParameters();
        var checkedParameters = new List<Checked>();
        for (var i = 0; i < parameters.Length; i++)
        {
            var parameter = parameters[i];
            if (isService?.IsService(parameter.ParameterType) == true || parameter.GetCustomAttributes().OfType<IFromServiceMetadata>().Any()
                || BoundFromContext.Contains(parameter.ParameterType))
            {
                continue; // services and what the request itself binds carry nothing the client sent
            }
            if (options.TryGetValidatableParameterInfo(parameter, out var info))
            {
                checkedParameters.Add(new Checked(i, parameter.Name!, parameter.ParameterType, info, QuickCheck.For(parameter.ParameterType)));
            }
        }
        return [.. checkedParameters];
    }

    private static EndpointFilterDelegate Create(EndpointFilterFactoryContext factory, EndpointFilterDelegate next)
    {
        var all = Plan(factory.ApplicationServices, factory.MethodInfo);
        if (all.Length == 0)
        {
            return next;
        }
        var options = factory.ApplicationServices.GetRequiredService<IOptions<ValidationOptions>>().Value;
        return context => AllVouchedFor(all, context) ? next(context) : ValidateAsync(all, options, context, next);
    }

    private static bool AllVouchedFor(Checked[] all, EndpointFilterInvocationContext context)
    {
        foreach (var parameter in all)
        {
            if (parameter.Quick is not { } quick || !quick(context.Arguments[parameter.Index]))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>The framework's validation, as its endpoint filter runs it, and its 400 when something fails.</summary>
    private static async ValueTask<object?> ValidateAsync(Checked[] all, ValidationOptions options, EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        ValidateContext? validate = null;
        foreach (var parameter in all)
        {
            var argument = context.Arguments[parameter.Index];
            var validationContext = new ValidationContext(argument ?? Placeholder(parameter.Type), parameter.Name, http.RequestServices, items: null);
            validate ??= new ValidateContext { ValidationOptions = options, ValidationContext = validationContext };
            validate.ValidationContext = validationContext;
            await parameter.Info.ValidateAsync(argument, validate, http.RequestAborted);
        }
        if (validate is not { ValidationErrors.Count: > 0 })
        {
            return await next(context);
        }
        http.Response.StatusCode = StatusCodes.Status400BadRequest;
        var problem = new HttpValidationProblemDetails(validate.ValidationErrors) { Status = StatusCodes.Status400BadRequest };
        var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
        await problems.WriteAsync(new ProblemDetailsContext { HttpContext = http, ProblemDetails = problem });
        return EmptyHttpResult.Instance;
    }

    /// <summary>ValidationContext needs an instance even when nothing was bound; the framework's filter uses these.</summary>
    private static object Placeholder(Type type) =>
        Nullable.GetUnderlyingType(type) is { } value ? Activator.CreateInstance(value)!
        : type.IsClass ? System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(type)
        : string.Empty;
}
