//! PowerShell Remoting ([MS-PSRP]) on the WinRS shell plumbing: a shell created on a
//! resource URI under `http://schemas.microsoft.com/powershell/` is a runspace pool,
//! and its commands are pipelines run by the cmdlet engine ([`engine`]).
//!
//! As the recordings of Windows hosts answering pypsrp show:
//! * Create carries SESSION_CAPABILITY and INIT_RUNSPACEPOOL in `creationXml`; the
//!   `ShellId` the client chose (`rsp:Shell/@ShellId`) becomes the shell's id; the
//!   pool's Receives (no `CommandId`, stream `stdout`) return SESSION_CAPABILITY (with
//!   a nil pool id), APPLICATION_PRIVATE_DATA and RUNSPACEPOOL_STATE Opened, one per
//!   Receive: Windows splits them by timing (the recordings show
//!   `[SESSION_CAPABILITY, APPLICATION_PRIVATE_DATA] [STATE]` and
//!   `[SESSION_CAPABILITY] [APPLICATION_PRIVATE_DATA] [STATE]`); the finest split makes
//!   a client loop until Opened, and a replay of either recording never waits. The
//!   protocol version is the lower of the client's and 2.3.
//! * Command carries the first fragments of CREATE_PIPELINE in `rsp:Arguments` (the
//!   rest, if any, follows in Send); `CommandId` is the pipeline id.
//! * Send (streams `stdin` and `pr`) carries PIPELINE_INPUT, END_OF_PIPELINE_INPUT,
//!   host responses and the pool's SET_MAX/MIN_RUNSPACES, GET_AVAILABLE_RUNSPACES and
//!   RESET_RUNSPACE_STATE; messages are routed by their pipeline id.
//! * Receive returns one fragment per `rsp:Stream`, as many as fit the request's
//!   MaxEnvelopeSize, each fragment cut to fit; a pipeline's last Receive adds
//!   `CommandState Done` with exit code 0.
//! * Signal `powershell/signal/crtl_c` ([MS-PSRP] §3.1.5.3.9 spells it so; [MS-WSMV]
//!   §2.2.5.6 and pypsrp say `powershell/signal/ctrl_c`: both are accepted, and so are
//!   the WinRS `ctrl_c`/`ctrl_break`) stops a running pipeline, or with no `CommandId`
//!   every pipeline of the pool: each ends with PIPELINE_STATE Stopped and the
//!   PipelineStoppedException record. Signal `terminate` removes a pipeline; Delete closes
//!   the pool with its pipelines.
//! * Disconnect, Reconnect and Connect are the shell's: pipelines go on running while
//!   the pool is disconnected, their output waits in bounded queues (a writer waits
//!   for a Receive, as Windows' Block buffer mode). Connect with `connectXml`
//!   (SESSION_CAPABILITY, CONNECT_RUNSPACEPOOL) answers SESSION_CAPABILITY and
//!   RUNSPACEPOOL_INIT_DATA in `connectResponseXml`, then APPLICATION_PRIVATE_DATA and
//!   RUNSPACEPOOL_STATE Opened on the pool's stream.
//! * GET_COMMAND_METADATA in a Command is answered with the count and one `CmdletInfo`
//!   per matching command, as Windows shapes them.
//! * An unknown session configuration gets the unknown-resource fault (2150858811).
//! * PUBLIC_KEY gets ENCRYPTED_SESSION_KEY on the pool's stream, and the pool keeps the
//!   key: a SecureString it must send without one (`ConvertTo-SecureString`,
//!   [`CmdletContext::secure_string`](engine::CmdletContext::secure_string)) makes it send
//!   PUBLIC_KEY_REQUEST on the pool's stream and wait for the client's PUBLIC_KEY
//!   ([MS-PSRP] §3.1.5.4.5; Windows PowerShell 2.0 did, later versions expect the client
//!   to exchange first). A cmdlet can also make a host call at pool level
//!   (RUNSPACEPOOL_HOST_CALL, answered by RUNSPACEPOOL_HOST_RESPONSE on `pr`) and report
//!   the pool Broken (RUNSPACEPOOL_STATE on the pool's stream, its pipelines left as
//!   they are), for the tests of a client's reading of the pool's stream.
//!
//! Choices where Windows' behaviour is not on record:
//! * a pipeline stays (and counts in `running_commands`) after it ends, until Signal
//!   `terminate` or the pool's Delete (pypsrp sends `terminate` after each pipeline and
//!   Windows answers it); a Receive pending on a pipeline that `terminate` removes
//!   returns at once with `CommandState Done`;
//! * pipelines beyond the pool's MaxRunspaces wait for a runspace (SET_MAX_RUNSPACES
//!   resizes the pool at once, or as running pipelines end when it shrinks);
//! * the stop record is PowerShell's PipelineStoppedException ("The pipeline has been
//!   stopped."), the Write-Error and CommandNotFoundException records are modelled on
//!   PowerShell 5.1's without invocation info.

pub(crate) mod engine;
pub(crate) mod objects;
mod script;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::super::body::{BodyBuilder, SimBody};
use super::super::response::{ENVELOPE_TAIL, SimFault, envelope_head};
use super::super::{SimRequest, State};
use super::process::lock;
use super::{Conn, Shell, add, bad_parameter, unknown_command};
use crate::soap::ns::{self, action};
use crate::soap::psrp::clixml;
use crate::soap::psrp::messages::{
    ApplicationPrivateData, ClientMessage, CreatePipeline, ErrorRecord, HostResponse,
    PipelineState, PipelineStateInfo, ProtocolVersion, RunspacePoolState, RunspacePoolStateInfo,
    SessionCapability,
};
use crate::soap::psrp::{
    Defragmenter, Destination, Fragment, Fragmenter, Message, MessageType, PsObject, PsValue,
};

/// The resource URIs of PowerShell session configurations.
pub(crate) const PS_URI_PREFIX: &str = "http://schemas.microsoft.com/powershell/";
/// The namespace of `creationXml`, `connectXml` and `connectResponseXml`.
const PS_NS: &str = "http://schemas.microsoft.com/powershell";
/// The session configurations a Windows host has by default.
const CONFIGURATIONS: &[&str] = &[
    "Microsoft.PowerShell",
    "Microsoft.PowerShell32",
    "Microsoft.PowerShell.Workflow",
    "Microsoft.Windows.ServerManagerWorkflows",
];
/// Message bytes a pipeline may have queued before its writes wait for a Receive.
const QUEUE_LIMIT: usize = 1024 * 1024;
/// The envelope around the streams of a ReceiveResponse (headers, CommandState).
const RECEIVE_OVERHEAD: usize = 1_200;
/// One `<rsp:Stream Name="stdout" CommandId="...">` `</rsp:Stream>` pair.
const STREAM_OVERHEAD: usize = 100;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const STATE_DONE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
const STATE_RUNNING: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running";

/// Whether `uri` names a PowerShell session configuration (known or not).
pub(crate) fn is_ps_uri(uri: &str) -> bool {
    // Bytes, so a multi-byte character at the boundary cannot split a slice.
    uri.len() > PS_URI_PREFIX.len()
        && uri.as_bytes()[..PS_URI_PREFIX.len()].eq_ignore_ascii_case(PS_URI_PREFIX.as_bytes())
}

/// The configuration name of a PowerShell resource URI (after [`is_ps_uri`]).
fn configuration_name(uri: &str) -> &str {
    uri.get(PS_URI_PREFIX.len()..).unwrap_or("")
}

/// The fault for a session configuration the host does not have.
fn unknown_configuration(uri: &str) -> SimFault {
    // What Windows answers for a configuration it does not have (seen by pypsrp users
    // for `Microsoft.Exchange`): the unknown-resource fault, 2150858811.
    let mut f = SimFault::not_found(uri);
    f.reason = format!(
        "The WS-Management service cannot process the request. The resource URI ({uri}) was not found in the WS-Management catalog. The catalog contains the metadata that describes resources, or logical endpoints."
    );
    f
}

/// A server message with the data Windows writes: a UTF-8 byte order mark, then CLIXML.
pub(crate) fn server_message(
    message_type: MessageType,
    pool: Uuid,
    pipeline: Option<Uuid>,
    value: &PsValue,
) -> Message {
    let text = clixml::to_string(value);
    let mut data = Vec::with_capacity(UTF8_BOM.len() + text.len());
    data.extend_from_slice(UTF8_BOM);
    data.extend_from_slice(text.as_bytes());
    Message::new(Destination::Client, message_type, pool, pipeline, data)
}

/// Messages waiting for Receives, cut into fragments when a Receive takes them (so the
/// fragments fit that Receive's MaxEnvelopeSize).
pub(crate) struct Outbox {
    inner: Mutex<OutInner>,
    /// Bumped on every push and on the end (wakes pending Receives).
    changed: watch::Sender<u64>,
    /// Bumped when a Receive takes messages (wakes writers waiting for room).
    drained: watch::Sender<u64>,
}

#[derive(Default)]
struct OutInner {
    queue: VecDeque<Queued>,
    /// Data bytes of the messages in `queue`.
    bytes: usize,
    /// The rest of a message cut into fragments by an earlier Receive.
    partial: VecDeque<Fragment>,
    /// No more messages will come (the pipeline's final state is in the queue).
    finished: bool,
    /// The pool or pipeline is gone: writes are dropped.
    closed: bool,
}

/// An entry of an outbox: a message, or the end of what one Receive returns.
enum Queued {
    Message(Message),
    /// A Receive that has taken something stops here (Windows returns the opening
    /// messages of a pool over several Receives).
    Break,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            inner: Mutex::new(OutInner::default()),
            changed: watch::channel(0).0,
            drained: watch::channel(0).0,
        }
    }

    fn bump(tx: &watch::Sender<u64>) {
        tx.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Queues a message without waiting (state and pool messages).
    pub(crate) fn push_now(&self, m: Message) {
        {
            let mut g = lock(&self.inner);
            if g.closed {
                return;
            }
            g.bytes += m.data.len();
            g.queue.push_back(Queued::Message(m));
        }
        Outbox::bump(&self.changed);
    }

    /// Ends the current Receive's batch: what is queued next comes in a later Receive.
    fn push_break(&self) {
        lock(&self.inner).queue.push_back(Queued::Break);
    }

    /// Queues a message, waiting while the queue holds more than its limit.
    pub(crate) async fn push(&self, m: Message) {
        let mut m = Some(m);
        loop {
            if self.try_push(&mut m) {
                return;
            }
            // Subscribed before the second look, so a Receive in between is not missed.
            let mut drained = self.drained.subscribe();
            if self.try_push(&mut m) || drained.changed().await.is_err() {
                return;
            }
        }
    }

    /// Queues `m` if there is room (or drops it if the outbox is closed): true when
    /// `m` was taken.
    fn try_push(&self, m: &mut Option<Message>) -> bool {
        {
            let mut g = lock(&self.inner);
            if !g.closed {
                if g.bytes >= QUEUE_LIMIT {
                    return false;
                }
                if let Some(m) = m.take() {
                    g.bytes += m.data.len();
                    g.queue.push_back(Queued::Message(m));
                }
            }
        }
        Outbox::bump(&self.changed);
        true
    }

    fn finish(&self) {
        lock(&self.inner).finished = true;
        Outbox::bump(&self.changed);
    }

    fn close(&self) {
        {
            let mut g = lock(&self.inner);
            g.closed = true;
            g.queue.clear();
            g.partial.clear();
            g.bytes = 0;
        }
        Outbox::bump(&self.changed);
        Outbox::bump(&self.drained);
    }

    fn ready(&self) -> bool {
        let g = lock(&self.inner);
        g.queue.iter().any(|q| matches!(q, Queued::Message(_)))
            || !g.partial.is_empty()
            || g.finished
            || g.closed
    }

    /// Takes whole fragments whose base64 fits `budget` characters (at least one),
    /// cutting messages into blobs of at most `max_blob` bytes; also says whether the
    /// outbox is finished and now empty.
    fn take(
        &self,
        ids: &Mutex<Fragmenter>,
        max_blob: usize,
        budget: usize,
    ) -> (Vec<Vec<u8>>, bool) {
        let mut out = Vec::new();
        let mut used = 0usize;
        let mut g = lock(&self.inner);
        let mut took = false;
        loop {
            if g.partial.is_empty() {
                let m = match g.queue.pop_front() {
                    None => break,
                    Some(Queued::Break) if out.is_empty() => continue,
                    Some(Queued::Break) => break,
                    Some(Queued::Message(m)) => m,
                };
                g.bytes -= m.data.len();
                took = true;
                let mut f = lock(ids);
                f.set_max_blob(max_blob);
                let frags = f.fragment(&m);
                g.partial.extend(frags);
            }
            let Some(front) = g.partial.front() else {
                break;
            };
            let cost = (front.blob.len() + 21).div_ceil(3) * 4 + STREAM_OVERHEAD;
            if !out.is_empty() && used + cost > budget {
                break;
            }
            used += cost;
            if let Some(f) = g.partial.pop_front() {
                out.push(f.encode());
            }
        }
        // A pipeline removed by Signal terminate (closed) is done too.
        let done = g.closed || (g.finished && g.queue.is_empty() && g.partial.is_empty());
        drop(g);
        if took {
            Outbox::bump(&self.drained);
        }
        (out, done)
    }
}

/// One pipeline of a pool (a WinRS command).
pub(crate) struct Pipeline {
    /// The pipeline id as the client's messages carry it.
    id: Mutex<Option<Uuid>>,
    /// The `CommandId` (upper case).
    command_id: String,
    /// The CommandId as a GUID, when it is one.
    command_uuid: Option<Uuid>,
    pub(crate) outbox: Outbox,
    input: Mutex<Option<mpsc::UnboundedSender<PsValue>>>,
    input_rx: Mutex<Option<mpsc::UnboundedReceiver<PsValue>>>,
    host_waiters: Mutex<HashMap<i64, oneshot::Sender<HostResponse>>>,
    next_call: AtomicI64,
    stop: CancellationToken,
    task: Mutex<Option<AbortHandle>>,
    receivers: AtomicUsize,
    started: std::sync::atomic::AtomicBool,
}

impl Pipeline {
    fn new(command_id: String) -> Arc<Pipeline> {
        let (tx, rx) = mpsc::unbounded_channel();
        Arc::new(Pipeline {
            id: Mutex::new(None),
            command_uuid: Uuid::parse_str(&command_id).ok(),
            command_id,
            outbox: Outbox::new(),
            input: Mutex::new(Some(tx)),
            input_rx: Mutex::new(Some(rx)),
            host_waiters: Mutex::new(HashMap::new()),
            next_call: AtomicI64::new(1),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
            receivers: AtomicUsize::new(0),
            started: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether a message's pipeline id names this pipeline: the CommandId in either
    /// GUID byte order (pypsrp writes RFC 4122 order, PowerShell the .NET order).
    fn matches(&self, pid: Uuid) -> bool {
        if lock(&self.id).is_some_and(|id| id == pid) {
            return true;
        }
        self.command_uuid
            .is_some_and(|c| c == pid || c == Uuid::from_bytes_le(*pid.as_bytes()))
    }

    /// Registers a host call and returns its id and the receiver of its response.
    pub(crate) fn host_call(&self) -> (i64, oneshot::Receiver<HostResponse>) {
        let id = self.next_call.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        lock(&self.host_waiters).insert(id, tx);
        (id, rx)
    }

    fn kill(&self) {
        self.stop.cancel();
        if let Some(t) = lock(&self.task).take() {
            t.abort();
        }
        self.outbox.close();
        lock(&self.input).take();
    }
}

/// The PSRP side of a shell: the runspace pool.
pub(crate) struct Pool {
    /// The pool id as the client's messages carry it.
    pub(crate) id: Uuid,
    pub(crate) version: ProtocolVersion,
    size: Mutex<(i32, i32)>,
    /// One permit per runspace: a pipeline waits for one before it runs (a nested
    /// pipeline runs in its parent's).
    runspaces: Arc<tokio::sync::Semaphore>,
    /// Numbers the objects the server sends in this pool.
    ids: Mutex<Fragmenter>,
    inbound: Mutex<Defragmenter>,
    outbox: Outbox,
    pipelines: Mutex<Vec<Arc<Pipeline>>>,
    /// The pool's host is null (`HostInfo._isHostNull`), and its UI.
    host_null: bool,
    host_ui_null: bool,
    /// INIT_RUNSPACEPOOL's `ApplicationArguments` (`$PSSenderInfo.ApplicationArguments`).
    application_arguments: Arc<Vec<(PsValue, PsValue)>>,
    /// The session key the client's last PUBLIC_KEY got ([MS-PSRP] §3.2.5.4.3).
    session_key: Mutex<Option<wsman_protocol::psrp::SessionKey>>,
    /// Bumped when a session key is made.
    key_changed: watch::Sender<u64>,
    /// RUNSPACEPOOL_HOST_CALLs waiting for their RUNSPACEPOOL_HOST_RESPONSE.
    host_waiters: Mutex<HashMap<i64, oneshot::Sender<HostResponse>>>,
    next_call: AtomicI64,
}

impl Pool {
    pub(super) fn pipeline_by_command(&self, id: &str) -> Result<Arc<Pipeline>, SimFault> {
        let id = id.trim();
        lock(&self.pipelines)
            .iter()
            .find(|p| p.command_id.eq_ignore_ascii_case(id))
            .cloned()
            .ok_or_else(unknown_command)
    }

    fn pipeline_by_id(&self, pid: Uuid) -> Option<Arc<Pipeline>> {
        lock(&self.pipelines)
            .iter()
            .find(|p| p.matches(pid))
            .cloned()
    }

    /// Ends every pipeline (Delete, idle timeout); returns how many there were.
    pub(crate) fn close(&self) -> usize {
        let all: Vec<Arc<Pipeline>> = lock(&self.pipelines).drain(..).collect();
        for p in &all {
            p.kill();
        }
        self.outbox.close();
        all.len()
    }

    /// Changes the number of runspaces: more permits now, or fewer as running
    /// pipelines give theirs back.
    fn resize(&self, max: i32) {
        let old = {
            let mut size = lock(&self.size);
            std::mem::replace(&mut size.1, max)
        };
        let (old, new) = (runspace_count(old), runspace_count(max));
        if new > old {
            self.runspaces.add_permits(new - old);
        } else if new < old {
            let sem = Arc::clone(&self.runspaces);
            let n = u32::try_from(old - new).unwrap_or(u32::MAX);
            tokio::spawn(async move {
                if let Ok(p) = sem.acquire_many_owned(n).await {
                    p.forget();
                }
            });
        }
    }

    fn push_pool(&self, t: MessageType, v: &PsValue) {
        self.outbox.push_now(server_message(t, self.id, None, v));
    }

    /// The pool's session key if the client exchanged one (no request made).
    pub(crate) fn current_session_key(&self) -> Option<wsman_protocol::psrp::SessionKey> {
        lock(&self.session_key).clone()
    }

    /// The pool's session key; without one, PUBLIC_KEY_REQUEST on the pool's stream
    /// ([MS-PSRP] §3.1.5.4.5, as a server that must send a SecureString does), then
    /// waits (at most `wait`) for the client's PUBLIC_KEY.
    pub(crate) async fn session_key(
        &self,
        wait: std::time::Duration,
    ) -> Option<wsman_protocol::psrp::SessionKey> {
        let mut changed = self.key_changed.subscribe();
        if let Some(k) = lock(&self.session_key).clone() {
            return Some(k);
        }
        // `<S></S>`: an empty string (§2.2.2.5).
        self.push_pool(
            MessageType::PublicKeyRequest,
            &PsValue::String(String::new()),
        );
        let deadline = Instant::now() + wait;
        loop {
            if let Some(k) = lock(&self.session_key).clone() {
                return Some(k);
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return None },
                () = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// A RUNSPACEPOOL_HOST_CALL on the pool's stream ([MS-PSRP] §2.2.2.15): its call id
    /// and the receiver of the RUNSPACEPOOL_HOST_RESPONSE (none for a void method).
    pub(crate) fn pool_host_call(
        &self,
        method: crate::soap::psrp::messages::HostMethod,
        parameters: Vec<PsValue>,
    ) -> Option<oneshot::Receiver<HostResponse>> {
        let (id, rx) = if method.is_void() {
            (-100, None)
        } else {
            let id = self.next_call.fetch_add(1, Ordering::SeqCst);
            let (tx, rx) = oneshot::channel();
            lock(&self.host_waiters).insert(id, tx);
            (id, Some(rx))
        };
        let call = crate::soap::psrp::messages::HostCall::new(id, method, parameters);
        self.push_pool(MessageType::RunspacePoolHostCall, &call.to_value());
        rx
    }

    /// RUNSPACEPOOL_STATE Broken with `error` on the pool's stream (§2.2.2.2); the
    /// pipelines are left as they are (a client must not wait for them forever).
    pub(crate) fn report_broken(&self, error: ErrorRecord) {
        let mut info = RunspacePoolStateInfo::new(RunspacePoolState::Broken);
        info.error = Some(error);
        self.push_pool(MessageType::RunspacePoolState, &info.to_value());
    }

    fn application_private_data(&self) -> PsValue {
        let version = |v: &str| PsValue::Version(v.into());
        let table = PsObject::new()
            .with_type_names([
                "System.Management.Automation.PSPrimitiveDictionary",
                "System.Collections.Hashtable",
                "System.Object",
            ])
            .with_collection(crate::soap::psrp::Collection::Dictionary(vec![
                ("PSVersion".into(), version("5.1.20348.1")),
                ("PSEdition".into(), "Desktop".into()),
                (
                    "PSCompatibleVersions".into(),
                    PsObject::list(
                        ["System.Version[]", "System.Array", "System.Object"],
                        ["1.0", "2.0", "3.0", "4.0", "5.0", "5.1.20348.1"]
                            .iter()
                            .map(|v| version(v))
                            .collect(),
                    )
                    .into(),
                ),
                ("CLRVersion".into(), version("4.0.30319.42000")),
                ("BuildVersion".into(), version("10.0.20348.1")),
                ("WSManStackVersion".into(), version("3.0")),
                (
                    "PSRemotingProtocolVersion".into(),
                    version(&self.version.to_string()),
                ),
                ("SerializationVersion".into(), version("1.1.0.1")),
            ]));
        let mut data = ApplicationPrivateData::new(vec![("PSVersionTable".into(), table.into())]);
        if let Some(o) = data.data.as_object() {
            let o = o.clone().with_type_names([
                "System.Management.Automation.PSPrimitiveDictionary",
                "System.Collections.Hashtable",
                "System.Object",
            ]);
            data.data = o.into();
        }
        data.to_value()
    }
}

/// The permits for `max` runspaces (at least 1, at most 4096).
fn runspace_count(max: i32) -> usize {
    usize::try_from(max.clamp(1, 4096)).unwrap_or(1)
}

/// Decodes base64 text (whitespace ignored).
fn base64_bytes(text: &str) -> Result<Bytes, SimFault> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD
        .decode(clean.as_bytes())
        .map(Bytes::from)
        .map_err(|_| bad_parameter())
}

fn defragment(d: &Mutex<Defragmenter>, bytes: &Bytes) -> Result<Vec<Message>, SimFault> {
    lock(d).push_messages(bytes).map_err(|_| bad_parameter())
}

fn version_of(req: &SimRequest, caps: Option<&SessionCapability>) -> ProtocolVersion {
    let asked = caps
        .and_then(|c| c.protocol().ok())
        .or_else(|| req.option("protocolversion").and_then(|v| v.parse().ok()))
        .unwrap_or(ProtocolVersion::V2_3);
    asked.clamp(ProtocolVersion::V2_1, ProtocolVersion::V2_3)
}

/// Reads a Create on a PowerShell resource URI: the pool it opens.
pub(super) fn open(state: &State, req: &SimRequest, uri: &str) -> Result<Arc<Pool>, SimFault> {
    let name = configuration_name(uri);
    let known = CONFIGURATIONS.iter().any(|c| c.eq_ignore_ascii_case(name))
        || state.winrs.registry.has_configuration(name);
    if !known {
        return Err(unknown_configuration(uri));
    }
    let xml = req
        .body
        .child(ns::SHELL, "Shell")
        .and_then(|s| s.child(PS_NS, "creationXml"))
        .ok_or_else(bad_parameter)?;
    let mut inbound = Defragmenter::new();
    let messages = inbound
        .push_messages(&base64_bytes(&xml.text)?)
        .map_err(|_| bad_parameter())?;
    let mut caps = None;
    let mut init = None;
    let mut pool_id = None;
    for m in &messages {
        pool_id.get_or_insert(m.runspace_pool_id);
        match ClientMessage::decode(m).map_err(|_| bad_parameter())? {
            ClientMessage::SessionCapability(c) => caps = Some(c),
            ClientMessage::InitRunspacePool(i) => init = Some(i),
            _ => {}
        }
    }
    let (Some(caps), Some(init), Some(pool_id)) = (caps, init, pool_id) else {
        return Err(bad_parameter());
    };
    let version = version_of(req, Some(&caps));
    let pool = Arc::new(Pool {
        id: pool_id,
        version,
        size: Mutex::new((init.min_runspaces, init.max_runspaces)),
        runspaces: Arc::new(tokio::sync::Semaphore::new(runspace_count(
            init.max_runspaces,
        ))),
        ids: Mutex::new(Fragmenter::new(32_000)),
        inbound: Mutex::new(inbound),
        outbox: Outbox::new(),
        pipelines: Mutex::new(Vec::new()),
        host_null: init.host_info.is_host_null,
        host_ui_null: init.host_info.is_host_null || init.host_info.is_host_ui_null,
        application_arguments: Arc::new(init.application_arguments.clone().unwrap_or_default()),
        session_key: Mutex::new(None),
        key_changed: watch::channel(0).0,
        host_waiters: Mutex::new(HashMap::new()),
        next_call: AtomicI64::new(1),
    });
    let mut server_caps = SessionCapability::default();
    server_caps.protocol_version = version.to_string();
    // Windows sends its SESSION_CAPABILITY with a nil pool id.
    pool.outbox.push_now(server_message(
        MessageType::SessionCapability,
        Uuid::nil(),
        None,
        &server_caps.to_value(),
    ));
    pool.outbox.push_break();
    pool.push_pool(
        MessageType::ApplicationPrivateData,
        &pool.application_private_data(),
    );
    pool.outbox.push_break();
    pool.push_pool(
        MessageType::RunspacePoolState,
        &RunspacePoolStateInfo::new(RunspacePoolState::Opened).to_value(),
    );
    Ok(pool)
}

/// The Connect of another client (`connectXml`): the `rsp:ConnectResponse` body.
pub(super) fn connect(req: &SimRequest, pool: &Pool) -> Result<Option<String>, SimFault> {
    let Some(xml) = req
        .body
        .child(ns::SHELL, "Connect")
        .and_then(|c| c.child(PS_NS, "connectXml"))
    else {
        return Ok(None);
    };
    let messages = defragment(&pool.inbound, &base64_bytes(&xml.text)?)?;
    let mut version = pool.version;
    for m in &messages {
        match ClientMessage::decode(m).map_err(|_| bad_parameter())? {
            ClientMessage::SessionCapability(c) => {
                version = version_of(req, Some(&c)).min(pool.version);
            }
            ClientMessage::ConnectRunspacePool(_) => {}
            _ => return Err(bad_parameter()),
        }
    }
    let mut caps = SessionCapability::default();
    caps.protocol_version = version.to_string();
    let (min, max) = *lock(&pool.size);
    let init = PsObject::new()
        .with_property("MinRunspaces", min)
        .with_property("MaxRunspaces", max);
    let reply = [
        server_message(
            MessageType::SessionCapability,
            pool.id,
            None,
            &caps.to_value(),
        ),
        server_message(
            MessageType::RunspacePoolInitData,
            pool.id,
            None,
            &init.into(),
        ),
    ];
    let payload = lock(&pool.ids).pack(&reply).concat();
    pool.push_pool(
        MessageType::ApplicationPrivateData,
        &pool.application_private_data(),
    );
    pool.push_pool(
        MessageType::RunspacePoolState,
        &RunspacePoolStateInfo::new(RunspacePoolState::Opened).to_value(),
    );
    Ok(Some(format!(
        "<rsp:ConnectResponse><pwsh:connectResponseXml xmlns:pwsh=\"{PS_NS}\">{}</pwsh:connectResponseXml></rsp:ConnectResponse>",
        STANDARD.encode(payload)
    )))
}

/// Acts on messages a client sent (in Command or Send).
fn route(
    state: &Arc<State>,
    shell: &Arc<Shell>,
    pool: &Arc<Pool>,
    messages: Vec<Message>,
) -> Result<(), SimFault> {
    for m in messages {
        let decoded = ClientMessage::decode(&m).map_err(|_| bad_parameter())?;
        let pipeline = m
            .pipeline_id
            .filter(|p| !p.is_nil())
            .and_then(|p| pool.pipeline_by_id(p));
        match decoded {
            ClientMessage::CreatePipeline(create) => {
                let p = pipeline.ok_or_else(bad_parameter)?;
                *lock(&p.id) = m.pipeline_id;
                start(state, shell, pool, &p, *create);
            }
            ClientMessage::PipelineInput(v) => {
                if let Some(p) = pipeline
                    && let Some(tx) = lock(&p.input).as_ref()
                {
                    let _ = tx.send(engine::deserialized(v));
                }
            }
            ClientMessage::EndOfPipelineInput => {
                if let Some(p) = pipeline {
                    lock(&p.input).take();
                }
            }
            ClientMessage::HostResponse(r) => {
                if let Some(p) = pipeline {
                    if let Some(tx) = lock(&p.host_waiters).remove(&r.call_id) {
                        let _ = tx.send(r);
                    }
                } else if m.message_type == MessageType::RunspacePoolHostResponse
                    && let Some(tx) = lock(&pool.host_waiters).remove(&r.call_id)
                {
                    let _ = tx.send(r);
                }
            }
            ClientMessage::SetMaxRunspaces {
                max_runspaces,
                call_id,
            } => {
                let ok = max_runspaces >= i64::from(lock(&pool.size).0);
                if ok {
                    pool.resize(i32::try_from(max_runspaces).unwrap_or(i32::MAX));
                }
                availability(pool, call_id, PsValue::Bool(ok));
            }
            ClientMessage::SetMinRunspaces {
                min_runspaces,
                call_id,
            } => {
                let ok = min_runspaces >= 1 && min_runspaces <= i64::from(lock(&pool.size).1);
                if ok {
                    lock(&pool.size).0 = i32::try_from(min_runspaces).unwrap_or(1);
                }
                availability(pool, call_id, PsValue::Bool(ok));
            }
            ClientMessage::GetAvailableRunspaces { call_id } => {
                let free = pool.runspaces.available_permits() as i64;
                availability(pool, call_id, PsValue::I64(free));
            }
            ClientMessage::ResetRunspaceState { call_id } => {
                availability(pool, call_id, PsValue::Bool(true));
            }
            ClientMessage::Other(MessageType::PublicKey, v) => {
                // [MS-PSRP] §3.2.5.4.3: a fresh session key, wrapped with the client's
                // public key, in ENCRYPTED_SESSION_KEY on the pool's output.
                let blob = v
                    .property("PublicKey")
                    .and_then(PsValue::as_str)
                    .ok_or_else(bad_parameter)?;
                let key = wsman_protocol::psrp::SessionKey::generate();
                let wrapped = key.encrypt_for(blob).map_err(|_| bad_parameter())?;
                let v = PsObject::new().with_property("EncryptedSessionKey", wrapped);
                pool.push_pool(MessageType::EncryptedSessionKey, &v.into());
                // Kept: the SecureStrings this pool sends are made with it.
                *lock(&pool.session_key) = Some(key);
                Outbox::bump(&pool.key_changed);
            }
            ClientMessage::Other(MessageType::GetCommandMetadata, v) => {
                let p = pipeline.ok_or_else(bad_parameter)?;
                *lock(&p.id) = m.pipeline_id;
                command_metadata(state, pool, &p, &v);
            }
            _ => {}
        }
    }
    Ok(())
}

fn availability(pool: &Pool, call_id: i64, response: PsValue) {
    let v = PsObject::new()
        .with_property("SetMinMaxRunspacesResponse", response)
        .with_property("ci", call_id);
    pool.push_pool(MessageType::RunspaceAvailability, &v.into());
}

/// Starts a pipeline's task.
fn start(
    state: &Arc<State>,
    shell: &Arc<Shell>,
    pool: &Arc<Pool>,
    p: &Arc<Pipeline>,
    create: CreatePipeline,
) {
    if p.started.swap(true, Ordering::SeqCst) || shell.closed.is_cancelled() {
        return;
    }
    let input = lock(&p.input_rx).take();
    let input = if create.no_input {
        lock(&p.input).take();
        None
    } else {
        input
    };
    let run = engine::Run {
        state: Arc::clone(state),
        pool_id: pool.id,
        pipeline_id: lock(&p.id).unwrap_or_default(),
        version: pool.version,
        // [MS-PSRP] §2.2.3.14: a pipeline with `_useRunspaceHost` uses the pool's host.
        host_null: if create.host_info.use_runspace_host {
            pool.host_null
        } else {
            create.host_info.is_host_null
        },
        host_ui_null: if create.host_info.use_runspace_host {
            pool.host_ui_null
        } else {
            create.host_info.is_host_null || create.host_info.is_host_ui_null
        },
        pipeline: Arc::clone(p),
        pool: Arc::clone(pool),
        application_arguments: Arc::clone(&pool.application_arguments),
        user: shell.owner.clone(),
    };
    let stop = p.stop.clone();
    let shutdown = state.shutdown.clone();
    let pipeline = Arc::clone(p);
    let runspaces =
        (!create.is_nested && !create.powershell.is_nested).then(|| Arc::clone(&pool.runspaces));
    let task = tokio::spawn(async move {
        let work = async {
            // Queued until a runspace is free, as Windows queues pipelines.
            let _runspace = match runspaces {
                Some(sem) => sem.acquire_owned().await.ok(),
                None => None,
            };
            engine::run(run.clone(), create.powershell, input).await
        };
        let outcome = tokio::select! {
            r = work => r,
            () = stop.cancelled() => engine::Outcome::Stopped,
            () = shutdown.cancelled() => return,
        };
        let mut info = match outcome {
            engine::Outcome::Completed => PipelineStateInfo::new(PipelineState::Completed),
            engine::Outcome::Failed(e) => {
                let mut i = PipelineStateInfo::new(PipelineState::Failed);
                i.error = Some(*e);
                i
            }
            engine::Outcome::Stopped => {
                let mut i = PipelineStateInfo::new(PipelineState::Stopped);
                i.error = Some(stopped_record());
                i
            }
        };
        if info.state == PipelineState::Completed && stop.is_cancelled() {
            info = PipelineStateInfo::new(PipelineState::Stopped);
            info.error = Some(stopped_record());
        }
        pipeline.outbox.push_now(server_message(
            MessageType::PipelineState,
            run.pool_id,
            Some(run.pipeline_id),
            &info.to_value(),
        ));
        pipeline.outbox.finish();
    });
    *lock(&p.task) = Some(task.abort_handle());
}

/// GET_COMMAND_METADATA ([MS-PSRP] §2.2.2.14) on a pipeline: the count, then one
/// `CmdletInfo` per matching command (built-in and registered), then Completed.
fn command_metadata(state: &Arc<State>, pool: &Pool, p: &Arc<Pipeline>, request: &PsValue) {
    if p.started.swap(true, Ordering::SeqCst) {
        return;
    }
    let patterns: Vec<String> = request
        .property("Name")
        .map(|v| {
            engine::enumerate(v.clone())
                .iter()
                .filter_map(engine::text_of)
                .collect()
        })
        .unwrap_or_else(|| vec!["*".into()]);
    let found = engine::command_metadata(state, &patterns);
    let pid = lock(&p.id).unwrap_or_default();
    let count = PsObject::new()
        .with_type_names([
            "Selected.Microsoft.PowerShell.Commands.GenericMeasureInfo",
            "System.Management.Automation.PSCustomObject",
            "System.Object",
        ])
        .with_property("Count", PsValue::I32(found.len() as i32));
    let out = |v: &PsValue| server_message(MessageType::PipelineOutput, pool.id, Some(pid), v);
    p.outbox.push_now(out(&count.into()));
    for v in &found {
        p.outbox.push_now(out(v));
    }
    p.outbox.push_now(server_message(
        MessageType::PipelineState,
        pool.id,
        Some(pid),
        &PipelineStateInfo::new(PipelineState::Completed).to_value(),
    ));
    p.outbox.finish();
}

/// The error record of PIPELINE_STATE Stopped, as PowerShell writes it.
fn stopped_record() -> ErrorRecord {
    let mut e = ErrorRecord::new(
        "The pipeline has been stopped.",
        "PipelineStopped",
        crate::soap::psrp::messages::ErrorCategory::OperationStopped,
    );
    e.exception_type = Some("System.Management.Automation.PipelineStoppedException".into());
    if let Some(o) = e.raw.as_object() {
        let mut o = o.clone();
        o.extended.retain(|(n, _)| n != "Exception");
        let exception = PsObject::new()
            .with_type_names([
                "System.Management.Automation.PipelineStoppedException",
                "System.Management.Automation.RuntimeException",
                "System.SystemException",
                "System.Exception",
                "System.Object",
            ])
            .with_to_string("System.Management.Automation.PipelineStoppedException: The pipeline has been stopped.")
            .with_adapted("Message", "The pipeline has been stopped.")
            .with_adapted("HResult", -2_146_233_087_i32);
        o.extended.insert(0, ("Exception".into(), exception.into()));
        o.extended.iter_mut().for_each(|(n, v)| {
            if n == "ErrorCategory_Reason" {
                *v = "PipelineStoppedException".into();
            }
            if n == "ErrorCategory_Message" {
                *v = "OperationStopped: (:) [], PipelineStoppedException".into();
            }
        });
        e.raw = o.into();
    }
    e
}

/// Command: a new pipeline.
pub(super) fn command(
    state: &Arc<State>,
    req: &SimRequest,
    shell: &Arc<Shell>,
    pool: &Arc<Pool>,
) -> super::Reply {
    let line = req
        .body
        .child(ns::SHELL, "CommandLine")
        .ok_or_else(bad_parameter)?;
    let id = line
        .attr("CommandId")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map_or_else(|| Uuid::new_v4().hyphenated().to_string(), str::to_string)
        .to_ascii_uppercase();
    let mut bytes = Vec::new();
    for arg in line.children_named(ns::SHELL, "Arguments") {
        bytes.extend_from_slice(&base64_bytes(&arg.text)?);
    }
    if shell.closed.is_cancelled() {
        return Err(super::unknown_shell(&shell.id));
    }
    if pool.pipeline_by_command(&id).is_ok() {
        return Err(SimFault::invalid_parameter(
            "A command with this CommandId already exists in the shell. ",
        ));
    }
    let p = Pipeline::new(id.clone());
    lock(&pool.pipelines).push(Arc::clone(&p));
    add(&state.counters.running_commands, 1);
    add(&state.counters.commands_started, 1);
    let routed = defragment(&pool.inbound, &Bytes::from(bytes))
        .and_then(|messages| route(state, shell, pool, messages));
    if let Err(f) = routed {
        // A refused Command leaves no command behind.
        lock(&pool.pipelines).retain(|q| !Arc::ptr_eq(q, &p));
        p.kill();
        add(&state.counters.running_commands, -1);
        return Err(f);
    }
    Ok((
        action::COMMAND_RESPONSE,
        format!("<rsp:CommandResponse><rsp:CommandId>{id}</rsp:CommandId></rsp:CommandResponse>"),
    ))
}

/// Send: fragments for the pool and its pipelines.
pub(super) fn send(
    state: &Arc<State>,
    req: &SimRequest,
    shell: &Arc<Shell>,
    pool: &Arc<Pool>,
) -> super::Reply {
    let send = req
        .body
        .child(ns::SHELL, "Send")
        .ok_or_else(bad_parameter)?;
    for s in send.children_named(ns::SHELL, "Stream") {
        if let Some(id) = s.attr("CommandId").filter(|s| !s.trim().is_empty()) {
            pool.pipeline_by_command(id)?;
        }
        let messages = defragment(&pool.inbound, &base64_bytes(&s.text)?)?;
        route(state, shell, pool, messages)?;
    }
    Ok((action::SEND_RESPONSE, "<rsp:SendResponse/>".into()))
}

/// Signal: stop (`powershell/signal/crtl_c`) or remove (`terminate`) a pipeline.
pub(super) fn signal(state: &Arc<State>, req: &SimRequest, pool: &Arc<Pool>) -> super::Reply {
    let sig = req
        .body
        .child(ns::SHELL, "Signal")
        .ok_or_else(bad_parameter)?;
    let code = sig
        .child_text(ns::SHELL, "Code")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let cmd_id = sig
        .attr("CommandId")
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let stop = matches!(
        code.as_str(),
        "powershell/signal/crtl_c" | "powershell/signal/ctrl_c"
    ) || code.ends_with("/signal/ctrl_c")
        || code.ends_with("/signal/ctrl_break");
    let terminate = code.ends_with("/signal/terminate");
    if !stop && !terminate {
        return Err(bad_parameter());
    }
    if terminate {
        *lock(&state.last_terminate) = Some(std::time::Instant::now());
        add(&state.counters.terminate_signals, 1);
    }
    let Some(cmd_id) = cmd_id else {
        // §3.1.5.3.9: a stop sent to the pool stops its pipelines.
        if !stop {
            return Err(bad_parameter());
        }
        *lock(&state.last_pipeline_stop) = Some(std::time::Instant::now());
        add(&state.counters.pipeline_stops, 1);
        for p in lock(&pool.pipelines).iter() {
            p.stop.cancel();
        }
        return Ok((action::SIGNAL_RESPONSE, "<rsp:SignalResponse/>".into()));
    };
    let p = pool.pipeline_by_command(cmd_id)?;
    if p.receivers.load(Ordering::SeqCst) > 0 {
        add(&state.counters.signals_while_receive_pending, 1);
    }
    if stop {
        *lock(&state.last_pipeline_stop) = Some(std::time::Instant::now());
        add(&state.counters.pipeline_stops, 1);
        p.stop.cancel();
    } else {
        let removed = {
            let mut all = lock(&pool.pipelines);
            let before = all.len();
            all.retain(|q| !Arc::ptr_eq(q, &p));
            before != all.len()
        };
        if removed {
            p.kill();
            add(&state.counters.running_commands, -1);
        }
    }
    Ok((action::SIGNAL_RESPONSE, "<rsp:SignalResponse/>".into()))
}

struct PendingGuard<'a> {
    state: &'a State,
    shell: &'a Shell,
    pipeline: Option<&'a Pipeline>,
}

impl<'a> PendingGuard<'a> {
    fn new(state: &'a State, shell: &'a Shell, pipeline: Option<&'a Pipeline>) -> Self {
        add(&state.counters.receives_pending, 1);
        shell.pending.fetch_add(1, Ordering::SeqCst);
        if let Some(p) = pipeline {
            p.receivers.fetch_add(1, Ordering::SeqCst);
        }
        PendingGuard {
            state,
            shell,
            pipeline,
        }
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        add(&self.state.counters.receives_pending, -1);
        self.shell.pending.fetch_sub(1, Ordering::SeqCst);
        if let Some(p) = self.pipeline {
            p.receivers.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Receive: the pool's or a pipeline's fragments, long-polled.
pub(super) async fn receive(
    state: &Arc<State>,
    req: &SimRequest,
    shell: &Arc<Shell>,
    pool: &Arc<Pool>,
) -> Result<SimBody, SimFault> {
    let desired = req
        .body
        .child(ns::SHELL, "Receive")
        .and_then(|r| r.child(ns::SHELL, "DesiredStream"))
        .ok_or_else(bad_parameter)?;
    let pipeline = match desired.attr("CommandId").filter(|s| !s.trim().is_empty()) {
        Some(id) => Some(pool.pipeline_by_command(id)?),
        None => None,
    };
    let outbox = pipeline.as_ref().map_or(&pool.outbox, |p| &p.outbox);
    let timeout = req
        .operation_timeout
        .unwrap_or(super::DEFAULT_OPERATION_TIMEOUT)
        .min(super::MAX_WAIT);
    let deadline = Instant::now() + timeout;
    let mut changed = outbox.changed.subscribe();
    let mut conn = shell.conn.subscribe();
    if !outbox.ready() {
        let _pending = PendingGuard::new(state, shell, pipeline.as_deref());
        while !outbox.ready() && *conn.borrow_and_update() == Conn::Connected {
            tokio::select! {
                r = changed.changed() => if r.is_err() { break },
                r = conn.changed() => if r.is_err() { break },
                () = tokio::time::sleep_until(deadline) => return Err(SimFault::timed_out()),
                () = state.shutdown.cancelled() => {
                    return Err(SimFault::internal("The I/O operation has been aborted because of either a thread exit or an application request. ", 995));
                }
            }
        }
    }
    shell.touch();
    let max_envelope = req
        .max_envelope_size
        .map_or(153_600, |s| s as usize)
        .clamp(2_048, 64 << 20);
    let budget = max_envelope - RECEIVE_OVERHEAD;
    let max_blob = ((budget - STREAM_OVERHEAD) / 4 * 3)
        .saturating_sub(21)
        .max(64);
    let (fragments, done) = outbox.take(&pool.ids, max_blob, budget);
    let mut b = BodyBuilder::default();
    b.text(&envelope_head(
        action::RECEIVE_RESPONSE,
        req.message_id.as_deref(),
    ));
    b.text("<rsp:ReceiveResponse>");
    let id_attr = pipeline
        .as_ref()
        .map(|p| format!(" CommandId=\"{}\"", p.command_id))
        .unwrap_or_default();
    for f in fragments {
        b.text("<rsp:Stream Name=\"stdout\"");
        b.text(&id_attr);
        b.text(">");
        b.shared(Bytes::from(STANDARD.encode(f)));
        b.text("</rsp:Stream>");
    }
    if let Some(p) = &pipeline {
        if done {
            b.text(&format!(
                "<rsp:Stream Name=\"stdout\" CommandId=\"{}\" End=\"true\"></rsp:Stream><rsp:CommandState CommandId=\"{}\" State=\"{STATE_DONE}\"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>",
                p.command_id, p.command_id
            ));
        } else {
            b.text(&format!(
                "<rsp:CommandState CommandId=\"{}\" State=\"{STATE_RUNNING}\"></rsp:CommandState>",
                p.command_id
            ));
        }
    }
    b.text("</rsp:ReceiveResponse>");
    b.text(ENVELOPE_TAIL);
    Ok(b.finish())
}
