using Latchkey.Common;

namespace Latchkey.Tests.Common;

public sealed class OpaqueSecretFormatTests
{
    private readonly OpaqueSecretFormat _format = new("lk_ak_");

    [Fact]
    public void Generated_secrets_are_well_formed_and_distinct()
    {
        var secrets = Enumerable.Range(0, 200).Select(_ => _format.Generate()).ToList();

        Assert.All(secrets, s => Assert.True(_format.IsWellFormed(s), s));
        Assert.All(secrets, s => Assert.Equal(_format.Length, s.Length));
        Assert.Equal(secrets.Count, secrets.Distinct().Count());
    }

    [Fact]
    public void Any_single_changed_character_breaks_the_checksum()
    {
        var secret = _format.Generate();
        for (var i = _format.Prefix.Length; i < secret.Length; i++)
        {
            var replacement = secret[i] == 'x' ? 'y' : 'x';
            var tampered = secret[..i] + replacement + secret[(i + 1)..];
            Assert.False(_format.IsWellFormed(tampered), $"changing position {i} went unnoticed");
        }
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("lk_ak_")]
    [InlineData("lk_at_0000000000000000000000000000000000000000000000000")]
    [InlineData("lk_ak_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!")]
    [InlineData("lk_ak_ééééééééééééééééééééééééééééééééééééééééééééééééé")]
    public void Wrong_prefix_length_or_alphabet_is_malformed(string? value) =>
        Assert.False(_format.IsWellFormed(value));

    [Fact]
    public void Another_kinds_prefix_is_not_accepted()
    {
        var accessToken = new OpaqueSecretFormat("lk_at_").Generate();

        Assert.False(_format.IsWellFormed(accessToken));
        Assert.False(_format.HasPrefix(accessToken));
    }

    [Fact]
    public void The_display_prefix_reveals_only_six_random_characters()
    {
        var secret = _format.Generate();

        Assert.Equal(secret[..12], _format.DisplayPrefix(secret));
    }

    [Fact]
    public void Secret_hashes_compare_equal_only_for_the_same_secret()
    {
        var secret = _format.Generate();
        var hash = SecretHash.Compute(secret);

        Assert.True(SecretHash.Matches(hash, secret));
        Assert.False(SecretHash.Matches(hash, _format.Generate()));
        Assert.Equal(32, hash.Length);
    }

    [Fact]
    public void Tokens_lead_with_their_issue_minute_so_stored_reference_ids_sort_by_issue_time()
    {
        var format = Latchkey.Features.AuthorizationServer.Tokens.TokenFormats.AccessToken;
        var earlier = Latchkey.Features.AuthorizationServer.Tokens.TokenFormats.New(format, new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var later = Latchkey.Features.AuthorizationServer.Tokens.TokenFormats.New(format, new DateTimeOffset(2026, 1, 1, 0, 1, 0, TimeSpan.Zero));

        Assert.True(format.IsWellFormed(earlier));
        Assert.True(format.IsWellFormed(later));
        var storedEarlier = Latchkey.Features.AuthorizationServer.Tokens.TokenFormats.StoredReferenceId(earlier);
        var storedLater = Latchkey.Features.AuthorizationServer.Tokens.TokenFormats.StoredReferenceId(later);
        Assert.True(string.CompareOrdinal(storedEarlier, storedLater) < 0);
        Assert.EndsWith(Convert.ToBase64String(SecretHash.Compute(earlier)), storedEarlier);
        Assert.DoesNotContain(earlier[6..], storedEarlier);
        Assert.Equal("0z", OpaqueSecretFormat.Base62Digits(61, 2));
    }
}
