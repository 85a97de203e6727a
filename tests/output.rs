//! Real-world output that used to read wrong (issue 10, section 6), and the bound on
//! collected output (section 4): CLIXML stderr shaped like the public bug reports
//! (BOM, native stderr first, progress only, split over chunks), a `CommandState Done`
//! without `ExitCode`, an HTML page where SOAP was expected, and `max_output`.

#[path = "support/mini_http.rs"]
mod mini_http;

use std::time::Duration;

use futures_util::StreamExt;
use tokio_winrm::shell::text::{ClixmlDecoder, StreamDecoder};
use tokio_winrm::{Auth, Client, CommandEvent, Error, ExitStatus};
use winrm_simulator::{CommandContext, SimConfig, Simulator};

const T: Duration = Duration::from_secs(20);

/// What the console shows for `sim-clixml`'s stderr.
const SIM_CLIXML_SHOWN: &str = "native.exe : something failed\r\nsim-clixml : boom\r\n    \
     + CategoryInfo          : NotSpecified: (:) [Write-Error], WriteErrorException\r\n";

async fn sim() -> (Simulator, Client) {
    sim_with(|b| b).await
}

async fn sim_with(
    configure: impl FnOnce(tokio_winrm::ClientBuilder) -> tokio_winrm::ClientBuilder,
) -> (Simulator, Client) {
    let sim = Simulator::start_with(SimConfig::default()).await.unwrap();
    let builder = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5));
    (sim, configure(builder).build().unwrap())
}

/// Waits (bounded) until the simulator has no shell and no command left.
async fn assert_clean(sim: &Simulator) {
    let start = std::time::Instant::now();
    let mut c = sim.counters();
    while (c.open_shells, c.running_commands) != (0, 0) && start.elapsed() < T {
        tokio::time::sleep(Duration::from_millis(10)).await;
        c = sim.counters();
    }
    assert_eq!((c.open_shells, c.running_commands), (0, 0), "{c:?}");
}

// --- CLIXML on stderr ---------------------------------------------------------------

#[tokio::test]
async fn stderr_text_decodes_native_line_then_bom_and_clixml() {
    let (sim, client) = sim().await;
    let out = tokio::time::timeout(T, client.run("sim-clixml", &[]))
        .await
        .unwrap()
        .unwrap();
    let raw = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(raw.contains("\u{feff}#< CLIXML") && raw.contains("<Obj S=\"progress\""));
    assert_eq!(out.stderr_text(), SIM_CLIXML_SHOWN);
    assert_eq!(out.code, Some(1));
    client.shutdown().await;
    assert_clean(&sim).await;
}

/// How the command-line tool shows stderr: each chunk as it arrives, through the
/// code-page decoder and the CLIXML decoder.
#[tokio::test]
async fn streamed_stderr_decodes_clixml_split_over_chunks() {
    let (sim, client) = sim().await;
    let shell = client.shell().codepage(65001).open().await.unwrap();
    let mut cmd = shell.command("sim-clixml").start().await.unwrap();
    let (mut bytes, mut clixml) = (StreamDecoder::new(65001), ClixmlDecoder::new());
    let mut shown = Vec::new();
    let mut exit = None;
    while let Some(ev) = tokio::time::timeout(T, cmd.next()).await.unwrap() {
        match ev.unwrap() {
            CommandEvent::Stderr(b) => shown.push(clixml.decode_chunk(&bytes.decode_chunk(&b))),
            CommandEvent::Stdout(b) => panic!("unexpected stdout {b:?}"),
            CommandEvent::Exit(s) => exit = Some(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(exit, Some(ExitStatus::Exited(1)));
    shown.push(clixml.decode_chunk(&bytes.finish()) + &clixml.finish());
    assert!(
        shown.len() >= 4,
        "the block did not arrive in pieces: {shown:?}"
    );
    // The native line is shown at once; nothing of the block before its end; all of
    // it, decoded, then.
    assert_eq!(shown[0], "native.exe : something failed\r\n");
    assert!(
        shown[1..shown.len() - 2].iter().all(String::is_empty),
        "{shown:?}"
    );
    assert_eq!(shown.concat(), SIM_CLIXML_SHOWN);
    shell.close().await.unwrap();
    client.shutdown().await;
    assert_clean(&sim).await;
}

#[tokio::test]
async fn progress_only_stderr_shows_nothing() {
    let (sim, client) = sim().await;
    sim.register_command("progress-only", |ctx: CommandContext| {
        Box::pin(async move {
            ctx.eprint(
                "\u{feff}#< CLIXML\r\n<Objs Version=\"1.1.0.1\" \
                 xmlns=\"http://schemas.microsoft.com/powershell/2004/04\">\
                 <Obj S=\"progress\" RefId=\"0\"><TN RefId=\"0\">\
                 <T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN>\
                 <MS><I64 N=\"SourceId\">1</I64><PR N=\"Record\">\
                 <AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI>\
                 <PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj></Objs>",
            )
            .await;
            ctx.print("done\r\n").await;
            0
        })
    });
    let out = tokio::time::timeout(T, client.run("progress-only", &[]))
        .await
        .unwrap()
        .unwrap();
    assert!(out.stderr.len() > 300, "{:?}", out.stderr);
    assert_eq!(out.stderr_text(), "");
    assert_eq!(
        (out.stdout_text().as_ref(), out.code),
        ("done\r\n", Some(0))
    );
    client.shutdown().await;
    assert_clean(&sim).await;
}

// --- Done without ExitCode ------------------------------------------------------------

#[tokio::test]
async fn done_without_exit_code_is_not_success() {
    let (sim, client) = sim().await;
    // The stream says so.
    let shell = client.shell().codepage(65001).open().await.unwrap();
    let mut cmd = shell
        .command("sim-no-exit-code")
        .arg("bye")
        .start()
        .await
        .unwrap();
    let mut events = Vec::new();
    while let Some(ev) = tokio::time::timeout(T, cmd.next()).await.unwrap() {
        events.push(ev.unwrap());
    }
    assert_eq!(
        events.last(),
        Some(&CommandEvent::Exit(ExitStatus::ExitedWithoutCode))
    );
    let status = ExitStatus::ExitedWithoutCode;
    assert_eq!((status.code(), status.success()), (None, false));
    shell.close().await.unwrap();
    // So do `run` and `collect`.
    let out = tokio::time::timeout(T, client.run("sim-no-exit-code", &["bye"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.stdout_text(), "bye\r\n");
    assert_eq!(out.code, None);
    assert!(!out.success());
    assert_eq!(out.status(), ExitStatus::ExitedWithoutCode);
    // A command that reports its code is unchanged.
    let out = client.run("exit", &["/b", "0"]).await.unwrap();
    assert_eq!((out.code, out.success()), (Some(0), true));
    assert_eq!(out.status(), ExitStatus::Exited(0));
    client.shutdown().await;
    assert_clean(&sim).await;
}

// --- max_output -----------------------------------------------------------------------

#[tokio::test]
async fn run_past_max_output_stops_the_command_and_deletes_the_shell() {
    let (sim, client) = sim_with(|b| b.max_output(64 * 1024)).await;
    let err = tokio::time::timeout(T, client.run("sim-gen", &["--mib", "64"]))
        .await
        .expect("run did not stop at the bound")
        .unwrap_err();
    assert!(
        matches!(err, Error::OutputTooLarge { limit: 65536 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("65536-byte bound"), "{err}");
    client.shutdown().await;
    let c = sim.counters();
    assert_eq!(c.terminate_signals, 1, "{c:?}");
    assert_clean(&sim).await;
}

#[tokio::test]
async fn collect_counts_stdout_and_stderr_together() {
    let (sim, client) = sim_with(|b| b.max_output(1000)).await;
    sim.register_command("both", |ctx: CommandContext| {
        Box::pin(async move {
            ctx.write_stdout(&[b'o'; 600]).await;
            ctx.write_stderr(&[b'e'; 600]).await;
            0
        })
    });
    let shell = client.shell().codepage(65001).open().await.unwrap();
    // The client's bound applies to collect().
    let cmd = shell.command("both").start().await.unwrap();
    let err = tokio::time::timeout(T, cmd.collect())
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, Error::OutputTooLarge { limit: 1000 }),
        "{err:?}"
    );
    // Exactly the bound is fine; one byte less is not.
    let cmd = shell.command("both").start().await.unwrap();
    let out = cmd.collect_with_limit(1200).await.unwrap();
    assert_eq!((out.stdout.len(), out.stderr.len()), (600, 600));
    let cmd = shell.command("both").start().await.unwrap();
    let err = cmd.collect_with_limit(1199).await.unwrap_err();
    assert!(
        matches!(err, Error::OutputTooLarge { limit: 1199 }),
        "{err:?}"
    );
    // A command still producing output is stopped.
    let cmd = shell
        .command("sim-gen")
        .args(["--mib", "64", "--stderr"])
        .start()
        .await
        .unwrap();
    let err = tokio::time::timeout(T, cmd.collect_with_limit(100_000))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, Error::OutputTooLarge { limit: 100_000 }),
        "{err:?}"
    );
    shell.close().await.unwrap();
    client.shutdown().await;
    // One terminate per command: three after a normal end or the bound, one more.
    assert_eq!(sim.counters().terminate_signals, 4, "{:?}", sim.counters());
    assert_clean(&sim).await;
}

// --- An HTML page where SOAP was expected ----------------------------------------------

const PORTAL: &str = "<!DOCTYPE html>\n<html>\n  <head><title>Guest Wi-Fi login</title></head>\n  \
     <body><form action=\"/login\">Accept the terms</form></body>\n</html>\n";

fn client_for(url: &str, auth: Auth) -> Client {
    Client::builder(url)
        .auth(auth)
        .allow_insecure_basic(true)
        .build()
        .unwrap()
}

fn assert_not_soap(err: &Error, content_type: Option<&str>) {
    match err {
        Error::NotSoap {
            status,
            content_type: got,
            excerpt,
        } => {
            assert_eq!(*status, 200);
            assert_eq!(got.as_deref(), content_type);
            assert!(
                excerpt.starts_with("<!DOCTYPE html> <html> <head><title>Guest Wi-Fi login"),
                "{excerpt:?}"
            );
            assert!(excerpt.len() < 200, "{excerpt:?}");
        }
        other => panic!("expected NotSoap, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("HTTP 200") && text.contains("instead of SOAP"),
        "{text}"
    );
    if let Some(ct) = content_type {
        assert!(text.contains(ct), "{text}");
    }
}

#[tokio::test]
async fn html_page_with_200_is_not_soap() {
    let server = mini_http::Server::start(|_, _| {
        mini_http::Reply::Bytes(mini_http::response(
            200,
            "text/html; charset=utf-8",
            PORTAL.as_bytes(),
            &[],
        ))
    })
    .await;
    let client = client_for(&server.url(), Auth::basic("u", "p"));
    let err = client.identify().await.unwrap_err();
    assert_not_soap(&err, Some("text/html; charset=utf-8"));
    // Over NTLM the page answers the handshake: the same error, not an auth error.
    let client = client_for(&server.url(), Auth::ntlm("u", "p"));
    let err = client.identify().await.unwrap_err();
    assert_not_soap(&err, Some("text/html; charset=utf-8"));
}

#[tokio::test]
async fn html_page_without_content_type_is_not_soap() {
    let server = mini_http::Server::start(|_, _| {
        let mut bytes = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            PORTAL.len()
        )
        .into_bytes();
        bytes.extend_from_slice(PORTAL.as_bytes());
        mini_http::Reply::Bytes(bytes)
    })
    .await;
    let client = client_for(&server.url(), Auth::basic("u", "p"));
    let err = client.identify().await.unwrap_err();
    assert_not_soap(&err, None);
}

#[tokio::test]
async fn soap_without_content_type_is_still_read() {
    let envelope = "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" \
        xmlns:wsmid=\"http://schemas.dmtf.org/wbem/wsman/identity/1/wsmanidentity.xsd\">\
        <s:Header/><s:Body><wsmid:IdentifyResponse>\
        <wsmid:ProtocolVersion>http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd</wsmid:ProtocolVersion>\
        <wsmid:ProductVendor>Microsoft Corporation</wsmid:ProductVendor>\
        <wsmid:ProductVersion>OS: 0.0.0 SP: 0.0 Stack: 3.0</wsmid:ProductVersion>\
        </wsmid:IdentifyResponse></s:Body></s:Envelope>";
    let server = mini_http::Server::start(move |_, _| {
        let mut bytes = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            envelope.len()
        )
        .into_bytes();
        bytes.extend_from_slice(envelope.as_bytes());
        mini_http::Reply::Bytes(bytes)
    })
    .await;
    let client = client_for(&server.url(), Auth::basic("u", "p"));
    let id = client.identify().await.unwrap();
    assert_eq!(id.product_vendor, "Microsoft Corporation");
}
