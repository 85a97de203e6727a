//! The PowerShell scripts the transfers run on the host (Windows PowerShell 5.1 and
//! later). The first line of each is a marker the simulator recognises to run its
//! native implementation; the `TokioWinrm.<Id>` error ids map to
//! [`TransferErrorKind`](crate::TransferErrorKind)s.

/// Helpers every script defines: `Fail` (a terminating error with a `TokioWinrm.<Id>`
/// id), `Get-FailId` (an exception's id), `Test-TwName` (`InvalidName` for a name
/// Windows cannot hold, the rules of the client's `names::invalid_name`) and
/// `Resolve-TwPath` (expansion of `%VAR%` and `$env:VAR` when `-Expand`, the UNC/device
/// refusal unless `-AllowUnc`, the names checked past the drive or share, an absolute
/// provider path).
macro_rules! common {
    () => {
        r#"
    function Fail([string]$Id, [string]$Message) {
        $ex = [System.Exception]::new($Message)
        throw [System.Management.Automation.ErrorRecord]::new($ex, "TokioWinrm.$Id", 'NotSpecified', $null)
    }
    function Get-FailId($err) {
        $x = $err.Exception
        while ($null -ne $x) {
            if ($x -is [System.UnauthorizedAccessException]) { return 'AccessDenied' }
            if ($x -is [System.IO.FileNotFoundException] -or $x -is [System.IO.DirectoryNotFoundException]) { return 'NotFound' }
            $x = $x.InnerException
        }
        'Io'
    }
    function Test-TwName([string]$N, [string]$Where) {
        $why = if ($N -match '[\x00-\x1f<>:"/\\|?*]') { 'a character Windows forbids in file names' }
            elseif ($N -match '[. ]$') { 'a trailing dot or space, which Windows drops' }
            elseif ($N -match '^(CON|PRN|AUX|NUL|COM[0-9\u00b9\u00b2\u00b3]|LPT[0-9\u00b9\u00b2\u00b3]) *(\.|$)') { 'a reserved device name' }
        if ($why) { Fail 'InvalidName' "Not a valid Windows file name ($why): '$N' in $Where" }
    }
    function Resolve-TwPath([string]$P) {
        if ($Expand) {
            $P = [regex]::Replace($P, '\$\{env:([^}]+)\}|\$env:(\w+)', {
                param($m)
                $n = if ($m.Groups[1].Success) { $m.Groups[1].Value } else { $m.Groups[2].Value }
                $v = [Environment]::GetEnvironmentVariable($n)
                if ($null -eq $v) { $m.Value } else { $v }
            }, 'IgnoreCase')
            $P = [Environment]::ExpandEnvironmentVariables($P)
        }
        if (-not $AllowUnc -and $P -match '^[\\/]{2}') { Fail 'PathRefused' "UNC and device paths are refused: $P" }
        if ($P -notmatch '^[\\/]{2}[?.][\\/]') {
            $rest = $P -replace '^([\\/]{2}[^\\/]+[\\/][^\\/]+|[A-Za-z]:|[A-Za-z]\w*:(?=[\\/]))', ''
            foreach ($n in $rest.Split([char[]]'\/')) {
                if ($n -and $n -ne '.' -and $n -ne '..') { Test-TwName $n $P }
            }
        }
        $full = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($P)
        if (-not $AllowUnc -and $full.StartsWith('\\')) { Fail 'PathRefused' "UNC and device paths are refused: $full" }
        $full
    }
"#
    };
}

/// Upload: base64 chunks as input, then `sha256:<hex>`; writes a temporary file
/// (`-Temp`) in the target's directory, checks the hash, then replaces the target.
pub(crate) const COPY: &str = concat!(
    "# tokio-winrm:copy v1\n",
    r#"param([string]$Path, [string]$Name, [string]$Temp, [bool]$Overwrite, [bool]$Expand, [bool]$AllowUnc)
begin {
    $ErrorActionPreference = 'Stop'
"#,
    common!(),
    r#"
    $target = Resolve-TwPath $Path
    if ([IO.Directory]::Exists($target)) {
        if (-not $Name) { Fail 'IsDirectory' "The target is a directory: $target" }
        Test-TwName $Name $target
        $target = [IO.Path]::Combine($target, $Name)
        if ([IO.Directory]::Exists($target)) { Fail 'IsDirectory' "The target is a directory: $target" }
    }
    $dir = [IO.Path]::GetDirectoryName($target)
    if (-not [IO.Directory]::Exists($dir)) { Fail 'NotFound' "The target's directory does not exist: $dir" }
    if ([IO.File]::Exists($target)) {
        if (-not $Overwrite) { Fail 'AlreadyExists' "The target exists: $target" }
        if (([IO.File]::GetAttributes($target) -band [IO.FileAttributes]::ReadOnly) -ne 0) { Fail 'AccessDenied' "The target is read-only: $target" }
    }
    if (-not $Temp -or $Temp.IndexOfAny([char[]]'\/') -ge 0) { Fail 'Io' '-Temp must be a file name' }
    $tmp = [IO.Path]::Combine($dir, $Temp)
    try {
        $fs = [IO.FileStream]::new($tmp, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write, [IO.FileShare]'ReadWrite, Delete')
    } catch {
        Fail (Get-FailId $_) "Cannot create ${tmp}: $($_.Exception.Message)"
    }
    $sha = [Security.Cryptography.SHA256]::Create()
    $expected = $null
    $length = [long]0
}
process {
    if ($_.StartsWith('sha256:')) { $expected = $_.Substring(7); return }
    $b = [Convert]::FromBase64String($_)
    [void]$sha.TransformBlock($b, 0, $b.Length, $null, 0)
    $fs.Write($b, 0, $b.Length)
    $length += $b.Length
}
end {
    [void]$sha.TransformFinalBlock([byte[]]::new(0), 0, 0)
    $fs.Dispose()
    $actual = [BitConverter]::ToString($sha.Hash).Replace('-', '').ToLowerInvariant()
    if ($expected -ne $actual) {
        [IO.File]::Delete($tmp)
        Fail 'HashMismatch' "SHA-256 mismatch for ${target}: sent $expected, written $actual"
    }
    try {
        if ([IO.File]::Exists($target)) { [void][IO.File]::Replace($tmp, $target, $null) } else { [IO.File]::Move($tmp, $target) }
    } catch {
        [IO.File]::Delete($tmp)
        Fail (Get-FailId $_) "Cannot replace ${target}: $($_.Exception.Message)"
    }
    [pscustomobject]@{ Path = $target; Length = $length; Sha256 = $actual }
}
"#
);

/// Download: an object with `Path` and `Length`, base64 chunks, an object with
/// `Sha256`.
pub(crate) const FETCH: &str = concat!(
    "# tokio-winrm:fetch v1\n",
    r#"param([string]$Path, [bool]$Expand, [bool]$AllowUnc, [int]$ChunkSize)
$ErrorActionPreference = 'Stop'
"#,
    common!(),
    r#"
$src = Resolve-TwPath $Path
if ([IO.Directory]::Exists($src)) { Fail 'IsDirectory' "The path is a directory: $src" }
if (-not [IO.File]::Exists($src)) { Fail 'NotFound' "Cannot find path '$src' because it does not exist." }
try {
    $fs = [IO.File]::Open($src, [IO.FileMode]::Open, [IO.FileAccess]::Read, [IO.FileShare]'ReadWrite, Delete')
} catch {
    Fail (Get-FailId $_) "Cannot open ${src}: $($_.Exception.Message)"
}
try {
    [pscustomobject]@{ Path = $src; Length = $fs.Length }
    $sha = [Security.Cryptography.SHA256]::Create()
    $buf = [byte[]]::new([Math]::Max(1, $ChunkSize))
    while (($n = $fs.Read($buf, 0, $buf.Length)) -gt 0) {
        [void]$sha.TransformBlock($buf, 0, $n, $null, 0)
        [Convert]::ToBase64String($buf, 0, $n)
    }
    [void]$sha.TransformFinalBlock($buf, 0, 0)
    [pscustomobject]@{ Sha256 = [BitConverter]::ToString($sha.Hash).Replace('-', '').ToLowerInvariant() }
} finally {
    $fs.Dispose()
}
"#
);

/// A tree: an object with `Root` and `Directory`, then (for a directory) one object
/// per entry with `Path` (relative), `Directory` and `Length`.
pub(crate) const LIST: &str = concat!(
    "# tokio-winrm:list v1\n",
    r#"param([string]$Path, [bool]$Expand, [bool]$AllowUnc)
$ErrorActionPreference = 'Stop'
"#,
    common!(),
    r#"
$root = Resolve-TwPath $Path
$isDir = [IO.Directory]::Exists($root)
if (-not $isDir -and -not [IO.File]::Exists($root)) { Fail 'NotFound' "Cannot find path '$root' because it does not exist." }
[pscustomobject]@{ Root = $root; Directory = $isDir }
if ($isDir) {
    $prefix = $root.TrimEnd('\').Length + 1
    Get-ChildItem -LiteralPath $root -Recurse -Force | ForEach-Object {
        [pscustomobject]@{
            Path = $_.FullName.Substring($prefix)
            Directory = $_.PSIsContainer
            Length = $(if ($_.PSIsContainer) { [long]0 } else { $_.Length })
        }
    }
}
"#
);

/// Directories: creates `-Path` (output: an object with `Root`), then each relative
/// directory given as input under it.
pub(crate) const MKDIR: &str = concat!(
    "# tokio-winrm:mkdir v1\n",
    r#"param([string]$Path, [bool]$Expand, [bool]$AllowUnc)
begin {
    $ErrorActionPreference = 'Stop'
"#,
    common!(),
    r#"
    $root = Resolve-TwPath $Path
    if ([IO.File]::Exists($root)) { Fail 'NotDirectory' "A file exists where a directory was expected: $root" }
    try { [void][IO.Directory]::CreateDirectory($root) } catch { Fail (Get-FailId $_) "Cannot create ${root}: $($_.Exception.Message)" }
    [pscustomobject]@{ Root = $root }
}
process {
    foreach ($n in ([string]$_).Split([char[]]'\/')) { if ($n) { Test-TwName $n $root } }
    $d = [IO.Path]::Combine($root, $_)
    if ([IO.File]::Exists($d)) { Fail 'NotDirectory' "A file exists where a directory was expected: $d" }
    try { [void][IO.Directory]::CreateDirectory($d) } catch { Fail (Get-FailId $_) "Cannot create ${d}: $($_.Exception.Message)" }
}
"#
);

/// After a stopped upload (Windows PowerShell skips `end` on a stop): removes the
/// temporary file `-Temp` next to the target; outputs whether it removed one.
pub(crate) const CLEANUP: &str = concat!(
    "# tokio-winrm:cleanup v1\n",
    r#"param([string]$Path, [string]$Temp, [bool]$Expand, [bool]$AllowUnc)
$ErrorActionPreference = 'Stop'
"#,
    common!(),
    r#"
$target = Resolve-TwPath $Path
$dir = if ([IO.Directory]::Exists($target)) { $target } else { [IO.Path]::GetDirectoryName($target) }
$removed = $false
if ($dir -and $Temp -and $Temp.IndexOfAny([char[]]'\/') -lt 0) {
    $tmp = [IO.Path]::Combine($dir, $Temp)
    if ([IO.File]::Exists($tmp)) { [IO.File]::Delete($tmp); $removed = $true }
}
$removed
"#
);
