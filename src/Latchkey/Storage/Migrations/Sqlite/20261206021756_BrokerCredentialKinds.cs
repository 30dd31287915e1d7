using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Latchkey.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class BrokerCredentialKinds : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "ConnectSessionId",
                table: "broker_flows",
                type: "TEXT",
                maxLength: 40,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "EndUserId",
                table: "broker_flows",
                type: "TEXT",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Tags",
                table: "broker_flows",
                type: "TEXT",
                maxLength: 1400,
                nullable: false,
                defaultValue: "");

            migrationBuilder.AddColumn<string>(
                name: "EndUserId",
                table: "broker_credentials",
                type: "TEXT",
                maxLength: 200,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Kind",
                table: "broker_credentials",
                type: "TEXT",
                maxLength: 20,
                nullable: false,
                defaultValue: "oauth2");

            migrationBuilder.AddColumn<string>(
                name: "LastCheckOutcome",
                table: "broker_credentials",
                type: "TEXT",
                maxLength: 300,
                nullable: true);

            migrationBuilder.AddColumn<long>(
                name: "LastCheckedAt",
                table: "broker_credentials",
                type: "INTEGER",
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "Tags",
                table: "broker_credentials",
                type: "TEXT",
                maxLength: 1400,
                nullable: false,
                defaultValue: "");

            migrationBuilder.CreateIndex(
                name: "IX_broker_credentials_AccountId_EndUserId",
                table: "broker_credentials",
                columns: new[] { "AccountId", "EndUserId" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropIndex(
                name: "IX_broker_credentials_AccountId_EndUserId",
                table: "broker_credentials");

            migrationBuilder.DropColumn(
                name: "ConnectSessionId",
                table: "broker_flows");

            migrationBuilder.DropColumn(
                name: "EndUserId",
                table: "broker_flows");

            migrationBuilder.DropColumn(
                name: "Tags",
                table: "broker_flows");

            migrationBuilder.DropColumn(
                name: "EndUserId",
                table: "broker_credentials");

            migrationBuilder.DropColumn(
                name: "Kind",
                table: "broker_credentials");

            migrationBuilder.DropColumn(
                name: "LastCheckOutcome",
                table: "broker_credentials");

            migrationBuilder.DropColumn(
                name: "LastCheckedAt",
                table: "broker_credentials");

            migrationBuilder.DropColumn(
                name: "Tags",
                table: "broker_credentials");
        }
    }
}
