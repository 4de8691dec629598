using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace PageAlloc.Api.OpenApi;

/// <summary>
/// Marks as required every member the serializer always writes, so that generated clients type them
/// as present (<c>long pfn</c>, not <c>long? pfn</c>). Swashbuckle's NonNullableReferenceTypesAsRequired
/// does this for reference types (strings, arrays, objects); this filter does it for value types
/// (numbers, booleans, enums), which it leaves out. A nullable member (<c>int?</c>) and a member
/// skipped when null are not always written, so they stay optional. Request members are all
/// nullable, with [Required] on the ones a client must send, so requests are unaffected.
/// </summary>
public sealed class RequiredMembersSchemaFilter : ISchemaFilter
{
    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (schema is not OpenApiSchema { Properties.Count: > 0 } concrete || context.Type.Namespace?.StartsWith("PageAlloc.", StringComparison.Ordinal) != true)
        {
            return;
        }
        foreach (var property in context.Type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            var name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            if (property.PropertyType.IsValueType && Nullable.GetUnderlyingType(property.PropertyType) is null
                && property.GetCustomAttribute<JsonIgnoreAttribute>() is null && concrete.Properties.ContainsKey(name))
            {
                concrete.Required ??= new HashSet<string>();
                concrete.Required.Add(name);
            }
        }
    }
}
