using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Latchkey.Common;

/// <summary>
/// Writes instants as RFC 3339 UTC with whole seconds (<c>2026-12-06T02:00:00Z</c>), as most APIs
/// do, rather than .NET's default of seven fractional digits and <c>+00:00</c>. Reads any RFC 3339 form.
/// </summary>
public sealed class UtcTimestampConverter : JsonConverter<DateTimeOffset>
{
    public const string Format = "yyyy-MM-dd'T'HH:mm:ss'Z'";

    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetDateTimeOffset();

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(Text(value));

    /// <summary>The instant as this converter writes it, for answers written by hand.</summary>
    public static string Text(DateTimeOffset value) => value.UtcDateTime.ToString(Format, CultureInfo.InvariantCulture);
}
