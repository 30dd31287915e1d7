using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace Latchkey.Storage.Migrations.Sqlite
{
    /// <inheritdoc />
    public partial class McpVirtualServers : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.CreateTable(
                name: "mcp_virtual_servers",
                columns: table => new
                {
                    Id = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    OwnerId = table.Column<string>(type: "TEXT", nullable: false),
                    Name = table.Column<string>(type: "TEXT", maxLength: 200, nullable: false),
                    CreatedAt = table.Column<long>(type: "INTEGER", nullable: false),
                    UpdatedAt = table.Column<long>(type: "INTEGER", nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_mcp_virtual_servers", x => x.Id);
                    table.ForeignKey(
                        name: "FK_mcp_virtual_servers_AspNetUsers_OwnerId",
                        column: x => x.OwnerId,
                        principalTable: "AspNetUsers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateTable(
                name: "mcp_virtual_members",
                columns: table => new
                {
                    VirtualServerId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    ServerId = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false),
                    Prefix = table.Column<string>(type: "TEXT", maxLength: 40, nullable: false)
                },
                constraints: table =>
                {
                    table.PrimaryKey("PK_mcp_virtual_members", x => new { x.VirtualServerId, x.ServerId });
                    table.ForeignKey(
                        name: "FK_mcp_virtual_members_mcp_servers_ServerId",
                        column: x => x.ServerId,
                        principalTable: "mcp_servers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                    table.ForeignKey(
                        name: "FK_mcp_virtual_members_mcp_virtual_servers_VirtualServerId",
                        column: x => x.VirtualServerId,
                        principalTable: "mcp_virtual_servers",
                        principalColumn: "Id",
                        onDelete: ReferentialAction.Cascade);
                });

            migrationBuilder.CreateIndex(
                name: "IX_mcp_virtual_members_ServerId",
                table: "mcp_virtual_members",
                column: "ServerId");

            migrationBuilder.CreateIndex(
                name: "IX_mcp_virtual_members_VirtualServerId_Prefix",
                table: "mcp_virtual_members",
                columns: new[] { "VirtualServerId", "Prefix" },
                unique: true);

            migrationBuilder.CreateIndex(
                name: "IX_mcp_virtual_servers_OwnerId",
                table: "mcp_virtual_servers",
                column: "OwnerId");
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropTable(
                name: "mcp_virtual_members");

            migrationBuilder.DropTable(
                name: "mcp_virtual_servers");
        }
    }
}
