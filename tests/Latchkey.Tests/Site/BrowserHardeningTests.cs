using System.Net;
using System.Net.Http.Headers;
using Latchkey.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace Latchkey.Tests.Site;

/// <summary>
/// The headers that keep a browser from being turned against Latchkey's pages: no framing, no
/// inline script, no content sniffing, no referrer, HSTS and host-only Secure cookies over https.
/// The server trusts forwarded headers here, as it does behind a TLS-terminating proxy, so that
/// a test can address it "over https" through <c>X-Forwarded-Proto</c>.
/// </summary>
public sealed class BrowserHardeningTests(BrowserHardeningTests.ProxiedServer server) : IClassFixture<BrowserHardeningTests.ProxiedServer>
{
    public sealed class ProxiedServer : SqliteServer
    {
        protected override void ConfigureServer(WebApplicationBuilder builder) =>
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Server:TrustForwardedHeaders"] = "true" });
    }

    [Theory]
    [InlineData("/account/sign-in")]
    [InlineData("/account/sign-up")]
    [InlineData("/account/forgot-password")]
    [InlineData("/no-such-page")]
    [InlineData("/auth/authorize?client_id=unknown&response_type=code")]
    public async Task Every_html_response_forbids_framing_inline_script_sniffing_and_referrers(string path)
    {
        var response = await Client().SendAsync(Html(HttpMethod.Get, path));

        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var policy = Directives(Header(response, "Content-Security-Policy"));
        Assert.Equal("'none'", policy["default-src"]);
        Assert.Equal("'none'", policy["frame-ancestors"]);
        Assert.Equal("'none'", policy["base-uri"]);
        // Scripts from this server only; an inline one only by the hash of its exact text (the authorize
        // endpoint's form_post page), never 'unsafe-inline' or 'unsafe-eval'.
        var scripts = policy["script-src"].Split(' ');
        Assert.Equal("'self'", scripts[0]);
        Assert.All(scripts.Skip(1), source => Assert.StartsWith("'sha256-", source));
        Assert.Equal("'self'", policy["style-src"]);
        Assert.Equal("'self'", policy["connect-src"]);
        Assert.StartsWith("'self'", policy["form-action"]);
        Assert.Equal("DENY", Header(response, "X-Frame-Options"));
        Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
        Assert.Equal("no-referrer", Header(response, "Referrer-Policy"));
    }

    [Fact]
    public async Task A_page_that_fails_carries_the_same_headers()
    {
        // A form post without its antiforgery token is refused by the framework before the page runs.
        var response = await Client().PostAsync("/account/sign-in", new FormUrlEncodedContent(new Dictionary<string, string> { ["Input.Email"] = "x@example.com" }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
        if (response.Content.Headers.ContentType?.MediaType == "text/html")
        {
            Assert.Contains("frame-ancestors 'none'", Header(response, "Content-Security-Policy"));
            Assert.Equal("DENY", Header(response, "X-Frame-Options"));
        }
    }

    [Theory]
    [InlineData("/healthz")]
    [InlineData("/.well-known/openid-configuration")]
    [InlineData("/external-api/v1/me")]
    [InlineData("/assets/site.css")]
    public async Task Responses_that_are_not_html_are_never_sniffed(string path)
    {
        var response = await Client().GetAsync(path);

        Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
        Assert.NotEqual("text/html", response.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task Https_responses_to_a_public_name_carry_hsts_and_plain_http_or_loopback_ones_do_not()
    {
        var overHttps = await Client().SendAsync(Proxied(HttpMethod.Get, "/account/sign-in", "https", "latchkey.example.com"));
        var overHttp = await Client().SendAsync(Proxied(HttpMethod.Get, "/account/sign-in", "http", "latchkey.example.com"));
        var loopbackHttps = await Client().SendAsync(Proxied(HttpMethod.Get, "/account/sign-in", "https", "localhost"));

        Assert.Equal("max-age=31536000", Header(overHttps, "Strict-Transport-Security"));
        Assert.False(overHttp.Headers.Contains("Strict-Transport-Security"));
        Assert.False(loopbackHttps.Headers.Contains("Strict-Transport-Security"));
    }

    [Fact]
    public async Task Over_https_the_session_cookie_is_a_host_only_secure_cookie_and_works()
    {
        var jar = new Dictionary<string, string>();
        var client = Client();
        var email = TestAccounts.NewEmail();

        var form = await SendWithJarAsync(client, jar, Proxied(HttpMethod.Get, "/account/sign-up", "https", "latchkey.example.com"));
        var antiforgery = SetCookies(form).Single(c => c.StartsWith(".AspNetCore.Antiforgery", StringComparison.Ordinal));
        Assert.Contains("secure", Attributes(antiforgery));
        var signUp = Proxied(HttpMethod.Post, "/account/sign-up", "https", "latchkey.example.com");
        signUp.Content = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Input.Email"] = email,
            ["Input.DisplayName"] = "Https User",
            ["Input.TimeZone"] = "UTC",
            ["Input.Password"] = TestAccounts.Password,
            ["Input.ConfirmPassword"] = TestAccounts.Password,
            ["__RequestVerificationToken"] = Browser.AntiforgeryToken(await form.Content.ReadAsStringAsync()),
        });
        var signedUp = await SendWithJarAsync(client, jar, signUp);

        Assert.Equal(HttpStatusCode.Redirect, signedUp.StatusCode);
        var session = SetCookies(signedUp).Single(c => c.StartsWith("__Host-latchkey.session=", StringComparison.Ordinal));
        var attributes = Attributes(session);
        Assert.Contains("secure", attributes);
        Assert.Contains("httponly", attributes);
        Assert.Contains("path=/", attributes);
        Assert.Contains("samesite=lax", attributes);
        Assert.DoesNotContain(attributes, a => a.StartsWith("domain=", StringComparison.Ordinal));
        Assert.DoesNotContain(SetCookies(signedUp), c => c.StartsWith("latchkey.session=", StringComparison.Ordinal));

        // The browser sends it back over https and is signed in; the bare name is not accepted there.
        var profile = await SendWithJarAsync(client, jar, Proxied(HttpMethod.Get, "/api/keys", "https", "latchkey.example.com"));
        Assert.Equal(HttpStatusCode.OK, profile.StatusCode);
        var bare = Proxied(HttpMethod.Get, "/api/keys", "https", "latchkey.example.com");
        bare.Headers.Add("Cookie", "latchkey.session=" + jar["__Host-latchkey.session"]);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.SendAsync(bare)).StatusCode);
    }

    [Fact]
    public async Task Over_plain_http_the_session_cookie_keeps_its_bare_name_without_secure()
    {
        var account = await TestAccounts.SignUpAsync(server);

        // Sign in again, to see the Set-Cookie header itself.
        var client = Client();
        var jar = new Dictionary<string, string>();
        var form = await SendWithJarAsync(client, jar, new HttpRequestMessage(HttpMethod.Get, "/account/sign-in"));
        var signIn = new HttpRequestMessage(HttpMethod.Post, "/account/sign-in")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Input.Email"] = account.Email,
                ["Input.Password"] = account.Password,
                ["__RequestVerificationToken"] = Browser.AntiforgeryToken(await form.Content.ReadAsStringAsync()),
            }),
        };
        var signedIn = await SendWithJarAsync(client, jar, signIn);

        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        var session = SetCookies(signedIn).Single(c => c.StartsWith("latchkey.session=", StringComparison.Ordinal));
        Assert.DoesNotContain("secure", Attributes(session));
        Assert.Contains("httponly", Attributes(session));
    }

    private HttpClient Client() =>
        new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = server.BaseAddress };

    private static HttpRequestMessage Html(HttpMethod method, string path)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("text/html"));
        return request;
    }

    /// <summary>A request as a TLS-terminating proxy forwards it.</summary>
    private static HttpRequestMessage Proxied(HttpMethod method, string path, string scheme, string host)
    {
        var request = Html(method, path);
        request.Headers.Add("X-Forwarded-Proto", scheme);
        request.Headers.Add("X-Forwarded-Host", host);
        return request;
    }

    /// <summary>
    /// Sends with the cookies of <paramref name="jar"/> and keeps what the response sets. By hand,
    /// because the request goes to http://127.0.0.1 while the cookies are for https.
    /// </summary>
    private static async Task<HttpResponseMessage> SendWithJarAsync(HttpClient client, Dictionary<string, string> jar, HttpRequestMessage request)
    {
        if (jar.Count > 0)
        {
            request.Headers.Add("Cookie", string.Join("; ", jar.Select(c => $"{c.Key}={c.Value}")));
        }
        var response = await client.SendAsync(request);
        foreach (var cookie in SetCookies(response))
        {
            var pair = cookie.Split(';')[0];
            var equals = pair.IndexOf('=');
            jar[pair[..equals]] = pair[(equals + 1)..];
        }
        return response;
    }

    private static IEnumerable<string> SetCookies(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Set-Cookie", out var values) ? values : [];

    private static List<string> Attributes(string setCookie) =>
        [.. setCookie.Split(';').Skip(1).Select(a => a.Trim().ToLowerInvariant())];

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values)
            ? string.Join(", ", values)
            : throw new Xunit.Sdk.XunitException($"{(int)response.StatusCode} {response.RequestMessage?.RequestUri}: no {name} header");

    private static Dictionary<string, string> Directives(string policy) =>
        policy.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(d => d.Split(' ', 2))
            .ToDictionary(d => d[0], d => d.Length > 1 ? d[1] : "");
}
