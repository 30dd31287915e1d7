using System;
using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Latchkey.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class McpPoliciesAndApprovals : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.AddColumn<string>(
                name: "ApprovalWebhookUrl",
                table: "mcp_servers",
                type: "character varying(2000)",
                maxLength: 2000,
                nullable: true);

            migrationBuilder.AddColumn<string>(
                name: "DefaultToolPolicy",
                table: "mcp_servers",
                type: "character varying(20)",
                maxLength: 20,
                nullable: false,
                defaultValue: "allow");

            migrationBuilder.CreateTable(
                name: "mcp_approvals",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    OwnerId = table.Column<string>(type: "text", nullable: false),
                    ServerId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    ServerName = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    ToolName = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    ArgumentsJson = table.Column<string>(type: "character varying(16384)", maxLength: 16384, nullable: true),
                    ArgumentsHash = table.Column<string>(type: "character varying(64)", maxLength: 64, nullable: false),
                    Caller = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    SessionId = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    Status = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    Grant = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: true),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    ExpiresAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    DecidedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true),
                    GrantExpiresAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: true)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_mcp_approvals", x => x.Id);
                    table.ForeignKey(
                        name: "FK_mcp_approvals_mcp_servers_ServerId",
                        column: x => x.ServerId,
                        principalTable: "mcp_servers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "mcp_tool_policies",
                columns: table => new
                {
                    ServerId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    Tool = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    Action = table.Column<string>(type: "character varying(20)", maxLength: 20, nullable: false),
                    RequiredScope = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    ArgumentRulesJson = table.Column<string>(type: "character varying(8000)", maxLength: 8000, nullable: true),
                    UpdatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_mcp_tool_policies", x => new { x.ServerId, x.Tool });
                    table.ForeignKey(
                        name: "FK_mcp_tool_policies_mcp_servers_ServerId",
                        column: x => x.ServerId,
                        principalTable: "mcp_servers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_mcp_approvals_OwnerId_Status_CreatedAt",
                table: "mcp_approvals",
                columns: new[] { "OwnerId", "Status", "CreatedAt" });

            migrationBuilder.CreateIndex(
                name: "IX_mcp_approvals_ServerId_ToolName_Caller_Status",
                table: "mcp_approvals",
                columns: new[] { "ServerId", "ToolName", "Caller", "Status" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "mcp_approvals");

            migrationBuilder.DropTable(
                name: "mcp_tool_policies");

            migrationBuilder.DropColumn(
                name: "ApprovalWebhookUrl",
                table: "mcp_servers");

            migrationBuilder.DropColumn(
                name: "DefaultToolPolicy",
                table: "mcp_servers");
        }
    }
}
