using System;
using Microsoft.EntityFrameworkCore.Migrations;
using Npgsql.EntityFrameworkCore.PostgreSQL.Metadata;

#nullable disable

namespace Latchkey.Storage.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class McpServers : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "mcp_servers",
                columns: table => new
                {
                    Id = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    OwnerId = table.Column<string>(type: "text", nullable: false),
                    Name = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    UpstreamUrl = table.Column<string>(type: "character varying(2000)", maxLength: 2000, nullable: false),
                    DefaultCredentialId = table.Column<string>(type: "character varying(80)", maxLength: 80, nullable: true),
                    DefaultHeader = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    CreatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false),
                    UpdatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_mcp_servers", x => x.Id);
                    table.ForeignKey(
                        name: "FK_mcp_servers_AspNetUsers_OwnerId",
                        column: x => x.OwnerId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "mcp_tool_calls",
                columns: table => new
                {
                    Id = table.Column<long>(type: "bigint", nullable: false)
                        .Annotation("Npgsql:ValueGenerationStrategy", NpgsqlValueGenerationStrategy.IdentityByDefaultColumn),
                    AccountId = table.Column<string>(type: "text", nullable: false),
                    ServerId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    ToolName = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    CredentialId = table.Column<string>(type: "character varying(80)", maxLength: 80, nullable: true),
                    Caller = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: true),
                    Outcome = table.Column<string>(type: "character varying(200)", maxLength: 200, nullable: false),
                    DurationMs = table.Column<int>(type: "integer", nullable: false),
                    At = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_mcp_tool_calls", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "mcp_tool_mappings",
                columns: table => new
                {
                    ServerId = table.Column<string>(type: "character varying(40)", maxLength: 40, nullable: false),
                    ToolName = table.Column<string>(type: "character varying(128)", maxLength: 128, nullable: false),
                    CredentialId = table.Column<string>(type: "character varying(80)", maxLength: 80, nullable: false),
                    Header = table.Column<string>(type: "character varying(100)", maxLength: 100, nullable: true),
                    UpdatedAt = table.Column<DateTimeOffset>(type: "timestamp with time zone", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_mcp_tool_mappings", x => new { x.ServerId, x.ToolName });
                    table.ForeignKey(
                        name: "FK_mcp_tool_mappings_mcp_servers_ServerId",
                        column: x => x.ServerId,
                        principalTable: "mcp_servers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_mcp_servers_OwnerId",
                table: "mcp_servers",
                column: "OwnerId");

            migrationBuilder.CreateIndex(
                name: "IX_mcp_tool_calls_AccountId_At",
                table: "mcp_tool_calls",
                columns: new[] { "AccountId", "At" });

            migrationBuilder.CreateIndex(
                name: "IX_mcp_tool_calls_ServerId_At",
                table: "mcp_tool_calls",
                columns: new[] { "ServerId", "At" });
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "mcp_tool_calls");

            migrationBuilder.DropTable(
                name: "mcp_tool_mappings");

            migrationBuilder.DropTable(
                name: "mcp_servers");
        }
    }
}
