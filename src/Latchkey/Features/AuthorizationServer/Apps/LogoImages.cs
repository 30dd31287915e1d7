using System.Xml;
using System.Xml.Linq;

namespace Latchkey.Features.AuthorizationServer.Apps;

/// <summary>
/// Accepts app logos: PNG, JPEG and WebP by their signature, SVG after sanitising (only drawing
/// elements and presentation attributes survive; no scripts, event handlers, external
/// references, DTDs or foreign content).
/// </summary>
public static class LogoImages
{
    public sealed record Result(string? ContentType, byte[]? Content, string? Error);

    private static readonly HashSet<string> SvgElements = new(StringComparer.Ordinal)
    {
        "svg", "g", "defs", "title", "desc", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon",
        "text", "tspan", "linearGradient", "radialGradient", "stop", "clipPath", "mask", "symbol", "use",
    };

    private static readonly HashSet<string> SvgAttributes = new(StringComparer.Ordinal)
    {
        "id", "class", "viewBox", "width", "height", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "d", "points",
        "fill", "fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-linecap", "stroke-linejoin", "stroke-opacity",
        "stroke-dasharray", "opacity", "transform", "offset", "stop-color", "stop-opacity", "gradientUnits", "gradientTransform",
        "clip-path", "clip-rule", "mask", "font-family", "font-size", "font-weight", "text-anchor", "preserveAspectRatio",
        "xmlns", "version", "href", "fx", "fy", "spreadMethod",
    };

    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private static readonly byte[] JpegSignature = [0xFF, 0xD8, 0xFF];

    public static Result Check(string? contentType, byte[] content)
    {
        var type = contentType?.Split(';')[0].Trim().ToLowerInvariant();
        switch (type)
        {
            case "image/png" when content.AsSpan().StartsWith(PngSignature):
            case "image/jpeg" when content.AsSpan().StartsWith(JpegSignature):
            case "image/webp" when content.Length > 12 && content.AsSpan(0, 4).SequenceEqual("RIFF"u8) && content.AsSpan(8, 4).SequenceEqual("WEBP"u8):
                return new Result(type, content, null);
            case "image/svg+xml":
                return SanitizeSvg(content);
            case "image/png" or "image/jpeg" or "image/webp":
                return new Result(null, null, $"The body is not a {type} image.");
            default:
                return new Result(null, null, "Send the logo as image/png, image/jpeg, image/webp or image/svg+xml.");
        }
    }

    private static Result SanitizeSvg(byte[] content)
    {
        XDocument document;
        try
        {
            using var stream = new MemoryStream(content);
            using var reader = XmlReader.Create(stream, new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, MaxCharactersInDocument = 1_000_000 });
            document = XDocument.Load(reader);
        }
        catch (XmlException exception)
        {
            return new Result(null, null, $"The SVG cannot be read (line {exception.LineNumber}, position {exception.LinePosition}): it must be well-formed XML without a DTD.");
        }
        if (document.Root is not { } root || root.Name.LocalName != "svg")
        {
            return new Result(null, null, "The SVG's root element must be <svg>.");
        }

        Clean(root);
        using var output = new MemoryStream();
        using (var writer = XmlWriter.Create(output, new XmlWriterSettings { OmitXmlDeclaration = true }))
        {
            root.Save(writer);
        }
        return new Result("image/svg+xml", output.ToArray(), null);
    }

    private static void Clean(XElement element)
    {
        foreach (var attribute in element.Attributes().ToList())
        {
            var name = attribute.Name.LocalName;
            var allowed = attribute.IsNamespaceDeclaration || SvgAttributes.Contains(name);
            // Only same-document references: no external images, fonts or scripts.
            if (name == "href" && !attribute.Value.StartsWith('#'))
            {
                allowed = false;
            }
            if (attribute.Value.Contains("javascript:", StringComparison.OrdinalIgnoreCase) || attribute.Value.Contains("url(http", StringComparison.OrdinalIgnoreCase))
            {
                allowed = false;
            }
            if (!allowed)
            {
                attribute.Remove();
            }
        }
        foreach (var instruction in element.Nodes().OfType<XProcessingInstruction>().ToList())
        {
            instruction.Remove();
        }
        foreach (var child in element.Elements().ToList())
        {
            if (!SvgElements.Contains(child.Name.LocalName))
            {
                child.Remove();
            }
            else
            {
                Clean(child);
            }
        }
    }
}
