//! Windows' rules for file and directory names (Microsoft's "Naming Files, Paths, and
//! Namespaces", and NTFS's case-insensitive comparison), shared by the client, which
//! checks names before a transfer sends anything, and the simulator, whose file store
//! refuses what Windows refuses.

/// Why Windows cannot hold a name (one path component).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// The name is empty.
    Empty,
    /// A control character (U+0000–U+001F).
    Control(char),
    /// One of `<>:"/\|?*`.
    Forbidden(char),
    /// A trailing dot or space, which Windows drops (`a.` is `a`).
    TrailingDotOrSpace,
    /// A reserved device name (`CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`,
    /// `COM¹²³`, `LPT¹²³`, in any case), also with an extension: it opens the device.
    DeviceName,
}

/// What is wrong with `name` as a Windows file or directory name, or `None`.
pub fn name_problem(name: &str) -> Option<NameProblem> {
    if name.is_empty() {
        return Some(NameProblem::Empty);
    }
    if let Some(c) = name.chars().find(|c| ('\0'..='\u{1f}').contains(c)) {
        return Some(NameProblem::Control(c));
    }
    if let Some(c) = name.chars().find(|c| r#"<>:"/\|?*"#.contains(*c)) {
        return Some(NameProblem::Forbidden(c));
    }
    if name.ends_with(['.', ' ']) {
        return Some(NameProblem::TrailingDotOrSpace);
    }
    if is_device_name(name) {
        return Some(NameProblem::DeviceName);
    }
    None
}

/// Whether `name` names a DOS device: its part before the first dot, trailing spaces
/// dropped, is a reserved name.
fn is_device_name(name: &str) -> bool {
    let base = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    let upper = base.to_ascii_uppercase();
    if matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL") {
        return true;
    }
    upper
        .strip_prefix("COM")
        .or_else(|| upper.strip_prefix("LPT"))
        .is_some_and(|n| {
            let mut c = n.chars();
            matches!(
                (c.next(), c.next()),
                (Some('0'..='9' | '¹' | '²' | '³'), None)
            )
        })
}

/// The form in which Windows compares a name (NTFS by default, and the file APIs):
/// case-insensitively, each UTF-16 code unit mapped by its Unicode *simple* uppercase
/// mapping, as NTFS's `$UpCase` table does. So `README` and `readme` are one name, and
/// so are `ǅ` and `Ǆ`; but `ß` and `SS` are two (the simple mapping keeps `ß`), and
/// characters outside the Basic Multilingual Plane are compared as they are (the table
/// maps single code units only). One character maps to one, so the key has the name's
/// characters. The mapping is the Unicode version of this Rust standard library: a
/// letter given an uppercase in a version newer than the host's table compares equal
/// here where the host keeps two names.
pub fn case_key(name: &str) -> String {
    name.chars().map(simple_upper).collect()
}

fn simple_upper(c: char) -> char {
    let u = c as u32;
    if u > 0xFFFF {
        return c;
    }
    match u {
        // Greek with ypogegrammeni: the full mapping is two characters (`ᾀ` is `ἈΙ`),
        // the simple one the titlecase letter (`ᾈ`).
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => char::from_u32(u + 8).unwrap_or(c),
        0x1FB3 | 0x1FC3 | 0x1FF3 => char::from_u32(u + 9).unwrap_or(c),
        _ => {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                // A one-character full mapping is the simple mapping; a longer one (`ß`
                // is `SS`) has no simple mapping but the character itself.
                (Some(x), None) if (x as u32) <= 0xFFFF => x,
                _ => c,
            }
        }
    }
}
