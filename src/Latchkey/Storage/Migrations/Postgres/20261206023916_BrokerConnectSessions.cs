using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Latchkey.Storage.Migrations.Postgres
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
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    TokenHash = table.Column<byte[]>(type: "bytea", maxLength: 32, nullable: false),
                    AccountId = table.Column<string>(type: "text", nullable: false),
                    EndUserId = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    ProviderIds = table.Column<string>(type: "character varying(2000)", maxLength: 2000, nullable: false),
                    Tags = table.Column<string>(type: "character varying(1400)", maxLength: 1400, nullable: false),
                    RedirectUri = table.Column<string>(type: "character varying(2000)", maxLength: 2000, nullable: true),
                    Status = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    BrowserHash = table.Column<byte[]>(type: "bytea", maxLength: 32, nullable: true),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    ExpiresAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    OpenedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    CompletedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    CredentialId = table.Column<string>(type: "character varying(80)", maxLength: 80, nullable: true),
                    Error = table.Column<string>(type: "character varying(1000)", maxLength: 1000, nullable: true)
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
