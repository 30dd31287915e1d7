using System.Net.Sockets;
using System.Text;

namespace Latchkey.Tests.Fuzz;

/// <summary>A request exactly as it goes on the wire: no client library normalises, escapes or refuses any part of it.</summary>
public sealed record RawRequest(string Method, string Target, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    /// <summary>Header values are written as Latin-1 so that a test can put any byte in them.</summary>
    public byte[] ToBytes()
    {
        var head = new StringBuilder();
        head.Append(Method).Append(' ').Append(Target).Append(" HTTP/1.1\r\n");
        foreach (var (name, value) in Headers)
        {
            head.Append(name).Append(": ").Append(value).Append("\r\n");
        }
        head.Append("\r\n");
        return [.. Encoding.Latin1.GetBytes(head.ToString()), .. Body];
    }

    /// <summary>What a failure message prints: enough to replay the request by hand.</summary>
    public string Describe(int maxBody = 2000)
    {
        var text = new StringBuilder();
        text.Append(Method).Append(' ').Append(Shorten(Target, 2000)).Append('\n');
        foreach (var (name, value) in Headers)
        {
            text.Append(name).Append(": ").Append(Shorten(value, 300)).Append('\n');
        }
        var body = Encoding.UTF8.GetString(Body);
        text.Append('\n').Append(Shorten(body, maxBody));
        if (Body.Length > 0)
        {
            text.Append("\n(body: ").Append(Body.Length).Append(" bytes, first 64 as hex: ")
                .Append(Convert.ToHexString(Body.AsSpan(0, Math.Min(64, Body.Length)))).Append(')');
        }
        return text.ToString();
    }

    private static string Shorten(string value, int max) =>
        value.Length <= max ? value : $"{value[..max]}… ({value.Length} chars)";
}

public sealed record RawResponse(int Status, IReadOnlyList<KeyValuePair<string, string>> Headers, byte[] Body)
{
    public string? Header(string name) =>
        Headers.FirstOrDefault(h => string.Equals(h.Key, name, StringComparison.OrdinalIgnoreCase)).Value;

    public string BodyText => Encoding.UTF8.GetString(Body);
}

/// <summary>
/// HTTP/1.1 over a plain socket, one connection per request (<c>Connection: close</c>). Event
/// streams are read up to their headers only: the gateway may keep them open.
/// </summary>
public static class RawHttpClient
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static async Task<RawResponse> SendAsync(Uri server, RawRequest request)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(server.Host, server.Port, timeout.Token);
        var stream = tcp.GetStream();
        try
        {
            await stream.WriteAsync(request.ToBytes(), timeout.Token);
        }
        catch (IOException)
        {
            // The server may answer (431, 413) and close before it has read everything; read what it said.
        }

        var received = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int headerEnd;
        while ((headerEnd = IndexOf(received.GetBuffer().AsSpan(0, (int)received.Length), "\r\n\r\n"u8)) < 0)
        {
            var read = await ReadAsync(stream, buffer, timeout.Token);
            if (read == 0)
            {
                throw new IOException($"The connection closed before a complete response head ({received.Length} bytes received).");
            }
            received.Write(buffer, 0, read);
        }

        var all = received.ToArray();
        var lines = Encoding.Latin1.GetString(all, 0, headerEnd).Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).Select(p => KeyValuePair.Create(p[0].Trim(), p.Length > 1 ? p[1].Trim() : "")).ToList();
        var response = new RawResponse(status, headers, []);
        var body = new MemoryStream();
        body.Write(all, headerEnd + 4, all.Length - headerEnd - 4);

        if (response.Header("Content-Type")?.StartsWith("text/event-stream", StringComparison.OrdinalIgnoreCase) == true || request.Method == "HEAD" || status is 204 or 304)
        {
            return response with { Body = body.ToArray() };
        }
        if (response.Header("Content-Length") is { } length && long.TryParse(length, out var expected))
        {
            while (body.Length < expected)
            {
                var read = await ReadAsync(stream, buffer, timeout.Token);
                if (read == 0)
                {
                    break;
                }
                body.Write(buffer, 0, read);
            }
            return response with { Body = body.ToArray() };
        }
        // Chunked or close-delimited: the server closes after the response (Connection: close).
        while (true)
        {
            var read = await ReadAsync(stream, buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }
            body.Write(buffer, 0, read);
        }
        var bytes = body.ToArray();
        return response with
        {
            Body = string.Equals(response.Header("Transfer-Encoding"), "chunked", StringComparison.OrdinalIgnoreCase) ? Dechunk(bytes) : bytes,
        };
    }

    private static async Task<int> ReadAsync(NetworkStream stream, byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await stream.ReadAsync(buffer, cancellationToken);
        }
        catch (IOException)
        {
            // A reset after the response was sent (the server refused to read a body) ends the response.
            return 0;
        }
    }

    private static byte[] Dechunk(byte[] chunked)
    {
        var output = new MemoryStream();
        var position = 0;
        while (position < chunked.Length)
        {
            var lineEnd = IndexOf(chunked.AsSpan(position), "\r\n"u8);
            if (lineEnd < 0)
            {
                break;
            }
            var sizeText = Encoding.ASCII.GetString(chunked, position, lineEnd).Split(';')[0];
            var size = Convert.ToInt32(sizeText, 16);
            position += lineEnd + 2;
            if (size == 0)
            {
                break;
            }
            output.Write(chunked, position, Math.Min(size, chunked.Length - position));
            position += size + 2;
        }
        return output.ToArray();
    }

    private static int IndexOf(ReadOnlySpan<byte> haystack, ReadOnlySpan<byte> needle) => haystack.IndexOf(needle);
}
