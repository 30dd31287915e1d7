using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Latchkey.Features.SecurityEvents;

/// <summary>An event as the API and the JSON Lines export show it.</summary>
public sealed record SecurityEventView(
    long Id, string Type, DateTimeOffset OccurredAt, string? SubjectId, string? ClientId, string? IpAddress, string? UserAgent, string? Detail)
{
    public static SecurityEventView From(SecurityEvent e) =>
        new(e.Id, e.Type, e.OccurredAt, e.SubjectId, e.ClientId, e.IpAddress, e.UserAgent, e.Detail);
}

public enum SecurityEventExportFormat
{
    JsonLines,
    Csv,
}

/// <summary>Writes a whole history as JSON Lines or CSV, row by row, to a response body.</summary>
public static class SecurityEventExport
{
    public const string Formats = "jsonl, csv";

    private static readonly string[] CsvColumns = ["id", "type", "occurred_at", "subject_id", "client_id", "ip_address", "user_agent", "detail"];

    public static bool TryParseFormat(string? value, out SecurityEventExportFormat format)
    {
        switch (value?.ToLowerInvariant())
        {
            case null or "" or "jsonl":
                format = SecurityEventExportFormat.JsonLines;
                return true;
            case "csv":
                format = SecurityEventExportFormat.Csv;
                return true;
            default:
                format = default;
                return false;
        }
    }

    public static string ContentType(SecurityEventExportFormat format) =>
        format == SecurityEventExportFormat.Csv ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8";

    public static string FileName(SecurityEventExportFormat format, DateTimeOffset now) =>
        $"security-events-{now.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture)}.{(format == SecurityEventExportFormat.Csv ? "csv" : "jsonl")}";

    public static async Task WriteAsync(Stream body, SecurityEventExportFormat format, IAsyncEnumerable<SecurityEvent> events, JsonSerializerOptions json, CancellationToken cancellationToken)
    {
        await using var writer = new StreamWriter(body, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false), bufferSize: 16 * 1024, leaveOpen: true);
        if (format == SecurityEventExportFormat.Csv)
        {
            await writer.WriteAsync(string.Join(',', CsvColumns) + "\r\n");
        }
        await foreach (var e in events.WithCancellation(cancellationToken))
        {
            if (format == SecurityEventExportFormat.Csv)
            {
                await writer.WriteAsync(CsvRow(e));
            }
            else
            {
                await writer.WriteAsync(JsonSerializer.Serialize(SecurityEventView.From(e), json));
                await writer.WriteAsync('\n');
            }
        }
        await writer.FlushAsync(cancellationToken);
    }

    internal static string CsvRow(SecurityEvent e)
    {
        var row = new StringBuilder(256);
        row.Append(e.Id.ToString(CultureInfo.InvariantCulture)).Append(',');
        AppendField(row, e.Type).Append(',');
        row.Append(e.OccurredAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture)).Append(',');
        AppendField(row, e.SubjectId).Append(',');
        AppendField(row, e.ClientId).Append(',');
        AppendField(row, e.IpAddress).Append(',');
        AppendField(row, e.UserAgent).Append(',');
        AppendField(row, e.Detail).Append("\r\n");
        return row.ToString();
    }

    /// <summary>
    /// RFC 4180 quoting, and a leading apostrophe before <c>= + - @</c>, tab and carriage return:
    /// the user agent is chosen by whoever sent the request, and a spreadsheet would run it as a formula.
    /// </summary>
    private static StringBuilder AppendField(StringBuilder row, string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return row;
        }
        var guarded = value[0] is '=' or '+' or '-' or '@' or '\t' or '\r' ? "'" + value : value;
        if (guarded.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            return row.Append(guarded);
        }
        return row.Append('"').Append(guarded.Replace("\"", "\"\"")).Append('"');
    }
}
