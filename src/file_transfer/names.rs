//! Windows' rules for file names, checked on the client before a transfer sends
//! anything: the names a Windows host cannot hold, and when two names are one name
//! there.

/// Why `name` (one path component) cannot be a file or directory name on Windows, or
/// `None` when it can. The rules of Microsoft's "Naming Files, Paths, and Namespaces":
///
/// - no character of `<>:"/\|?*` and none of U+0000–U+001F;
/// - not a reserved device name (`CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`,
///   `LPT0`–`LPT9`, `COM¹²³`, `LPT¹²³`, in any case), also with an extension
///   (`nul.txt`, `Con .tar.gz`): the name opens the device;
/// - no trailing dot or space: Windows drops them, so the file would get another name
///   (`a.` is `a`).
pub(crate) fn invalid_name(name: &str) -> Option<String> {
    use wsman_protocol::windows_names::NameProblem as P;
    Some(match wsman_protocol::windows_names::name_problem(name)? {
        P::Empty => "the name is empty".into(),
        P::Control(c) => format!(
            "the name has the control character U+{:04X}, which Windows forbids in file names",
            c as u32
        ),
        P::Forbidden(c) => format!(
            "the name has `{c}`, one of the characters Windows forbids in file names (<>:\"/\\|?*)"
        ),
        P::TrailingDotOrSpace => "the name ends with a dot or a space, which Windows drops (the \
                                  file would get another name)"
            .into(),
        P::DeviceName => "the name is a reserved device name on Windows (CON, PRN, AUX, NUL, \
                          COM0-9, LPT0-9, also with an extension)"
            .into(),
    })
}

/// The form in which Windows compares a name: see
/// [`wsman_protocol::windows_names::case_key`]. A pair equal here but kept apart by an
/// older host's table is refused, never lost.
pub(crate) fn case_key(name: &str) -> String {
    wsman_protocol::windows_names::case_key(name)
}

/// Checks the names of a remote path the caller gave, as far as they are known before
/// the host expands it: `Err((name, why))` for the first name Windows cannot hold.
///
/// Skipped: the drive (`C:`, the only colon allowed, or a PowerShell drive such as
/// `Temp:` before a separator), the server and share of a UNC path, `.` and `..`, and
/// with `expand` the variables the host replaces (`$env:NAME`, `${env:NAME}`; `%NAME%`
/// has only legal characters). A device path (`\\?\`, `\\.\`, allowed by
/// `allow_unc`) is taken literally by Windows and is not checked.
pub(crate) fn check_remote_path(remote: &str, expand: bool) -> Result<(), (String, String)> {
    let mut chars = remote.chars();
    let (a, b, c, d) = (chars.next(), chars.next(), chars.next(), chars.next());
    let sep = |c: Option<char>| matches!(c, Some('\\' | '/'));
    if sep(a) && sep(b) && matches!(c, Some('?' | '.')) && sep(d) {
        return Ok(());
    }
    let text = if expand {
        without_env_vars(remote)
    } else {
        remote.to_string()
    };
    let mut parts: Vec<&str> = text.split(['\\', '/']).collect();
    let mut skip = 0;
    let several = parts.len() > 1;
    if text.starts_with(['\\', '/']) && text[1..].starts_with(['\\', '/']) {
        // `\\server\share\...`: two empty parts, the server, the share.
        skip = 4;
    } else if let Some(first) = parts.first_mut() {
        let b = first.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            // `C:\x`, `C:x` (relative to the drive's directory).
            *first = &first[2..];
        } else if several
            && let Some(drive) = first.strip_suffix(':')
            && drive.starts_with(|c: char| c.is_ascii_alphabetic())
            && drive.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            // A PowerShell drive before a separator: `Temp:\x`.
            *first = "";
        }
    }
    for part in parts.into_iter().skip(skip) {
        if part.is_empty() || part == "." || part == ".." {
            continue;
        }
        if let Some(why) = invalid_name(part) {
            return Err((part.to_string(), why));
        }
    }
    Ok(())
}

/// `remote` with `$env:NAME` and `${env:NAME}` (any case) replaced by a legal name.
fn without_env_vars(remote: &str) -> String {
    let mut out = String::with_capacity(remote.len());
    let mut rest = remote;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let lower = tail.get(..6).unwrap_or(tail).to_ascii_lowercase();
        if lower.starts_with("${env:")
            && let Some(end) = tail.find('}')
        {
            out.push('v');
            rest = &tail[end + 1..];
        } else if lower.starts_with("$env:") {
            let len = tail[5..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(tail.len() - 5);
            out.push('v');
            rest = &tail[5 + len..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// Whether `remote` surely names a directory (a trailing separator, a drive alone, a
/// last part `.` or `..`), so that a file copied there takes its local name.
pub(crate) fn names_a_directory(remote: &str) -> bool {
    let r = remote.trim_end();
    let last = r.rsplit(['\\', '/']).next().unwrap_or(r);
    let b = r.as_bytes();
    r.ends_with(['\\', '/'])
        || (b.len() == 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
        || last == "."
        || last == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_windows_cannot_hold() {
        for bad in [
            "a*b?.txt",
            "q\"uote.txt",
            "colon:name",
            "a<b",
            "a>b",
            "a|b",
            "a\\b",
            "tab\there",
            "nul\0",
            "trail.",
            "trail ",
            "trail. ",
            "con",
            "CON",
            "Con.txt",
            "nul.tar.gz",
            "aux",
            "prn",
            "com1",
            "LPT9.log",
            "com¹",
            "COM0",
            "con .txt",
            "",
        ] {
            assert!(invalid_name(bad).is_some(), "{bad:?}");
        }
        for good in [
            "a b.txt",
            "é😀.txt",
            "it's.txt",
            "$x.txt",
            "`tick.txt",
            "%USERNAME%.txt",
            "[br].txt",
            "semi;colon.txt",
            ".hidden",
            "console",
            "com10",
            "lpt",
            "connect.txt",
            "nul_",
            "a.b.c",
        ] {
            assert_eq!(invalid_name(good), None, "{good:?}");
        }
    }

    #[test]
    fn names_compare_by_simple_uppercase() {
        let same = |a: &str, b: &str| case_key(a) == case_key(b);
        assert!(same("README", "readme"));
        assert!(same("Grüße.txt", "GRÜßE.TXT"));
        assert!(same("ǅ", "ǆ"));
        assert!(same("ᾀ", "ᾈ"));
        assert!(same("Σ", "ς"));
        // The full mapping would make these one name; Windows keeps them apart.
        assert!(!same("ß", "SS"));
        assert!(!same("ﬀ", "FF"));
        // The Kelvin sign has no uppercase of its own (lowercasing would make it `k`).
        assert!(!same("\u{212A}", "k"));
        // Outside the BMP: compared as they are.
        assert!(!same("\u{10428}", "\u{10400}"));
    }

    #[test]
    fn remote_paths_are_checked_past_drive_share_and_variables() {
        for ok in [
            r"C:\x\y.txt",
            r"c:x.txt",
            "C:",
            r"C:\Data\",
            r"\\server\share\x",
            r"\\?\C:\trail.",
            r"\\.\pipe\x",
            r"Temp:\x",
            r"%TEMP%\x",
            r"$env:TEMP\x",
            r"${env:ProgramFiles(x86)}\x",
            r"..\x\.",
            r"C:\a b\c",
        ] {
            assert_eq!(check_remote_path(ok, true), Ok(()), "{ok}");
        }
        for (bad, name) in [
            (r"C:\x\a*b?.txt", "a*b?.txt"),
            (r"C:\x\colon:name", "colon:name"),
            (r"C:\x\con", "con"),
            (r"C:\x\NUL.txt", "NUL.txt"),
            (r"C:\x\trail.\y", "trail."),
            (r#"C:\q"uote.txt"#, "q\"uote.txt"),
            (r"\\server\share\a|b", "a|b"),
            ("colon:name", "colon:name"),
            (r"C:\x:\y", "x:"),
        ] {
            assert_eq!(
                check_remote_path(bad, true).map_err(|(n, _)| n),
                Err(name.to_string()),
                "{bad}"
            );
        }
        // Not expanded: `$env:TEMP` is a literal name with a colon.
        assert!(check_remote_path(r"$env:TEMP\x", false).is_err());
    }

    #[test]
    fn paths_that_surely_name_a_directory() {
        for d in [r"C:\Data\", "C:/x/", "C:", r"C:\x\.", ".."] {
            assert!(names_a_directory(d), "{d}");
        }
        for f in [r"C:\Data", r"C:\x.txt", "x"] {
            assert!(!names_a_directory(f), "{f}");
        }
    }
}
