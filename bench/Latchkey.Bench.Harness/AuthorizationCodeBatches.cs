using System.Diagnostics;

namespace Latchkey.Bench;

/// <summary>
/// The codes of the authorization-code redemption workload. Codes expire
/// (<c>AuthorizationServer:AuthorizationCodeLifetimeMinutes</c>), so each sample's are made through
/// Latchkey's authorization endpoint right before it: as many as its runs can redeem at the highest
/// rate seen so far (usually the previous sample's), with a margin. The highest, not the last: one
/// sample slowed down by the machine must not leave the next one short. wrk keeps sending when the
/// codes run out and reports its rate over the whole run, so a run that ran out anyway is not a
/// measurement: <see cref="Observe"/> tells the harness, which repeats the warm-up or sample with
/// a batch sized for twice the rate, and reports an error if a sample runs out again. (A cold
/// warm-up's rate is well below the next sample's, so the first sample may need that.)
/// </summary>
internal sealed class AuthorizationCodeBatches(
    BenchOptions options,
    LatchkeySeeder seeder,
    LatchkeySeed seed,
    Func<IEnumerable<string>, Task<string>> tokensFile,
    string basic)
{
    /// <summary>Samples swing by a third from one round to the next on this machine; codes left over cost only the time to make them.</summary>
    private const double Margin = 1.5;

    /// <summary>Redemptions a second: a guess until the first run, then the highest rate a run has had.</summary>
    private double _rate = 300;
    private bool _measured;

    public async Task<IReadOnlyList<LoadRequest>> PrepareAsync(IReadOnlyList<int> runs)
    {
        // Every connection may hold a request in flight when the run ends: one code each beyond the rate.
        var counts = runs.Select(seconds => (int)Math.Ceiling(_rate * seconds * Margin) + options.Connections).ToList();
        var clock = Stopwatch.StartNew();
        var codes = await seeder.AuthorizationCodesAsync(seed, counts.Sum(), options.Connections);
        Console.WriteLine($"[bench]    made {codes.Count} authorization codes in {clock.Elapsed.TotalSeconds:0.0} s " +
                          $"({codes.Count / clock.Elapsed.TotalSeconds:0}/s) for {string.Join(" + ", runs)} s at up to {_rate * Margin:0} redemptions/s");
        var requests = new List<LoadRequest>();
        var taken = 0;
        foreach (var count in counts)
        {
            requests.Add(LoadRequest.CodeRedemption(await tokensFile(codes.Skip(taken).Take(count)), LatchkeySeeder.CodeRedemptionForm, basic));
            taken += count;
        }
        return requests;
    }

    /// <summary>Learns the rate from a run; false when the run ran out of codes.</summary>
    public bool Observe(LoadResult result)
    {
        if (result.Starved > 0)
        {
            // The rate wrk reports is not the redemption rate then; all that is known is that it was higher.
            _rate *= 2;
            return false;
        }
        // Successful redemptions only: failed ones are quick and would size the next batch for nothing.
        var redeemed = result.Requests - result.Errors;
        if (redeemed > 0 && result.Seconds > 0)
        {
            // The first guess goes once a run has measured the rate.
            _rate = _measured ? Math.Max(_rate, redeemed / result.Seconds) : redeemed / result.Seconds;
            _measured = true;
        }
        return true;
    }
}
