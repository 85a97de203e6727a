//! `winrm run --argv` against the embedded simulator: a word cmd.exe would expand is
//! refused with advice in the tool's terms (its flags, not the library's calls), and
//! `--skip-cmd-shell` passes it through to the program.

mod support;
use support::winrm;

const PING: &str = r"C:\Windows\System32\PING.EXE";

#[test]
fn a_refused_argv_word_names_what_the_tool_can_do() {
    let out = winrm(&["run", "--argv", "--", PING, "-n", "1", "%x%"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains("word #3"), "{err}");
    assert!(err.contains("add --skip-cmd-shell"), "{err}");
    assert!(err.contains("leave out --argv"), "{err}");
    for library_call in ["skip_cmd_shell(", "raw_arg"] {
        assert!(!err.contains(library_call), "{library_call}: {err}");
    }
    // A line break: only --skip-cmd-shell helps (cmd.exe would end the line there too).
    let out = winrm(&["run", "--argv", "--", PING, "a\nb"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("add --skip-cmd-shell"), "{err}");
    assert!(!err.contains("leave out --argv"), "{err}");
}

#[test]
fn skip_cmd_shell_passes_the_word_to_the_program() {
    let out = winrm(&[
        "run",
        "--argv",
        "--skip-cmd-shell",
        "--",
        PING,
        "-n",
        "1",
        "%x%",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Pinging %x% [127.0.0.1]"), "{stdout}");
    // Without --argv too: the line goes to the program as it is, cmd.exe's `&` included.
    let out = winrm(&["run", "--skip-cmd-shell", "--", PING, "-n", "1", "a&b"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Pinging a&b [127.0.0.1]"), "{stdout}");
}
