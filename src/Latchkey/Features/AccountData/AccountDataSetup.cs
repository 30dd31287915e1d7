namespace Latchkey.Features.AccountData;

/// <summary>An account's data as a whole: its export and its deletion, for its owner (<c>/profile/account</c>) and for administrators.</summary>
public static class AccountDataSetup
{
    public static WebApplicationBuilder AddAccountData(this WebApplicationBuilder builder)
    {
        builder.Services.AddScoped<AccountDeletion>();
        builder.Services.AddScoped<AccountExport>();
        return builder;
    }
}
