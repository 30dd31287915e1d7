namespace Latchkey.Features.Broker.Proxy;

/// <summary>
/// Copies a stream, replacing every occurrence of a secret with as many <c>*</c> (the length, and so
/// <c>Content-Length</c>, stays right), also when an occurrence spans two reads. Bytes are held back
/// only while they could be the start of a secret, so a streamed answer is not delayed otherwise.
/// </summary>
public static class MaskingCopy
{
    public static async Task CopyAsync(Stream source, Stream destination, byte[][] secrets, CancellationToken cancellationToken)
    {
        var buffer = new byte[16 * 1024];
        if (secrets.Length == 0)
        {
            int n;
            while ((n = await source.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await destination.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
            }
            return;
        }
        var pending = new List<byte>();
        int read;
        while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            pending.AddRange(buffer.AsSpan(0, read));
            var bytes = pending.ToArray();
            Mask(bytes, secrets);
            var held = HeldBack(bytes, secrets);
            await destination.WriteAsync(bytes.AsMemory(0, bytes.Length - held), cancellationToken);
            pending = [.. bytes.AsSpan(bytes.Length - held)];
        }
        if (pending.Count > 0)
        {
            await destination.WriteAsync(pending.ToArray(), cancellationToken);
        }
    }

    private static void Mask(byte[] bytes, byte[][] secrets)
    {
        foreach (var secret in secrets)
        {
            var from = 0;
            int at;
            while ((at = bytes.AsSpan(from).IndexOf(secret)) >= 0)
            {
                bytes.AsSpan(from + at, secret.Length).Fill((byte)'*');
                from += at + secret.Length;
            }
        }
    }

    /// <summary>How many bytes at the end could begin a secret that the next read completes.</summary>
    private static int HeldBack(byte[] bytes, byte[][] secrets)
    {
        var longest = secrets.Max(s => s.Length);
        for (var start = Math.Max(0, bytes.Length - longest + 1); start < bytes.Length; start++)
        {
            var tail = bytes.AsSpan(start);
            foreach (var secret in secrets)
            {
                if (secret.Length > tail.Length && secret.AsSpan().StartsWith(tail))
                {
                    return bytes.Length - start;
                }
            }
        }
        return 0;
    }
}
