//! WinRS against a scripted server, for what the simulator does not send:
//! - output the server garbles (stream text that is not base64): the output before it is
//!   delivered, the bad chunk is a typed parse error that ends the stream, and the command
//!   is still stopped on the server (Signal terminate) and the shell deleted;
//! - large ReceiveResponses sent in many small HTTP chunks (bodies gathered from many
//!   frames, into buffers that are reused): output kept by the consumer stays intact.

#[path = "support/mini_http.rs"]
mod mini_http;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt;
use mini_http::{Captured, Reply, Server};
use tokio_winrm::{Auth, Client, CommandEvent, Error};

const T: Duration = Duration::from_secs(10);
const RSP: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";

fn envelope(action: &str, body: &str) -> Reply {
    Reply::Bytes(mini_http::soap(
        200,
        &format!(
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:rsp="{RSP}"><s:Header><a:Action>{RSP}/{action}</a:Action></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
        ),
    ))
}

fn action_of(req: &Captured) -> String {
    let text = req.text();
    let start = text
        .find("<a:Action")
        .and_then(|i| text[i..].find('>').map(|j| i + j + 1));
    let end = text.find("</a:Action>");
    match (start, end) {
        (Some(s), Some(e)) if s < e => text[s..e].rsplit('/').next().unwrap_or("").to_string(),
        _ => String::new(),
    }
}

/// A shell server: Create, Command, Signal and Delete answered as Windows does; the
/// `k`-th Receive (0-based) answered by `receive(k)`.
async fn shell_server(receive: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Server {
    let receives = AtomicUsize::new(0);
    Server::start(move |_, req| match action_of(req).as_str() {
        "Create" => envelope(
            "CreateResponse",
            r#"<rsp:Shell><rsp:ShellId>S1</rsp:ShellId></rsp:Shell>"#,
        ),
        "Command" => envelope(
            "CommandResponse",
            r#"<rsp:CommandResponse><rsp:CommandId>C1</rsp:CommandId></rsp:CommandResponse>"#,
        ),
        "Receive" => receive(receives.fetch_add(1, Ordering::SeqCst)),
        "Signal" => envelope("SignalResponse", "<rsp:SignalResponse/>"),
        "Delete" => envelope("DeleteResponse", ""),
        other => panic!("unexpected action {other:?}"),
    })
    .await
}

fn client_of(server: &Server) -> Client {
    Client::builder(server.url())
        .auth(Auth::basic("user", "pw"))
        .allow_insecure_basic(true)
        .build()
        .unwrap()
}

/// A Receive with one good chunk and one garbled chunk (and a second Receive, should the
/// client ask for one, that never ends).
async fn server(garbled: String) -> Server {
    shell_server(move |k| match k {
        0 => envelope(
            "ReceiveResponse",
            &format!(
                r#"<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">aGk=</rsp:Stream><rsp:Stream Name="stdout" CommandId="C1">{garbled}</rsp:Stream><rsp:CommandState CommandId="C1" State="{RSP}/CommandState/Running"/></rsp:ReceiveResponse>"#
            ),
        ),
        _ => Reply::Hang,
    })
    .await
}

#[tokio::test]
async fn garbled_output_is_a_parse_error_after_the_good_output_and_the_command_is_stopped() {
    // Small chunks are decoded by the command's driver, large ones (16 KiB of text and
    // more) by the stream as the consumer reads: both paths.
    garbled_case("!!not base64!!".to_string()).await;
    garbled_case(format!("{}!!", "QUJD".repeat(8 * 1024))).await;
}

async fn garbled_case(garbled: String) {
    let server = server(garbled).await;
    let client = client_of(&server);
    let shell = client.shell().open().await.unwrap();
    let mut cmd = shell.command("whatever").start().await.unwrap();
    let first = tokio::time::timeout(T, cmd.next()).await.unwrap();
    assert!(
        matches!(&first, Some(Ok(CommandEvent::Stdout(b))) if &b[..] == b"hi"),
        "{first:?}"
    );
    let second = tokio::time::timeout(T, cmd.next()).await.unwrap();
    match second {
        Some(Err(Error::Parse(e))) => assert!(e.to_string().contains("base64"), "{e}"),
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert!(tokio::time::timeout(T, cmd.next()).await.unwrap().is_none());
    drop(cmd);
    shell.close().await.unwrap();
    tokio::time::timeout(T, client.shutdown()).await.unwrap();
    let actions: Vec<String> = server.requests().iter().map(action_of).collect();
    let signal = actions.iter().position(|a| a == "Signal");
    let delete = actions.iter().position(|a| a == "Delete");
    assert!(signal.is_some(), "no Signal terminate in {actions:?}");
    assert!(delete.is_some(), "no Delete in {actions:?}");
    let signal_body = server.requests()[signal.unwrap()].text();
    assert!(signal_body.contains("signal/terminate"), "{signal_body}");
}

/// The output of Receive number `k` (0-based): 100 KiB of a pattern of its own.
fn output_of(k: usize) -> Vec<u8> {
    (0..100 * 1024)
        .map(|i| ((i * 7 + k * 13) % 251) as u8)
        .collect()
}

#[tokio::test]
async fn output_from_chunked_bodies_stays_intact_while_buffers_are_reused() {
    let server = shell_server(|k| {
            let (streams, state) = if k < 3 {
                let text = base64::engine::general_purpose::STANDARD.encode(output_of(k));
                (
                    format!(r#"<rsp:Stream Name="stdout" CommandId="C1">{text}</rsp:Stream>"#),
                    format!(r#"<rsp:CommandState CommandId="C1" State="{RSP}/CommandState/Running"/>"#),
                )
            } else {
                (
                    String::new(),
                    format!(r#"<rsp:CommandState CommandId="C1" State="{RSP}/CommandState/Done"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>"#),
                )
            };
            let body = format!(
                r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="{RSP}"><s:Body><rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse></s:Body></s:Envelope>"#
            );
            Reply::Bytes(mini_http::chunked(
                200,
                "application/soap+xml;charset=UTF-8",
                body.as_bytes(),
                4096,
            ))
    })
    .await;
    let client = client_of(&server);
    let shell = client.shell().open().await.unwrap();
    let mut cmd = shell.command("whatever").start().await.unwrap();
    let mut held = Vec::new();
    let mut exit = None;
    while let Some(ev) = tokio::time::timeout(T, cmd.next()).await.unwrap() {
        match ev.unwrap() {
            CommandEvent::Stdout(b) => held.push(b),
            CommandEvent::Stderr(b) => panic!("unexpected stderr {b:?}"),
            CommandEvent::Exit(s) => exit = Some(s),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(exit, Some(tokio_winrm::ExitStatus::Exited(0)));
    let got: Vec<u8> = held.iter().flat_map(|b| b.iter().copied()).collect();
    let want: Vec<u8> = (0..3).flat_map(output_of).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "output differs from what the server sent");
    shell.close().await.unwrap();
}
