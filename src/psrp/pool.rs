//! `RunspacePool`: a PowerShell runspace pool on the server ([MS-PSRP] §3.1.4.1-3),
//! carried by a WinRS shell of a PowerShell session configuration.
//!
//! Opening: a Create whose `creationXml` holds SESSION_CAPABILITY and INIT_RUNSPACEPOOL
//! (§3.1.5.3.2), then Receives on the shell until RUNSPACEPOOL_STATE says Opened (with
//! the server's SESSION_CAPABILITY and APPLICATION_PRIVATE_DATA before it). Closing is
//! the shell's Delete (§3.1.5.3.11).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use wsman_protocol::psrp::messages::{
    ApplicationPrivateData, HostInfo, HostResponse, InitRunspacePool, ProtocolVersion,
    RunspacePoolState, ServerMessage, SessionCapability, connect_runspace_pool,
};
use wsman_protocol::psrp::{
    Defragmenter, Destination, Fragmenter, Message, MessageType, PsValue, max_blob_size,
};

use super::host::{NotInteractive, PsHost, needs_answer};
use super::pipeline::PipelineBuilder;
use super::wire::{self, Input};
use crate::client::{Client, body};
use crate::error::{Error, Result};
use crate::shell::messages as winrs;
use crate::shell::{DEFAULT_OUTPUT_BUFFER, Shell, ShellInner};
use crate::soap::envelope::OptionItem;
use crate::soap::ns;
use crate::transport::RequestKind;

/// Headroom kept in each envelope beyond the measured headers and body (a longer
/// OperationID form on retransmission, the server's own accounting).
const ENVELOPE_MARGIN: usize = 1024;

/// Builds and opens a runspace pool: `client.runspace_pool().max_runspaces(4).open().await`.
#[must_use]
pub struct RunspacePoolBuilder {
    client: Client,
    configuration: String,
    min_runspaces: i32,
    max_runspaces: i32,
    application_arguments: Option<Vec<(PsValue, PsValue)>>,
    no_profile: Option<bool>,
    culture: Option<String>,
    host: Option<Arc<dyn PsHost>>,
    exchange_key: Option<wsman_protocol::psrp::ExchangeKey>,
    idle_timeout: Option<Duration>,
    deadline: Option<Duration>,
    token: Option<CancellationToken>,
}

impl std::fmt::Debug for RunspacePoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunspacePoolBuilder")
            .field("configuration", &self.configuration)
            .field("min_runspaces", &self.min_runspaces)
            .field("max_runspaces", &self.max_runspaces)
            .finish_non_exhaustive()
    }
}

impl RunspacePoolBuilder {
    /// The session configuration (default `Microsoft.PowerShell`): a name such as
    /// `Microsoft.PowerShell32` or a JEA endpoint's, or a whole resource URI.
    pub fn configuration(mut self, name: impl Into<String>) -> Self {
        self.configuration = name.into();
        self
    }

    /// `MinRunspaces` (default 1): at least 1 and at most the maximum, as PowerShell's
    /// `CreateRunspacePool` requires; [`RunspacePoolBuilder::open`] refuses others.
    pub fn min_runspaces(mut self, n: u16) -> Self {
        self.min_runspaces = i32::from(n);
        self
    }

    /// `MaxRunspaces` (default 1): how many pipelines run at once in the pool. A
    /// pipeline started while all are busy waits (in `start()`) for one to finish. At
    /// least 1 and at least the minimum; [`RunspacePoolBuilder::open`] refuses others.
    pub fn max_runspaces(mut self, n: u16) -> Self {
        self.max_runspaces = i32::from(n);
        self
    }

    /// Adds an application argument, which the session configuration sees in
    /// `$PSSenderInfo.ApplicationArguments` ([MS-PSRP] §2.2.3.18).
    pub fn application_argument(
        mut self,
        name: impl Into<String>,
        value: impl Into<PsValue>,
    ) -> Self {
        self.application_arguments
            .get_or_insert_with(Vec::new)
            .push((PsValue::String(name.into()), value.into()));
        self
    }

    /// `WINRS_NOPROFILE`: do not load the Windows user profile of the account.
    pub fn no_profile(mut self, yes: bool) -> Self {
        self.no_profile = Some(yes);
        self
    }

    /// The culture of the runspaces (`en-US`, `de-DE`...): the `Locale` and `DataLocale`
    /// of the Create, which set `$PSCulture` and `$PSUICulture`. Default: the client's
    /// locale ([`crate::ClientBuilder::locale`]).
    pub fn culture(mut self, culture: impl Into<String>) -> Self {
        self.culture = Some(culture.into());
        self
    }

    /// Answers host calls with `host` instead of [`NotInteractive`].
    pub fn host(mut self, host: impl PsHost) -> Self {
        self.host = Some(Arc::new(host));
        self
    }

    /// The RSA key pair of the session key exchange ([MS-PSRP] §3.1.5.4.3), instead of
    /// a fresh one made at the pool's first exchange. Making a pair takes a noticeable
    /// fraction of a second: an application opening many pools can make one with
    /// [`ExchangeKey::generate`](wsman_protocol::psrp::ExchangeKey::generate) and give
    /// it to each (its public half is all the server sees).
    pub fn exchange_key(mut self, key: wsman_protocol::psrp::ExchangeKey) -> Self {
        self.exchange_key = Some(key);
        self
    }

    /// `IdleTimeOut`: the server closes the pool after this long without requests.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }

    /// Cancels the opening (reason Timeout) when `d` has passed since `open()`.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// Cancels the opening (reason User) when `token` is cancelled.
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Opens the pool: Create with SESSION_CAPABILITY and INIT_RUNSPACEPOOL in its
    /// `creationXml`, then Receives until RUNSPACEPOOL_STATE is Opened ([MS-PSRP]
    /// §3.1.4.1, §3.1.5.3.2).
    ///
    /// # Errors
    /// [`Error::Config`] (nothing sent) when the runspace limits are ones PowerShell's
    /// `CreateRunspacePool` refuses: a minimum or maximum of 0, or a minimum above the
    /// maximum.
    /// [`Error::RunspacePoolBroken`] when the server reports the pool Broken or Closed
    /// (e.g. a JEA configuration the account may not use); a fault on the Create (e.g.
    /// the MaxShellsPerUser quota, or 2150858761 for a configuration that does not
    /// exist); [`Error::Psrp`] for messages that cannot be read; [`Error::Cancelled`];
    /// transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future (or a cancel) after the Create abandons the Receive in flight
    /// and deletes the shell on a background task ([`Client::shutdown`] waits for it). A
    /// cancel while the Create is in flight returns at once; the Create is finished on
    /// that background task and the pool it created deleted.
    pub async fn open(self) -> Result<RunspacePool> {
        let (min, max) = (self.min_runspaces, self.max_runspaces);
        if min < 1 || max < 1 || min > max {
            return Err(Error::Config(format!(
                "runspace pool limits min_runspaces({min}) and max_runspaces({max}): \
                 both must be at least 1 and the minimum at most the maximum"
            )));
        }
        let c = self.client.clone();
        let scope = c.scope(
            self.token.clone(),
            self.deadline.map(|d| Instant::now() + d),
        );
        let id = Uuid::new_v4();
        let uri = wire::resource_uri(&self.configuration);
        let host_info = host_info();
        let mut init = InitRunspacePool::new(min, max);
        init.host_info = host_info.clone();
        init.application_arguments = self.application_arguments.clone();
        let messages = [
            Message::from_value(
                Destination::Server,
                MessageType::SessionCapability,
                id,
                None,
                &SessionCapability::default().to_value(),
            ),
            Message::from_value(
                Destination::Server,
                MessageType::InitRunspacePool,
                id,
                None,
                &init.to_value(),
            ),
        ];
        let mut options = vec![OptionItem::must_comply(
            wire::PROTOCOL_VERSION_OPTION,
            ProtocolVersion::V2_3.to_string(),
        )];
        if let Some(np) = self.no_profile {
            options.push(OptionItem::must_comply(
                "WINRS_NOPROFILE",
                if np { "TRUE" } else { "FALSE" },
            ));
        }
        let max_blob = blob_limit(&c, &uri, &options);
        let mut out = Fragmenter::new(max_blob);
        let mut payloads = out.pack(&messages).into_iter();
        let first = payloads.next().unwrap_or_default();
        let locale = self.culture.as_deref().or(c.inner.locale.as_deref());
        let env = crate::soap::Envelope {
            options: &options,
            locale,
            ..c.envelope(ns::action::CREATE, Some(&uri))
        }
        .write(|w| wire::write_create(w, id, self.idle_timeout, &first));
        // Waits while the client has `max_shells` open (a pool is a shell).
        let permit = tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            p = c.shell_permit() => p,
        };
        // A cancel while the Create is in flight returns at once; the guard finishes the
        // Create on a cleanup task and deletes the pool it created.
        let client = c.clone();
        let mut create = crate::shell::PendingCreate::new(
            &c,
            &uri,
            Box::pin(async move {
                let root = client
                    .exchange(RequestKind::Write, env, client.inner.operation_timeout)
                    .await?;
                winrs::read_shell_id(body(&root)).map_err(Error::from)
            }),
            permit,
        );
        let shell_id = tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            r = create.answer() => r?,
        };
        tracing::debug!(pool = %id, shell = %shell_id, "runspace pool created");
        // From here on, dropping `shell` deletes the pool on a background task.
        let shell = Shell {
            inner: Arc::new(
                ShellInner::new(c.clone(), shell_id, uri, 65001, DEFAULT_OUTPUT_BUFFER)
                    .with_permit(create.take_permit()),
            ),
        };
        let host = self.host.unwrap_or_else(|| Arc::new(NotInteractive));
        let mut inner = PoolInner {
            shell: Arc::clone(&shell.inner),
            id,
            version: ProtocolVersion::V2_3,
            private_data: None,
            out: Mutex::new(out),
            slots: Arc::new(Semaphore::new(
                usize::try_from(init.max_runspaces).unwrap_or(1),
            )),
            host,
            host_info,
            max_runspaces: AtomicI32::new(init.max_runspaces),
            stream: Arc::default(),
            closed: CancellationToken::new(),
            keys: super::secure::Keys::new(self.exchange_key),
        };
        // The fragments that did not fit in creationXml follow on the pool's stdin.
        let rest: Vec<Vec<u8>> = payloads.collect();
        tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            r = inner.send_payloads(Input::Stdin, None, rest) => r?,
        }
        tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            r = inner.wait_opened(false) => r?,
        }
        tracing::debug!(pool = %id, version = %inner.version, "runspace pool opened");
        Ok(RunspacePool {
            inner: Arc::new(inner),
            shell,
        })
    }
}

/// The host this client announces: a host with a UI (so that `Read-Host` and
/// `Get-Credential` come to [`PsHost`] and get an answer) and no raw UI.
fn host_info() -> HostInfo {
    let mut h = HostInfo::without_ui();
    h.is_host_ui_null = false;
    h
}

/// The largest fragment blob whose Send (or Create, or Command) envelope stays under
/// the client's MaxEnvelopeSize.
fn blob_limit(c: &Client, uri: &str, options: &[OptionItem]) -> usize {
    let nil = Uuid::nil();
    let selectors = [crate::soap::envelope::Selector::new(
        "ShellId",
        wire::guid(nil),
    )];
    let create = crate::soap::Envelope {
        options,
        ..c.envelope(ns::action::CREATE, Some(uri))
    }
    .write(|w| wire::write_create(w, nil, None, b""))
    .len();
    let send = crate::soap::Envelope {
        selectors: &selectors,
        ..c.envelope(ns::action::SEND, Some(uri))
    }
    .write(|w| wire::write_send(w, Input::Stdin, Some(&wire::guid(nil)), b""))
    .len();
    let overhead = create.max(send) + ENVELOPE_MARGIN;
    max_blob_size(c.inner.request_envelope_limit(), overhead).unwrap_or(1024)
}

pub(crate) struct PoolInner {
    pub(crate) shell: Arc<ShellInner>,
    pub(crate) id: Uuid,
    pub(crate) version: ProtocolVersion,
    pub(crate) private_data: Option<ApplicationPrivateData>,
    /// One object numbering for every message the client sends in this pool.
    pub(crate) out: Mutex<Fragmenter>,
    /// One permit per runspace: a running pipeline holds one.
    pub(crate) slots: Arc<Semaphore>,
    pub(crate) host: Arc<dyn PsHost>,
    pub(crate) host_info: HostInfo,
    /// `MaxRunspaces` (changed by [`RunspacePool::set_max_runspaces`]).
    pub(crate) max_runspaces: AtomicI32,
    /// The session key exchange's keys (see `secure.rs`).
    pub(crate) keys: super::secure::Keys,
    /// The pool's own stream and its reader (see `stream.rs`).
    pub(crate) stream: Arc<super::stream::PoolStream>,
    /// Cancelled by [`RunspacePool::close`]: nothing more is sent for the pool, and its
    /// pipelines end with [`PoolInner::closed_error`].
    pub(crate) closed: CancellationToken,
}

impl PoolInner {
    /// The error of what is used after [`RunspacePool::close`]: a pipeline started from
    /// a builder made before, one still running (see [`RunspacePool::close`]).
    pub(crate) fn closed_error() -> Error {
        Error::State("the runspace pool is closed".into())
    }

    /// `true` once [`RunspacePool::close`] ran.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Encodes and fragments `messages` with the pool's numbering.
    pub(crate) fn pack(&self, messages: &[Message]) -> Vec<Vec<u8>> {
        self.out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pack(messages)
    }

    /// Sends payloads of fragments, one Send each, in order.
    pub(crate) async fn send_payloads(
        &self,
        stream: Input,
        command: Option<&str>,
        payloads: Vec<Vec<u8>>,
    ) -> Result<()> {
        let c = &self.shell.client;
        for p in payloads {
            // Nothing goes to a closed pool's deleted shell.
            if self.is_closed() {
                return Err(Self::closed_error());
            }
            let env = self
                .shell
                .envelope(ns::action::SEND)
                .write(|w| wire::write_send(w, stream, command, &p));
            c.exchange(RequestKind::Write, env, c.inner.operation_timeout)
                .await?;
        }
        Ok(())
    }

    /// Answers a host call (void methods get no answer) on the `pr` stream; an answer
    /// that holds a SecureString gets the session key, exchanged first if needed.
    pub(crate) async fn answer_host_call(
        self: &Arc<Self>,
        pipeline: Option<Uuid>,
        call: &wsman_protocol::psrp::messages::HostCall,
    ) -> Result<()> {
        let key = if super::secure::answer_needs_session_key(call.method) {
            Some(self.session_key().await?)
        } else {
            self.keys.session()
        };
        self.send_host_answer(pipeline, call, key.as_ref()).await
    }

    /// Asks the host with `key` (no exchange) and sends its answer.
    pub(crate) async fn send_host_answer(
        &self,
        pipeline: Option<Uuid>,
        call: &wsman_protocol::psrp::messages::HostCall,
        key: Option<&wsman_protocol::psrp::SessionKey>,
    ) -> Result<()> {
        let answer = self.host.call_with_session_key(call, key);
        if !needs_answer(call.method) {
            return Ok(());
        }
        let response = match answer {
            Ok(v) => HostResponse::returning(call, v),
            Err(e) => HostResponse::failing(call, &e),
        };
        let kind = if pipeline.is_some() {
            MessageType::PipelineHostResponse
        } else {
            MessageType::RunspacePoolHostResponse
        };
        let msg = Message::from_value(
            Destination::Server,
            kind,
            self.id,
            pipeline,
            &response.to_value(),
        );
        let payloads = self.pack(&[msg]);
        // As Windows' clients send it (pypsrp's recordings): on `pr`, to the shell.
        self.send_payloads(Input::Pr, None, payloads).await
    }

    /// Sends a pool call (`ci`, with an optional named count) and waits for the
    /// RUNSPACE_AVAILABILITY with its call id, which the pool's stream reader routes
    /// here; returns its response.
    async fn pool_call(
        self: &Arc<Self>,
        kind: MessageType,
        count: Option<(&str, i32)>,
    ) -> Result<PsValue> {
        static NEXT_CALL_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
        if let Some(e) = self.stream.broken_error() {
            return Err(e);
        }
        let call_id = NEXT_CALL_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut body = wsman_protocol::psrp::PsObject::new();
        if let Some((name, n)) = count {
            body = body.with_property(name, n);
        }
        let body: PsValue = body.with_property("ci", call_id).into();
        let msg = Message::from_value(Destination::Server, kind, self.id, None, &body);
        // Registered before the Send, so that the answer cannot come first; forgotten
        // if this future is dropped.
        let answer = self.stream.expect_call(call_id);
        struct Forget<'a>(&'a super::stream::PoolStream, i64);
        impl Drop for Forget<'_> {
            fn drop(&mut self) {
                self.0.forget_call(self.1);
            }
        }
        let _forget = Forget(&self.stream, call_id);
        let payloads = self.pack(&[msg]);
        self.send_payloads(Input::Stdin, None, payloads).await?;
        // Then the Receive, as Windows' clients order them.
        self.wake_reader();
        match answer.await {
            Ok(r) => r,
            Err(_) => Err(self
                .stream
                .broken_error()
                .unwrap_or_else(|| Error::State("the runspace pool's stream stopped".into()))),
        }
    }

    /// Receives on the pool until RUNSPACEPOOL_STATE Opened (or, after a Connect, until
    /// APPLICATION_PRIVATE_DATA, which is what Windows sends then).
    async fn wait_opened(&mut self, connecting: bool) -> Result<()> {
        let mut inbound = Defragmenter::new();
        let mut arena = BytesMut::new();
        loop {
            let received = receive(&self.shell, None).await?;
            for text in received.chunks {
                let data = winrs::decode_into(&text, &mut arena)?;
                for m in inbound.push_messages(&data)? {
                    match ServerMessage::decode(&m)? {
                        ServerMessage::SessionCapability(cap) => {
                            self.version = cap.protocol()?.min(ProtocolVersion::V2_3);
                        }
                        ServerMessage::ApplicationPrivateData(d) => {
                            self.private_data = Some(d);
                            if connecting {
                                return Ok(());
                            }
                        }
                        ServerMessage::RunspacePoolState(s) => match s.state {
                            RunspacePoolState::Opened => return Ok(()),
                            RunspacePoolState::Broken | RunspacePoolState::Closed => {
                                return Err(Error::RunspacePoolBroken {
                                    state: s.state.name(),
                                    error: s.error.map(Box::new),
                                });
                            }
                            _ => {}
                        },
                        ServerMessage::HostCall(call) => {
                            let key = self.keys.session();
                            self.send_host_answer(None, &call, key.as_ref()).await?;
                        }
                        _ => {}
                    }
                }
            }
            if received.done {
                return Err(Error::RunspacePoolBroken {
                    state: "Closed".into(),
                    error: None,
                });
            }
        }
    }
}

/// One ReceiveResponse's stream texts (still base64) and whether the command is done.
pub(crate) struct Received {
    pub(crate) chunks: Vec<Bytes>,
    pub(crate) done: bool,
}

/// Sends a Receive and reads its answer's streams for `command_id` (empty: the pool's
/// own) with the WinRS event reader, which hands anything unusual (a fault first of all)
/// to the tree reader, as a WinRS command's Receive does.
async fn read_receive(
    c: &Client,
    envelope: String,
    timeout: Duration,
    command_id: &str,
) -> Result<Received> {
    let r = crate::shell::fast::exchange_receive_within(c, envelope, timeout, command_id).await?;
    Ok(Received {
        chunks: r.chunks.into_iter().map(|(_, t)| t).collect(),
        done: r.done.is_some(),
    })
}

/// One Receive of `stdout` on the pool or a pipeline; a `TimedOut` fault polls again.
/// Dropping the future abandons the Receive and closes its connection.
pub(crate) async fn receive(shell: &ShellInner, command: Option<&str>) -> Result<Received> {
    let c = &shell.client;
    let keepalive = [OptionItem::new("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE")];
    let command_id = command.unwrap_or_default();
    loop {
        let env = crate::soap::Envelope {
            options: &keepalive,
            ..shell.envelope(ns::action::RECEIVE)
        }
        .write(|w| wire::write_receive(w, command));
        match read_receive(c, env, c.inner.operation_timeout, command_id).await {
            Ok(r) => return Ok(r),
            Err(e) if e.fault().is_some_and(crate::Fault::is_timed_out) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// One Receive of `stdout` on the pool or a pipeline with OperationTimeout `timeout`;
/// `None` when it timed out (the `TimedOut` fault). Dropping the future abandons the
/// Receive and closes its connection.
pub(crate) async fn receive_once(
    shell: &ShellInner,
    command: Option<&str>,
    timeout: Duration,
) -> Result<Option<Received>> {
    let c = &shell.client;
    let keepalive = [OptionItem::new("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "TRUE")];
    let env = crate::soap::Envelope {
        options: &keepalive,
        operation_timeout: Some(timeout),
        ..shell.envelope(ns::action::RECEIVE)
    }
    .write(|w| wire::write_receive(w, command));
    match read_receive(c, env, timeout, command.unwrap_or_default()).await {
        Ok(r) => Ok(Some(r)),
        Err(e) if e.fault().is_some_and(crate::Fault::is_timed_out) => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`receive`] for a pipeline of `pool`: a Receive that times out (no output for a whole
/// OperationTimeout) has the pool's own stream read, in case the server waits there.
pub(crate) async fn receive_pipeline(pool: &Arc<PoolInner>, command: &str) -> Result<Received> {
    let timeout = pool.shell.client.inner.operation_timeout;
    loop {
        if let Some(r) = receive_once(&pool.shell, Some(command), timeout).await? {
            return Ok(r);
        }
        pool.pipeline_stalled();
    }
}

/// An open runspace pool. Start pipelines with [`RunspacePool::pipeline`]; several run
/// at once, up to [`RunspacePool::max_runspaces`]. `close().await` deletes the pool and
/// reports errors; dropping it (and its pipelines) deletes it on a background task that
/// [`Client::shutdown`] waits for.
pub struct RunspacePool {
    pub(crate) inner: Arc<PoolInner>,
    pub(crate) shell: Shell,
}

impl std::fmt::Debug for RunspacePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunspacePool")
            .field("id", &self.inner.id)
            .field("version", &self.inner.version)
            .finish_non_exhaustive()
    }
}

impl RunspacePool {
    pub(crate) fn from_parts(inner: Arc<PoolInner>, shell: Shell) -> RunspacePool {
        RunspacePool { inner, shell }
    }

    /// The runspace pool id (`RPID`; also the ShellId Windows gives the pool).
    pub fn id(&self) -> Uuid {
        self.inner.id
    }

    /// The ShellId of the WinRS shell that carries the pool.
    pub fn shell_id(&self) -> &str {
        self.shell.id()
    }

    /// The protocol version in use: the lower of the server's (from its
    /// SESSION_CAPABILITY) and 2.3.
    pub fn protocol_version(&self) -> ProtocolVersion {
        self.inner.version
    }

    /// The server's APPLICATION_PRIVATE_DATA (with `PSVersionTable` on Windows), if it
    /// sent one.
    pub fn application_private_data(&self) -> Option<&ApplicationPrivateData> {
        self.inner.private_data.as_ref()
    }

    /// `MaxRunspaces`: how many pipelines run at once.
    pub fn max_runspaces(&self) -> u16 {
        u16::try_from(self.inner.max_runspaces.load(Ordering::Relaxed)).unwrap_or(u16::MAX)
    }

    /// Runspaces not used by a running pipeline of this client.
    pub fn available_runspaces(&self) -> usize {
        self.inner.slots.available_permits()
    }

    /// Asks the server how many of the pool's runspaces are free now
    /// (GET_AVAILABLE_RUNSPACES, [MS-PSRP] §2.2.2.12; answered by RUNSPACE_AVAILABILITY,
    /// §2.2.2.8), counting other clients' pipelines too, unlike
    /// [`RunspacePool::available_runspaces`].
    ///
    /// # Errors
    /// Transport errors and faults; [`Error::Psrp`] for an answer that cannot be read;
    /// [`Error::RunspacePoolBroken`] when the pool broke or closed meanwhile.
    ///
    /// # Cancel safety
    /// Dropping the future may leave the server's answer unread; a later call skips it
    /// (answers are matched by their call id).
    pub async fn query_available_runspaces(&self) -> Result<i64> {
        let answer = self
            .inner
            .pool_call(MessageType::GetAvailableRunspaces, None)
            .await?;
        answer.as_i64().ok_or_else(|| {
            Error::Psrp(wsman_protocol::psrp::Error::Serde(format!(
                "RUNSPACE_AVAILABILITY: expected a count, found {answer:?}"
            )))
        })
    }

    /// Changes the pool's `MaxRunspaces` at the server (SET_MAX_RUNSPACES, [MS-PSRP]
    /// §2.2.2.9); `Ok(false)` when the server refused (e.g. below `MinRunspaces`). On
    /// success this client's own limit follows: growing it lets more pipelines start at
    /// once now; shrinking it waits until enough of this client's running pipelines have
    /// ended.
    ///
    /// # Errors
    /// [`Error::Config`] (nothing sent) for 0: a pool has at least one runspace.
    /// Otherwise as [`RunspacePool::query_available_runspaces`].
    ///
    /// # Cancel safety
    /// Dropping the future may leave the server's size changed and this client's limit
    /// not (or only partly) adjusted.
    pub async fn set_max_runspaces(&self, max: u16) -> Result<bool> {
        if max == 0 {
            return Err(Error::Config(
                "set_max_runspaces(0): a runspace pool has at least one runspace".into(),
            ));
        }
        let max = i32::from(max);
        let answer = self
            .inner
            .pool_call(MessageType::SetMaxRunspaces, Some(("MaxRunspaces", max)))
            .await?;
        let Some(accepted) = answer.as_bool() else {
            return Err(Error::Psrp(wsman_protocol::psrp::Error::Serde(format!(
                "RUNSPACE_AVAILABILITY: expected a boolean, found {answer:?}"
            ))));
        };
        if accepted {
            let old = self.inner.max_runspaces.swap(max, Ordering::Relaxed);
            let diff = usize::try_from((max - old).unsigned_abs()).unwrap_or(0);
            if max > old {
                self.inner.slots.add_permits(diff);
            } else if max < old {
                let diff = u32::try_from(diff).unwrap_or(u32::MAX);
                if let Ok(p) = self.inner.slots.acquire_many(diff).await {
                    p.forget();
                }
            }
        }
        Ok(accepted)
    }

    /// Starts building a pipeline:
    /// `pool.pipeline().command("Get-Service").param("Name", "WinRM").invoke().await`.
    pub fn pipeline(&self) -> PipelineBuilder {
        PipelineBuilder::new(Arc::clone(&self.inner))
    }

    /// Goes on reading a pipeline of a pool this client connected to with
    /// [`RunspacePoolBuilder::connect`] (WinRS Connect with its CommandId, then its
    /// Receives): the output the server buffered while nobody was connected, the rest,
    /// then the final state.
    ///
    /// # Errors
    /// [`Error::State`] for a CommandId that is not a pipeline id; a fault (2150858843:
    /// no such pipeline), transport errors.
    ///
    /// # Cancel safety
    /// Dropping the future abandons the Connect; the pipeline keeps running.
    pub async fn attach_pipeline(&self, command_id: &str) -> Result<super::Pipeline> {
        let id = Uuid::parse_str(command_id)
            .map_err(|_| Error::State(format!("{command_id:?} is not a pipeline's CommandId")))?;
        let pool = Arc::clone(&self.inner);
        let c = pool.shell.client.clone();
        let scope = c.scope(None, None);
        let permit = tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            p = Arc::clone(&pool.slots).acquire_owned() => p.map_err(|_| PoolInner::closed_error())?,
        };
        let env = pool
            .shell
            .envelope(ns::action::CONNECT)
            .write(|w| wire::write_connect_command(w, command_id));
        tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            r = c.exchange(RequestKind::Write, env, c.inner.operation_timeout) => { r?; }
        }
        tracing::debug!(pool = %pool.id, pipeline = %id, "pipeline attached");
        Ok(super::Pipeline::drive(
            pool,
            id,
            command_id.to_string(),
            scope,
            permit,
            super::DEFAULT_EVENT_BUFFER,
            false,
        ))
    }

    /// Closes the pool: the shell's Delete, which also stops its pipelines on the
    /// server ([MS-PSRP] §3.1.5.3.11).
    ///
    /// From here nothing more is sent for the pool: a [`Pipeline`](super::Pipeline)
    /// still being read abandons its Receive and yields, after the events it had
    /// received, `Err(`[`Error::State`]`)` "the runspace pool is closed" instead of a
    /// final state (the Delete stops it on the server; no stop signal is sent); a
    /// [`PipelineBuilder`] made before fails to start with that error, sending nothing.
    ///
    /// # Errors
    /// Transport errors or a fault other than "already gone".
    ///
    /// # Cancel safety
    /// If the future is dropped, the Delete is retried on a background task.
    pub async fn close(self) -> Result<()> {
        // No pipeline starts, and the running ones stop reading.
        self.inner.closed.cancel();
        self.inner.slots.close();
        // The pool's stream reader abandons its Receive: the Delete ends the pool.
        self.inner.stream.stop();
        self.shell.close().await
    }
}

impl RunspacePoolBuilder {
    /// Connects to a disconnected runspace pool by its ShellId, from any client (this
    /// process or another): WinRS Connect with SESSION_CAPABILITY and
    /// CONNECT_RUNSPACEPOOL in its `connectXml` ([MS-PSRP] §3.1.4.12, §3.1.5.3.13), then
    /// a Receive for the pool's APPLICATION_PRIVATE_DATA. Go on reading its pipelines
    /// with [`RunspacePool::attach_pipeline`].
    ///
    /// Of the builder's settings, the configuration (it must be the pool's), the host
    /// and the cancellation apply; the pool keeps the size it was opened with
    /// ([`RunspacePool::max_runspaces`] is what the server reports).
    ///
    /// # Errors
    /// A fault: 2150858843 (invalid selectors) when there is no such pool for this user;
    /// `w:InternalError` when it is connected to another client; [`Error::State`] for a
    /// ShellId that is not a pool id; [`Error::Psrp`]; transport errors.
    ///
    /// # Cancel safety
    /// Dropped before the Connect's answer, the pool may be connected to nobody (the
    /// server deletes it when its idle timeout passes); after it, the pool is deleted
    /// on a background task, as a dropped [`RunspacePool`] is.
    pub async fn connect(self, shell_id: impl Into<String>) -> Result<RunspacePool> {
        let c = self.client.clone();
        let scope = c.scope(
            self.token.clone(),
            self.deadline.map(|d| Instant::now() + d),
        );
        let shell_id = shell_id.into();
        let id = Uuid::parse_str(&shell_id).map_err(|_| {
            Error::State(format!(
                "{shell_id:?} is not the ShellId of a runspace pool"
            ))
        })?;
        let uri = wire::resource_uri(&self.configuration);
        let messages = [
            Message::from_value(
                Destination::Server,
                MessageType::SessionCapability,
                id,
                None,
                &SessionCapability::default().to_value(),
            ),
            Message::from_value(
                Destination::Server,
                MessageType::ConnectRunspacePool,
                id,
                None,
                &connect_runspace_pool(None),
            ),
        ];
        let options = [OptionItem::must_comply(
            wire::PROTOCOL_VERSION_OPTION,
            ProtocolVersion::V2_3.to_string(),
        )];
        let mut out = Fragmenter::new(blob_limit(&c, &uri, &options));
        let payload = out.pack(&messages).into_iter().next().unwrap_or_default();
        let selectors = [crate::soap::envelope::Selector::new(
            "ShellId",
            shell_id.clone(),
        )];
        let env = crate::soap::Envelope {
            options: &options,
            selectors: &selectors,
            ..c.envelope(ns::action::CONNECT, Some(&uri))
        }
        .write(|w| wire::write_connect(w, &payload));
        let root = tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            r = c.exchange(RequestKind::Write, env, c.inner.operation_timeout) => r?,
        };
        let mut version = ProtocolVersion::V2_3;
        let mut size = None;
        let response = body(&root)
            .child(ns::SHELL, "ConnectResponse")
            .and_then(|r| r.child_text(wire::PS_NS, "connectResponseXml"))
            .unwrap_or_default();
        let data = winrs::decode_into(response.trim().as_bytes(), &mut BytesMut::new())?;
        for m in Defragmenter::new().push_messages(&data)? {
            match ServerMessage::decode(&m)? {
                ServerMessage::SessionCapability(cap) => {
                    version = cap.protocol()?.min(ProtocolVersion::V2_3);
                }
                ServerMessage::RunspacePoolInitData(d) => size = Some(d.max_runspaces),
                _ => {}
            }
        }
        tracing::debug!(pool = %id, shell = %shell_id, "runspace pool connected");
        // From here on, dropping `shell` deletes the pool on a background task.
        let shell = Shell {
            inner: Arc::new(ShellInner::new(
                c.clone(),
                shell_id,
                uri,
                65001,
                DEFAULT_OUTPUT_BUFFER,
            )),
        };
        let max_runspaces = size.unwrap_or(self.max_runspaces).max(1);
        let mut inner = PoolInner {
            shell: Arc::clone(&shell.inner),
            id,
            version,
            private_data: None,
            out: Mutex::new(out),
            slots: Arc::new(Semaphore::new(usize::try_from(max_runspaces).unwrap_or(1))),
            host: self.host.unwrap_or_else(|| Arc::new(NotInteractive)),
            host_info: host_info(),
            max_runspaces: AtomicI32::new(max_runspaces),
            stream: Arc::default(),
            closed: CancellationToken::new(),
            keys: super::secure::Keys::new(self.exchange_key),
        };
        tokio::select! {
            biased;
            reason = scope.cancelled() => return Err(Error::Cancelled { reason }),
            r = inner.wait_opened(true) => r?,
        }
        Ok(RunspacePool {
            inner: Arc::new(inner),
            shell,
        })
    }
}

impl Client {
    /// Starts building a PowerShell runspace pool (PSRP), the way to run PowerShell
    /// with objects in and out; see [`crate::psrp`].
    pub fn runspace_pool(&self) -> RunspacePoolBuilder {
        RunspacePoolBuilder {
            client: self.clone(),
            configuration: "Microsoft.PowerShell".into(),
            min_runspaces: 1,
            max_runspaces: 1,
            application_arguments: None,
            no_profile: None,
            culture: None,
            host: None,
            exchange_key: None,
            idle_timeout: None,
            deadline: None,
            token: None,
        }
    }
}
