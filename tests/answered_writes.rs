//! `Error::may_have_executed` for a write the server answered with something the client
//! cannot use: a malformed or non-SOAP 200, an oversized 200, a gateway's 502 or 504 all
//! may mean the request was carried out (so a caller must not run it again), while a
//! refusal (a 404 page, a 503, a SOAP fault) says it was not.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_winrm::{Auth, Client, Error};

/// A server that answers every request on every connection with `answer` (and then
/// closes the connection).
async fn answering(answer: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/wsman", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // The head and a Content-Length body.
                loop {
                    let Ok(n) = conn.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    url
}

fn response(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

async fn create_shell_against(answer: String, max_response_bytes: usize) -> Error {
    let url = answering(answer).await;
    let client = Client::builder(url)
        .auth(Auth::basic("u", "p"))
        .allow_insecure_basic(true)
        .max_response_bytes(max_response_bytes)
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), client.shell().open())
        .await
        .expect("in time")
        .expect_err("no usable answer")
}

const SOAP: &str = "application/soap+xml;charset=UTF-8";

#[tokio::test]
async fn an_answer_that_cannot_be_used_may_mean_the_write_was_carried_out() {
    let cases = [
        (
            response("200 OK", SOAP, "<s:Envelope><unclosed"),
            1 << 20,
            "malformed XML",
        ),
        (
            response("200 OK", "text/html", "<html>ok</html>"),
            1 << 20,
            "HTML with 200",
        ),
        (
            response("200 OK", SOAP, &"x".repeat(4096)),
            1024,
            "over the size cap",
        ),
        (
            response("502 Bad Gateway", "text/plain", "bad gateway"),
            1 << 20,
            "502",
        ),
        (
            response("504 Gateway Timeout", "text/plain", "timeout"),
            1 << 20,
            "504",
        ),
    ];
    for (answer, cap, what) in cases {
        let e = create_shell_against(answer, cap).await;
        assert!(e.may_have_executed(), "{what}: {e:?}");
        assert!(!e.is_retryable(), "{what}: {e:?}");
    }
}

#[tokio::test]
async fn a_refusal_says_the_write_was_not_carried_out() {
    let fault = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header/><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:AccessDenied</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">Access is denied.</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#;
    let cases = [
        (
            response("404 Not Found", "text/html", "<html>no</html>"),
            "404 page",
        ),
        (
            response("503 Service Unavailable", "text/plain", "busy"),
            "503",
        ),
        (
            response("500 Internal Server Error", SOAP, fault),
            "SOAP fault",
        ),
    ];
    for (answer, what) in cases {
        let e = create_shell_against(answer, 1 << 20).await;
        assert!(!e.may_have_executed(), "{what}: {e:?}");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_says_where_it_points() {
    let answer = "HTTP/1.1 307 Temporary Redirect\r\nLocation: https://elsewhere.example:5986/wsman\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string();
    let e = create_shell_against(answer, 1 << 20).await;
    match &e {
        Error::Http { status, excerpt } => {
            assert_eq!(*status, 307);
            assert!(
                excerpt.contains("https://elsewhere.example:5986/wsman")
                    && excerpt.contains("not followed"),
                "{excerpt}"
            );
        }
        other => panic!("expected Http, got {other:?}"),
    }
}

#[tokio::test]
async fn an_oversized_sealed_answer_shows_no_ciphertext() {
    let sim = winrm_simulator::Simulator::start().await.unwrap();
    let client = Client::builder(sim.endpoint())
        .auth(Auth::ntlm(sim.user(), sim.password()))
        .max_response_bytes(2048)
        .build()
        .unwrap();
    // The enumeration's first answer is larger than 2 KiB.
    let res = tokio_winrm::Resource::wmi("root/cimv2", "Win32_Service");
    let e = tokio::time::timeout(
        Duration::from_secs(30),
        client.enumerate(&res).start().collect_items(),
    )
    .await
    .expect("in time")
    .expect_err("over the cap");
    match &e {
        Error::ResponseTooLarge { excerpt, .. } => {
            assert_eq!(excerpt, "(sealed: not shown)", "{e:?}")
        }
        other => panic!("expected ResponseTooLarge, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invoke_answered_with_another_methods_output_is_refused() {
    let body = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"><s:Header/><s:Body><p:StopService_OUTPUT><p:ReturnValue>0</p:ReturnValue></p:StopService_OUTPUT></s:Body></s:Envelope>"#;
    let url = answering(response("200 OK", SOAP, body)).await;
    let client = Client::builder(url)
        .auth(Auth::basic("u", "p"))
        .allow_insecure_basic(true)
        .build()
        .unwrap();
    let res = tokio_winrm::Resource::wmi("root/cimv2", "Win32_Process");
    let input = tokio_winrm::Instance::new("Win32_Process").with("CommandLine", "notepad.exe");
    let e = tokio::time::timeout(
        Duration::from_secs(30),
        client.invoke(&res, "Create", &input),
    )
    .await
    .expect("in time")
    .expect_err("not Create's output");
    assert!(matches!(e, Error::Parse(_)), "{e:?}");
    assert!(e.to_string().contains("StopService_OUTPUT"), "{e}");
    assert!(e.may_have_executed(), "the server answered: {e:?}");
    // The method's own output, in another case, is read (WMI names are case-blind).
    let body = body
        .replace("StopService_OUTPUT", "create_OUTPUT")
        .replace("Win32_Service", "Win32_Process");
    let url = answering(response("200 OK", SOAP, &body)).await;
    let client = Client::builder(url)
        .auth(Auth::basic("u", "p"))
        .allow_insecure_basic(true)
        .build()
        .unwrap();
    let out = client.invoke(&res, "Create", &input).await.unwrap();
    assert!(out.get("ReturnValue").is_some(), "{out:?}");
}
