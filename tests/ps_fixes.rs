//! Fixes from the newcomer trial around PowerShell: `PsValue` conversions reaching a
//! cmdlet, runspace limits checked before anything is sent, `run_ps` without cmd.exe's
//! 8,191-character line limit, and Robust Connections for PowerShell pipelines.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_winrm::psrp::PsValue;
use tokio_winrm::{Auth, Client};
use winrm_simulator::{CmdletContext, Simulator};

async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

fn client_of(sim: &Simulator) -> Client {
    Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_vec_parameter_reaches_the_cmdlet_as_a_list() {
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim);
    let seen: Arc<Mutex<Vec<Option<PsValue>>>> = Arc::default();
    let s = Arc::clone(&seen);
    sim.register_cmdlet("Take-List", move |ctx: CmdletContext| {
        let s = Arc::clone(&s);
        async move {
            let mut s = s.lock().unwrap();
            s.push(ctx.parameter("List").cloned());
            s.push(ctx.parameter("N").cloned());
            s.push(ctx.parameter("X").cloned());
            Ok(())
        }
    });
    let pool = within(10, c.runspace_pool().open()).await.unwrap();
    let inv = within(
        10,
        pool.pipeline()
            .command("Take-List")
            .param("List", vec!["a", "b"])
            .param("N", 5u64)
            .param("X", 0.5f64)
            .invoke(),
    )
    .await
    .unwrap();
    assert!(inv.errors.is_empty(), "{inv:?}");
    let seen = seen.lock().unwrap().clone();
    let list = seen[0].as_ref().expect("-List reached the cmdlet");
    assert_eq!(
        list.as_list(),
        Some(&[PsValue::String("a".into()), PsValue::String("b".into())][..])
    );
    assert_eq!(seen[1], Some(PsValue::U64(5)));
    assert_eq!(seen[2], Some(PsValue::F64(0.5)));
    pool.close().await.unwrap();
}

#[tokio::test]
async fn runspace_limits_powershell_refuses_are_refused_before_anything_is_sent() {
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim);
    for (min, max) in [(3, 1), (1, 0), (0, 2), (0, 0)] {
        let err = within(
            10,
            c.runspace_pool()
                .min_runspaces(min)
                .max_runspaces(max)
                .open(),
        )
        .await
        .expect_err("refused");
        assert!(
            matches!(&err, tokio_winrm::Error::Config(m) if m.contains("max_runspaces")),
            "({min}, {max}): {err:?}"
        );
    }
    assert_eq!(sim.counters().requests, 0, "nothing was sent");
    // Limits PowerShell accepts are kept as given.
    let pool = within(
        10,
        c.runspace_pool().min_runspaces(2).max_runspaces(3).open(),
    )
    .await
    .unwrap();
    assert_eq!(pool.max_runspaces(), 3);
    pool.close().await.unwrap();
}

/// The script `Write-Output '<a…>'`, `len` UTF-16 code units long.
fn write_output_script(len: usize) -> (String, String) {
    let text = "a".repeat(len - "Write-Output ''".len());
    (format!("Write-Output '{text}'"), text)
}

#[tokio::test]
async fn run_ps_runs_scripts_longer_than_cmd_exe_takes_without_cmd_exe() {
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim);
    // Its base64 is about 13,300 characters: over cmd.exe's 8,191.
    for len in [5_000, 12_240] {
        let (script, text) = write_output_script(len);
        let out = within(20, c.run_ps(&script)).await.unwrap();
        assert!(out.success(), "{len}: {:?}", out.stderr_text());
        assert_eq!(out.stdout_text().trim_end(), text, "{len}");
    }
    let command = sim
        .requests()
        .into_iter()
        .find(|r| r.action.ends_with("/Command"))
        .expect("a Command was sent");
    assert_eq!(command.option("WINRS_SKIP_CMD_SHELL"), Some("TRUE"));
    assert!(
        command
            .body
            .contains("WindowsPowerShell\\v1.0\\powershell.exe"),
        "{}",
        command.body
    );
    // A short script still goes through cmd.exe, with powershell.exe from PATH (works
    // wherever Windows is installed).
    sim.clear_requests();
    let out = within(20, c.run_ps("Write-Output short")).await.unwrap();
    assert_eq!(out.stdout_text().trim_end(), "short");
    let command = sim
        .requests()
        .into_iter()
        .find(|r| r.action.ends_with("/Command"))
        .expect("a Command was sent");
    assert_eq!(command.option("WINRS_SKIP_CMD_SHELL"), Some("FALSE"));
    assert!(
        command
            .body
            .contains("<rsp:Command>powershell.exe</rsp:Command>"),
        "{}",
        command.body
    );
}

#[tokio::test]
async fn run_ps_refuses_a_script_too_long_for_a_command_line_before_sending() {
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim);
    let (script, _) = write_output_script(12_241);
    let err = within(10, c.run_ps(&script)).await.unwrap_err();
    assert!(
        matches!(
            err,
            tokio_winrm::Error::ScriptTooLong {
                length: 12_241,
                max: 12_240
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("pool.pipeline().script("), "{err}");
    assert_eq!(sim.counters().requests, 0, "nothing was sent");
    // A character outside the BMP counts as two UTF-16 code units, as on Windows:
    // 12,240 characters with one of them are 12,241 units.
    let (fits, _) = write_output_script(12_240);
    let wide = fits.replace("a'", "😀'");
    assert_eq!(
        (wide.chars().count(), wide.encode_utf16().count()),
        (12_240, 12_241)
    );
    let err = within(10, c.run_ps(&wide)).await.unwrap_err();
    assert!(
        matches!(
            err,
            tokio_winrm::Error::ScriptTooLong { length: 12_241, .. }
        ),
        "{err:?}"
    );
    assert_eq!(sim.counters().requests, 0, "nothing was sent");
}

#[tokio::test]
async fn a_cmd_line_over_8191_characters_fails_as_cmd_exe_does() {
    let sim = Simulator::start().await.unwrap();
    let c = client_of(&sim);
    let shell = within(10, c.shell().open()).await.unwrap();
    // `echo` and its text: 8,191 characters run, 8,192 do not.
    let fits = "a".repeat(8_191 - "echo ".len());
    let out = within(10, async {
        shell
            .command("echo")
            .raw_arg(&fits)
            .start()
            .await
            .unwrap()
            .collect()
            .await
    })
    .await
    .unwrap();
    assert_eq!(
        (out.code, out.stdout_text().trim_end()),
        (Some(0), fits.as_str())
    );
    let long = format!("{fits}a");
    let out = within(10, async {
        shell
            .command("echo")
            .raw_arg(&long)
            .start()
            .await
            .unwrap()
            .collect()
            .await
    })
    .await
    .unwrap();
    assert_eq!(out.code, Some(1));
    assert!(out.stdout.is_empty(), "{:?}", out.stdout_text());
    assert_eq!(out.stderr_text(), "The command line is too long.\r\n");
    // Without cmd.exe the process's own limit (32,767) applies.
    let out = within(10, async {
        shell
            .command(r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe")
            .raw_arg("-Command")
            .raw_arg(format!("Write-Output '{long}'"))
            .skip_cmd_shell(true)
            .start()
            .await
            .unwrap()
            .collect()
            .await
    })
    .await
    .unwrap();
    assert_eq!(
        (out.code, out.stdout_text().trim_end()),
        (Some(0), long.as_str())
    );
    within(10, shell.close()).await.unwrap();
}
