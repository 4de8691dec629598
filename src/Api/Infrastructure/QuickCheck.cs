using System.ComponentModel.DataAnnotations;
using System.Linq.Expressions;
using System.Reflection;

namespace PageAlloc.Api.Infrastructure;

/// <summary>
/// One compiled predicate per request type (a record, or a struct bound from the route) that is
/// true only when every DataAnnotations attribute on its properties would pass: [Required], [Range]
/// with int or double bounds on a number, and [MinLength]/[MaxLength] on an array or string. A
/// type with any other attribute (on a property or on the type itself), with
/// IValidatableObject, or with a property the framework would validate member by member gets no
/// predicate, and is always validated by the framework. The predicate may say "not sure" for a
/// valid request (the framework then decides); it never vouches for an invalid one, which
/// QuickCheckTests check against the framework's own attributes.
/// </summary>
public static class QuickCheck
{
    /// <summary>The predicate for <paramref name="type"/>, or null when only the framework can decide.</summary>
    public static Func<object?, bool>? For(Type type)
    {
        if (type == typeof(string) || type.IsPrimitive || type.IsEnum || Nullable.GetUnderlyingType(type) is not null
            || typeof(IValidatableObject).IsAssignableFrom(type) || type.GetCustomAttributes<ValidationAttribute>(inherit: true).Any())
        {
            return null; // a type-level attribute or IValidatableObject: only the framework knows
        }
        var boxed = Expression.Parameter(typeof(object), "request");
        var request = Expression.Variable(type, "typed");
        Expression all = Expression.Constant(true);
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!IsScalar(property.PropertyType))
            {
                return null; // the framework would walk into it
            }
            foreach (var attribute in property.GetCustomAttributes<ValidationAttribute>(inherit: true))
            {
                if (Condition(attribute, Expression.Property(request, property)) is not { } condition)
                {
                    return null;
                }
                all = Expression.AndAlso(all, condition);
            }
        }
        // A null request is left to the framework (it has its own rules for a missing body); a
        // value type (a route value such as a pfn) is checked on its unboxed copy.
        var body = type.IsValueType
            ? Expression.Block(typeof(bool), [request],
                Expression.AndAlso(Expression.TypeIs(boxed, type),
                    Expression.Block(Expression.Assign(request, Expression.Unbox(boxed, type)), all)))
            : Expression.Block(typeof(bool), [request],
                Expression.Assign(request, Expression.TypeAs(boxed, type)),
                Expression.AndAlso(Expression.NotEqual(request, Expression.Constant(null, type)), all));
        return Expression.Lambda<Func<object?, bool>>(body, boxed).Compile();
    }

    private static bool IsScalar(Type type)
    {
        var t = Nullable.GetUnderlyingType(type) ?? type;
        return t.IsPrimitive || t.IsEnum || t == typeof(string) || t == typeof(decimal)
            || (t.IsArray && IsScalar(t.GetElementType()!) && !t.GetElementType()!.IsArray);
    }

    /// <summary>The attribute as an expression that is true only when the attribute passes; null for one not handled.</summary>
    private static Expression? Condition(ValidationAttribute attribute, MemberExpression value) => attribute switch
    {
        _ when attribute.GetType() == typeof(RequiredAttribute) => Required((RequiredAttribute)attribute, value),
        _ when attribute.GetType() == typeof(RangeAttribute) => Range((RangeAttribute)attribute, value),
        _ when attribute.GetType() == typeof(MinLengthAttribute) => Length(value, ((MinLengthAttribute)attribute).Length, ExpressionType.GreaterThanOrEqual),
        _ when attribute.GetType() == typeof(MaxLengthAttribute) => ((MaxLengthAttribute)attribute).Length < 0
            ? Expression.Constant(true)
            : Length(value, ((MaxLengthAttribute)attribute).Length, ExpressionType.LessThanOrEqual),
        _ => null,
    };

    private static Expression? Required(RequiredAttribute required, MemberExpression value)
    {
        if (value.Type == typeof(string))
        {
            return required.AllowEmptyStrings
                ? Expression.NotEqual(value, Expression.Constant(null, typeof(string)))
                : Expression.Not(Expression.Call(typeof(string), nameof(string.IsNullOrWhiteSpace), null, value));
        }
        return value.Type.IsValueType && Nullable.GetUnderlyingType(value.Type) is null
            ? Expression.Constant(true)
            : Expression.NotEqual(value, Expression.Constant(null, value.Type));
    }

    /// <summary>[Range] on a number: null passes, as the attribute lets it; bounds compared as doubles, inclusive bounds only.</summary>
    private static BinaryExpression? Range(RangeAttribute range, MemberExpression value)
    {
        var number = Nullable.GetUnderlyingType(value.Type) ?? value.Type;
        if (range.MinimumIsExclusive || range.MaximumIsExclusive
            || (range.OperandType != typeof(int) && range.OperandType != typeof(double))
            || (number != typeof(int) && number != typeof(long) && number != typeof(double)))
        {
            return null;
        }
        var min = Convert.ToDouble(range.Minimum, System.Globalization.CultureInfo.InvariantCulture);
        var max = Convert.ToDouble(range.Maximum, System.Globalization.CultureInfo.InvariantCulture);
        var scalar = value.Type == number ? (Expression)value : Expression.Property(value, "Value");
        // As the attribute compares: the value made the operand type; in range, an int operand's
        // conversion is exact, and a double operand's is the attribute's own.
        var asDouble = Expression.Convert(scalar, typeof(double));
        var within = Expression.AndAlso(
            Expression.GreaterThanOrEqual(asDouble, Expression.Constant(min)),
            Expression.LessThanOrEqual(asDouble, Expression.Constant(max)));
        return value.Type == number
            ? within
            : Expression.OrElse(Expression.Not(Expression.Property(value, "HasValue")), within);
    }

    /// <summary>[MinLength]/[MaxLength] on an array or string: null passes, as the attributes let it.</summary>
    private static BinaryExpression? Length(MemberExpression value, int bound, ExpressionType compare)
    {
        if (!value.Type.IsArray && value.Type != typeof(string))
        {
            return null;
        }
        var length = value.Type.IsArray ? Expression.ArrayLength(value) : (Expression)Expression.Property(value, nameof(string.Length));
        return Expression.OrElse(
            Expression.Equal(value, Expression.Constant(null, value.Type)),
            Expression.MakeBinary(compare, length, Expression.Constant(bound)));
    }
}
