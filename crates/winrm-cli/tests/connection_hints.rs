//! Connection mistakes get a hint naming the way out, as the https-to-http mismatch and
//! a wrong password do: http:// to a TLS port, a host that accepts and never answers,
//! and a web server that is not WinRM.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

mod support;

/// A server on loopback that answers each connection with `serve`; its http:// URL.
fn fake_server(serve: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let url = format!(
        "http://{}/wsman",
        listener.local_addr().expect("an address")
    );
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
    url
}

/// Reads the start of a request (enough for a small one).
fn read_request(conn: &mut TcpStream) {
    let mut buf = [0u8; 8192];
    let _ = conn.read(&mut buf);
}

/// `winrm --endpoint URL args...`: the exit status and stderr.
fn winrm_at(url: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = support::command(args)
        .args(["--endpoint", url])
        .output()
        .expect("runs winrm");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn http_to_a_tls_port_hints_at_https() {
    // What a TLS server sends to a plain HTTP request: an alert record.
    let url = fake_server(|mut conn| {
        read_request(&mut conn);
        let _ = conn.write_all(b"\x15\x03\x03\x00\x02\x02\x46");
    });
    for args in [
        &["identify"][..],
        &["--user", "u", "--password", "p", "identify"],
    ] {
        let (code, stderr) = winrm_at(&url, args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("invalid HTTP version"),
            "{args:?}: {stderr}"
        );
        let https = url.replace("http://", "https://");
        assert!(
            stderr.contains("hint:") && stderr.contains(&format!("use {https}")),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_host_that_never_answers_hints_at_http_timeout() {
    let url = fake_server(|mut conn| {
        read_request(&mut conn);
        std::thread::sleep(std::time::Duration::from_secs(30));
    });
    let (code, stderr) = winrm_at(
        &url,
        &[
            "--operation-timeout",
            "0.5",
            "--http-timeout",
            "1",
            "identify",
        ],
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("timed out after 1s"), "{stderr}");
    assert!(
        stderr.contains("hint:") && stderr.contains("--http-timeout SECS"),
        "{stderr}"
    );
}

#[test]
fn an_html_error_page_hints_that_this_is_not_winrm() {
    // python3 -m http.server's answer to a POST.
    let url = fake_server(|mut conn| {
        read_request(&mut conn);
        let body = "<!DOCTYPE HTML>\n<html><head><title>Error response</title></head>\
                    <body><h1>Error response</h1><p>Error code: 501</p>\
                    <p>Message: Unsupported method ('POST').</p></body></html>\n";
        let _ = write!(
            conn,
            "HTTP/1.0 501 Unsupported method ('POST')\r\nContent-Type: text/html;charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    });
    let (code, stderr) = winrm_at(&url, &["identify"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("HTTP 501"), "{stderr}");
    assert!(
        stderr.contains("hint: not a WinRM endpoint? check host, port and path (/wsman)"),
        "{stderr}"
    );
}
