//! Output the server garbles: a ReceiveResponse whose stream text is not base64. The
//! output before it is delivered, the bad chunk is a typed parse error that ends the
//! stream, and the command is still stopped on the server (Signal terminate) and the
//! shell deleted.

#[path = "support/mini_http.rs"]
mod mini_http;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

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

/// Create, Command, then a Receive with one good chunk and one garbled chunk (and a
/// second Receive, should the client ask for one, that never ends).
async fn server() -> Server {
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
        "Receive" if receives.fetch_add(1, Ordering::SeqCst) == 0 => envelope(
            "ReceiveResponse",
            &format!(
                r#"<rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">aGk=</rsp:Stream><rsp:Stream Name="stdout" CommandId="C1">!!not base64!!</rsp:Stream><rsp:CommandState CommandId="C1" State="{RSP}/CommandState/Running"/></rsp:ReceiveResponse>"#
            ),
        ),
        "Receive" => Reply::Hang,
        "Signal" => envelope("SignalResponse", "<rsp:SignalResponse/>"),
        "Delete" => envelope("DeleteResponse", ""),
        other => panic!("unexpected action {other:?}"),
    })
    .await
}

#[tokio::test]
async fn garbled_output_is_a_parse_error_after_the_good_output_and_the_command_is_stopped() {
    let server = server().await;
    let client = Client::builder(server.url())
        .auth(Auth::basic("user", "pw"))
        .allow_insecure_basic(true)
        .build()
        .unwrap();
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
