using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Latchkey.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class BrokerConnectSessions : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "broker_connect_sessions",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    TokenHash = table.Column<byte[]>(type: "BLOB", maxLength: 32, nullable: false),
                    AccountId = table.Column<string>(type: "TEXT", nullable: false),
                    EndUserId = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    ProviderIds = table.Column<string>(type: "TEXT", maxLength: 2000, nullable: false),
                    Tags = table.Column<string>(type: "TEXT", maxLength: 1400, nullable: false),
                    RedirectUri = table.Column<string>(type: "TEXT", maxLength: 2000, nullable: true),
                    Status = table.Column<string>(type: "TEXT", maxLength: 20, nullable: false),
                    BrowserHash = table.Column<byte[]>(type: "BLOB", maxLength: 32, nullable: true),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    ExpiresAt = table.Column<long>(type: "INTEGER", nullable: false),
                    OpenedAt = table.Column<long>(type: "INTEGER", nullable: true),
                    CompletedAt = table.Column<long>(type: "INTEGER", nullable: true),
                    CredentialId = table.Column<string>(type: "TEXT", maxLength: 80, nullable: true),
                    Error = table.Column<string>(type: "TEXT", maxLength: 1000, nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_broker_connect_sessions", x => x.Id);
                });

            migrationBuilder.CreateIndex(
                name: "IX_broker_connect_sessions_AccountId",
                table: "broker_connect_sessions",
                column: "AccountId");

            migrationBuilder.CreateIndex(
                name: "IX_broker_connect_sessions_ExpiresAt",
                table: "broker_connect_sessions",
                column: "ExpiresAt");

            migrationBuilder.CreateIndex(
                name: "IX_broker_connect_sessions_TokenHash",
                table: "broker_connect_sessions",
                column: "TokenHash",
                unique: true);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "broker_connect_sessions");
        }
    }
}
