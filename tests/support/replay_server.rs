//! The replay server of the WinRS replay tests, and helpers to read a command's events.
//!
//! [`Replay`] serves a recording: it matches each request to the next unanswered step
//! with the same `wsa:Action` and releases the replies in recorded order (a client may
//! have a Receive in flight while it sends stdin; Windows holds such a Receive until
//! output arrives, and the recorded order is what the real server did). A request with
//! no step left gets HTTP 599 and is reported by [`Replay::finish`]; a step whose request
//! never comes makes [`Replay::within`] time out with the pending script.
//!
//! Include with `#[path = "support/replay_server.rs"] mod replay_server;` next to
//! `mod compare; mod mini_http; mod recorded;`.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::watch;
use tokio_winrm::{Auth, Client, Command, CommandEvent, ExitStatus};
use wsman_protocol::xml::parse;

use crate::compare::{self, Allowance, equivalent_with};
use crate::mini_http::{self, Captured, Reply, Server};
use crate::recorded;

/// How long any one step of a replay may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

// ---- the replay server ------------------------------------------------------------

/// One recorded exchange the server expects, or an extra request it holds unanswered.
pub struct Step {
    pub label: String,
    pub action: String,
    pub recorded_request: String,
    pub status: u16,
    pub response: String,
    /// Never answered: the request this client sends where the recorded client sent
    /// nothing (a Receive the test then cancels). Compared with `recorded_request`.
    pub hold: bool,
    pub allowances: Vec<&'static Allowance>,
}

#[derive(Default)]
pub struct Progress {
    /// For each step, the index of the request it was matched with.
    consumed: Vec<Option<usize>>,
    /// For each step, whether its reply was released.
    answered: Vec<bool>,
    /// Requests no step was left for.
    unexpected: Vec<String>,
    /// WS-Man terminate Signals answered without a step (see [`answer`]).
    terminates: Vec<usize>,
}

pub struct Replay {
    key: String,
    origin: &'static str,
    server: Server,
    steps: Arc<Vec<Step>>,
    progress: Arc<watch::Sender<Progress>>,
    granted: Vec<&'static Allowance>,
}

/// The steps of a recording, every one with the test's `allowances`.
pub fn steps_of(rec: &recorded::Recording, allowances: &[&'static Allowance]) -> Vec<Step> {
    rec.exchanges
        .iter()
        .enumerate()
        .map(|(i, ex)| {
            let action = parse(ex.request.as_bytes())
                .ok()
                .and_then(|r| compare::action(&r).map(str::to_string))
                .unwrap_or_else(|| panic!("{} #{i}: recorded request has no Action", rec.key()));
            Step {
                label: format!(
                    "{} #{i} {}",
                    rec.key(),
                    action.rsplit('/').next().unwrap_or("")
                ),
                action,
                recorded_request: ex.request.clone(),
                status: ex.status,
                response: ex.response.clone(),
                hold: false,
                allowances: allowances.to_vec(),
            }
        })
        .collect()
}

impl Replay {
    pub async fn start(rec: &recorded::Recording, steps: Vec<Step>) -> Replay {
        let steps = Arc::new(steps);
        let n = steps.len();
        let (tx, _) = watch::channel(Progress {
            consumed: vec![None; n],
            answered: vec![false; n],
            unexpected: Vec::new(),
            terminates: Vec::new(),
        });
        let progress = Arc::new(tx);
        let (s, p) = (Arc::clone(&steps), Arc::clone(&progress));
        let server = Server::start(move |i, req| answer(&s, &p, i, req)).await;
        let mut granted: Vec<&'static Allowance> = Vec::new();
        for a in steps.iter().flat_map(|s| s.allowances.iter()) {
            if !granted.iter().any(|g| g.name == a.name) {
                granted.push(a);
            }
        }
        Replay {
            key: rec.key(),
            origin: rec.origin,
            server,
            steps,
            progress,
            granted,
        }
    }

    /// A client as the recorded one was configured: Basic over HTTP, the recorded
    /// OperationTimeout (MaxEnvelopeSize 153600 and Locale en-US are the defaults).
    pub fn client(&self, operation_timeout: Duration) -> Client {
        Client::builder(self.server.url())
            .auth(Auth::basic("vagrant", "Secr3t!"))
            .allow_insecure_basic(true)
            .operation_timeout(operation_timeout)
            .build()
            .expect("client")
    }

    pub fn pending(&self) -> String {
        let p = self.progress.borrow();
        let mut out = String::new();
        for (k, s) in self.steps.iter().enumerate() {
            let state = match (p.consumed[k], p.answered[k]) {
                (None, _) => "never requested".to_string(),
                (Some(i), true) => format!("request #{i}, answered"),
                (Some(i), false) => format!("request #{i}, reply held for earlier steps"),
            };
            out.push_str(&format!("\n  {}: {state}", s.label));
        }
        for u in &p.unexpected {
            out.push_str(&format!("\n  unexpected: {u}"));
        }
        out
    }

    pub async fn within<T>(&self, what: &str, fut: impl std::future::IntoFuture<Output = T>) -> T {
        match tokio::time::timeout(TIMEOUT, fut).await {
            Ok(v) => v,
            Err(_) => panic!("{}: {what} timed out; script:{}", self.key, self.pending()),
        }
    }

    /// Waits until step `k` has received its request.
    pub async fn requested(&self, k: usize) {
        let mut rx = self.progress.subscribe();
        let wait = async move {
            let _ = rx.wait_for(|p| p.consumed[k].is_some()).await;
        };
        self.within(&format!("waiting for step {k}"), wait).await;
    }

    /// Every step got exactly its request, nothing else came, every request is
    /// equivalent to its recording under the granted allowances, and each granted
    /// allowance was needed. Returns the captured requests in step order.
    pub fn finish(&self) -> Vec<Captured> {
        let reqs = self.server.requests();
        let p = self.progress.borrow();
        assert!(
            p.unexpected.is_empty(),
            "{}: extra request(s) the recording does not have:{}",
            self.key,
            self.pending()
        );
        assert_eq!(
            reqs.len() - p.terminates.len(),
            self.steps.len(),
            "{}: request count differs from the recording:{}",
            self.key,
            self.pending()
        );
        let mut used: Vec<&'static str> = Vec::new();
        let mut in_order = Vec::new();
        for (k, step) in self.steps.iter().enumerate() {
            let Some(i) = p.consumed[k] else {
                panic!(
                    "{}: missing request for {}:{}",
                    self.key,
                    step.label,
                    self.pending()
                );
            };
            let captured = &reqs[i];
            check_http(captured);
            match equivalent_with(
                self.origin,
                &captured.text(),
                &step.recorded_request,
                &step.allowances,
            ) {
                Ok(names) => used.extend(names),
                Err(e) => panic!(
                    "{}: request not equivalent to the recording: {e}\ncaptured: {}",
                    step.label,
                    captured.text()
                ),
            }
            in_order.push(captured.clone());
        }
        for a in &self.granted {
            assert!(
                used.contains(&a.name),
                "{}: allowance {} was granted but never needed; remove it",
                self.key,
                a.name
            );
        }
        in_order
    }
}

/// The server side: match request `i` to a step and answer it in recorded order.
pub fn answer(
    steps: &Arc<Vec<Step>>,
    progress: &Arc<watch::Sender<Progress>>,
    i: usize,
    req: &Captured,
) -> Reply {
    let action = parse(&req.body)
        .ok()
        .and_then(|r| compare::action(&r).map(str::to_string));
    let mut matched = None;
    let mut terminate = false;
    progress.send_modify(|p| {
        let k = steps.iter().enumerate().position(|(k, s)| {
            p.consumed[k].is_none() && action.as_deref() == Some(s.action.as_str())
        });
        // A WS-Man terminate Signal for a finished PSRP pipeline, which pypsrp did not
        // send in these recordings (its next recorded Signal, if any, is another one):
        // answered as Windows answers it, and not matched to a step.
        let text = req.text();
        if text.contains("<rsp:Code>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate</rsp:Code>")
            && text.contains("http://schemas.microsoft.com/powershell/")
            && k.is_none_or(|k| !steps[k].recorded_request.to_ascii_lowercase().contains("signal/terminate"))
        {
            p.terminates.push(i);
            terminate = true;
            return;
        }
        match k {
            Some(k) => {
                p.consumed[k] = Some(i);
                if steps[k].hold {
                    p.answered[k] = true;
                }
                matched = Some(k);
            }
            None => p.unexpected.push(format!(
                "request #{i} with Action {action:?}:\n{}",
                req.text()
            )),
        }
    });
    if terminate {
        return Reply::Bytes(mini_http::soap(
            200,
            r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header><a:Action>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse</a:Action></s:Header><s:Body><rsp:SignalResponse/></s:Body></s:Envelope>"#,
        ));
    }
    let Some(k) = matched else {
        return Reply::Bytes(mini_http::response(
            599,
            "text/plain",
            b"request beyond the recording",
            &[],
        ));
    };
    if steps[k].hold {
        return Reply::Hang;
    }
    let bytes = mini_http::soap(steps[k].status, &steps[k].response);
    let mut rx = progress.subscribe();
    let tx = Arc::clone(progress);
    Reply::Later(Box::pin(async move {
        let _ = rx.wait_for(|p| p.answered[..k].iter().all(|a| *a)).await;
        tx.send_modify(|p| p.answered[k] = true);
        Reply::Bytes(bytes)
    }))
}

pub fn check_http(req: &Captured) {
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/wsman");
    assert_eq!(
        req.header("content-type"),
        Some("application/soap+xml;charset=UTF-8")
    );
    // base64("vagrant:Secr3t!")
    assert_eq!(
        req.header("authorization"),
        Some("Basic dmFncmFudDpTZWNyM3Qh")
    );
}

/// Reads a command's stream to its end: the events, and whether it ended with an error.
pub async fn drain(
    replay: &Replay,
    mut cmd: Command,
) -> (Vec<CommandEvent>, Option<tokio_winrm::Error>) {
    let mut events = Vec::new();
    let mut error = None;
    replay
        .within("reading the command's output", async {
            while let Some(ev) = cmd.next().await {
                match ev {
                    Ok(e) => events.push(e),
                    Err(e) => error = Some(e),
                }
            }
        })
        .await;
    (events, error)
}

pub fn stdout_of(events: &[CommandEvent]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            CommandEvent::Stdout(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

pub fn stderr_of(events: &[CommandEvent]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            CommandEvent::Stderr(b) => Some(b.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

pub fn exit_of(events: &[CommandEvent]) -> ExitStatus {
    let exits: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            CommandEvent::Exit(s) => Some(*s),
            _ => None,
        })
        .collect();
    assert_eq!(exits.len(), 1, "exactly one Exit expected: {events:?}");
    assert!(
        matches!(events.last(), Some(CommandEvent::Exit(_))),
        "Exit must come last: {events:?}"
    );
    exits[0]
}
