using System.ComponentModel.DataAnnotations;

namespace Latchkey.Features.Telemetry;

/// <summary>Metrics and traces (docs/operations.md, "Metrics and traces"). Bound from the <c>Telemetry</c> section.</summary>
public sealed class TelemetryOptions : IValidatableObject
{
    public const string SectionName = "Telemetry";

    /// <summary>
    /// Serve Prometheus's scrape endpoint (<c>/metrics</c>) on <see cref="PrometheusHost"/>:<see cref="PrometheusPort"/>,
    /// a listener of its own: never on the public one, which answers 404 there.
    /// </summary>
    public bool Prometheus { get; set; }

    /// <summary>The address the scrape endpoint listens on: loopback by default; a private interface for a scraper on another machine.</summary>
    [Required]
    public string PrometheusHost { get; set; } = "127.0.0.1";

    [Range(1, 65535)]
    public int PrometheusPort { get; set; } = 9464;

    /// <summary>An OpenTelemetry collector to send traces and metrics to (OTLP), e.g. <c>http://127.0.0.1:4318</c>; none by default (or empty).</summary>
    public string? OtlpEndpoint { get; set; }

    /// <summary><c>http/protobuf</c> (the default; the collector's port 4318) or <c>grpc</c> (port 4317).</summary>
    public string OtlpProtocol { get; set; } = "http/protobuf";

    /// <summary>The <c>service.name</c> that metrics and traces carry: one per deployment, the same on every node.</summary>
    [Required]
    public string ServiceName { get; set; } = "latchkey";

    public bool SendsOtlp => !string.IsNullOrEmpty(OtlpEndpoint);

    public bool Exports => Prometheus || SendsOtlp;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (SendsOtlp && (!Uri.TryCreate(OtlpEndpoint, UriKind.Absolute, out var otlp) || otlp.Scheme is not ("http" or "https")))
        {
            yield return new ValidationResult($"Telemetry:OtlpEndpoint must be an http:// or https:// address, not '{OtlpEndpoint}'.", [nameof(OtlpEndpoint)]);
        }
        if (OtlpProtocol is not ("http/protobuf" or "grpc"))
        {
            yield return new ValidationResult($"Telemetry:OtlpProtocol must be 'http/protobuf' or 'grpc', not '{OtlpProtocol}'.", [nameof(OtlpProtocol)]);
        }
    }
}
