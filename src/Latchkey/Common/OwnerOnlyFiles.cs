namespace Latchkey.Common;

/// <summary>
/// Files and folders that hold secrets (the database, key files, backups) are readable by the
/// account that runs Latchkey only: 0600 for files, 0700 for folders. Nothing to do on Windows,
/// where ACLs of the parent folder apply.
/// </summary>
public static class OwnerOnlyFiles
{
    public const UnixFileMode FileModeBits = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode DirectoryModeBits = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Creates the folder (and missing parents) as 0700; true when it did not exist before.</summary>
    public static bool CreateDirectory(string path)
    {
        if (Directory.Exists(path))
        {
            return false;
        }
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, DirectoryModeBits);
        }
        return true;
    }

    /// <summary>Creates an empty file that only its owner may read, failing if it exists.</summary>
    public static void CreateFile(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileModeBits;
        }
        using var _ = new FileStream(path, options);
    }

    /// <summary>Whether group or others may use the file or folder.</summary>
    public static bool IsOpenToOthers(string path) =>
        !OperatingSystem.IsWindows() && Path.Exists(path) && (File.GetUnixFileMode(path) & GroupOrOther) != 0;

    /// <summary>
    /// Takes group and other permissions away from an existing file (0600) or folder (0700).
    /// True when it changed something; false when it was already so, is missing, or is not ours to change.
    /// </summary>
    public static bool Restrict(string path)
    {
        if (OperatingSystem.IsWindows() || !IsOpenToOthers(path))
        {
            return false;
        }
        try
        {
            File.SetUnixFileMode(path, Directory.Exists(path) ? DirectoryModeBits : FileModeBits);
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            // Owned by another account (a mounted secret, a shared folder): the caller warns.
            return false;
        }
    }
}
