using System.Text.Json;
using System.Text.Json.Serialization;

namespace Latchkey.Common;

/// <summary>
/// Refuses text with a NUL character (<c>\u0000</c>) in request bodies. No Latchkey field has a use
/// for it, and PostgreSQL cannot store it in a text column (the insert fails), so it is a 400 at
/// the edge on every database rather than a 500 on one. Forms, paths and headers with a NUL are
/// refused by ASP.NET Core already.
/// </summary>
public sealed class NulRejectingStringConverter : JsonConverter<string>
{
    public const string Detail = "Text may not contain the NUL character (\\u0000).";

    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        var value = reader.GetString();
        return value is not null && value.Contains('\0') ? throw new JsonException(Detail) : value;
    }

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}
