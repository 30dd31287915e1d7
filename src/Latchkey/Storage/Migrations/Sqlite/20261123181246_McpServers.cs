using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Latchkey.Storage.Migrations.Sqlite
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
                    Id = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    OwnerId = table.Column<string>(type: "TEXT", nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    UpstreamUrl = table.Column<string>(type: "TEXT", maxLength: 2000, nullable: false),
                    DefaultCredentialId = table.Column<string>(type: "TEXT", maxLength: 80, nullable: true),
                    DefaultHeader = table.Column<string>(type: "TEXT", maxLength: 100, nullable: true),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
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
                    Id = table.Column<long>(type: "INTEGER", nullable: false)
                        .Annotation("Sqlite:Autoincrement", true),
                    AccountId = table.Column<string>(type: "TEXT", nullable: false),
                    ServerId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    ToolName = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    CredentialId = table.Column<string>(type: "TEXT", maxLength: 80, nullable: true),
                    Caller = table.Column<string>(type: "TEXT", maxLength: 200, nullable: true),
                    Outcome = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    DurationMs = table.Column<int>(type: "INTEGER", nullable: false),
                    At = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_mcp_tool_calls", x => x.Id);
                });

            migrationBuilder.CreateTable(
                name: "mcp_tool_mappings",
                columns: table => new
                {
                    ServerId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    ToolName = table.Column<string>(type: "TEXT", maxLength: 128, nullable: false),
                    CredentialId = table.Column<string>(type: "TEXT", maxLength: 80, nullable: false),
                    Header = table.Column<string>(type: "TEXT", maxLength: 100, nullable: true),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
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
