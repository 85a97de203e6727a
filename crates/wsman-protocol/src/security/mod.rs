//! Security contexts for WinRM's HTTP authentication and message encryption
//! ([MS-WSMV] §2.2.9.1): NTLM ([`ntlm`]), Kerberos ([`kerberos`]) and CredSSP
//! ([`credssp`]) through the `sspi`
//! crate, both the initiator (client) and acceptor (server) sides, and sealing and
//! unsealing a message with an established context. No IO: Kerberos takes the KDC
//! connection from its caller as an [`sspi::network_client::NetworkClient`].
//!
//! The functions at this level are the sspi steps both packages share: the client's
//! credentials handle, one acceptor step of the handshake, and sealing/unsealing a
//! message as a token (signature) buffer and a data buffer.
//!
//! Every sspi call runs under [`quiet`]: sspi's own `tracing` events (at TRACE and
//! DEBUG) print its builders and buffers, which hold the handshake tokens (an NTLM
//! CHALLENGE and AUTHENTICATE pair is enough to test password guesses offline) and
//! credentials structures. No credential material may reach a log at any level.

pub mod credssp;
pub mod kerberos;
pub mod ntlm;
pub mod spnego;
pub mod tls;

use sspi::network_client::NetworkClient;
use sspi::{
    BufferType, ClientRequestFlags, CredentialUse, CredentialsBuffers, DataRepresentation,
    EncryptionFlags, SecurityBuffer, SecurityBufferRef, SecurityStatus, ServerRequestFlags, Sspi,
    SspiImpl,
};

/// Why a security context step failed. Messages name states and flags, never secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// A name the package cannot use (a user or principal name): a configuration error.
    #[error("{0}")]
    InvalidName(String),
    /// The handshake, sealing, or the verification of a message failed.
    #[error("{0}")]
    Failed(String),
    /// The peer refused the logon in the exchange itself (CredSSP: a TSRequest with an
    /// NTSTATUS error code, e.g. a wrong password).
    #[error("{0}")]
    Refused(String),
}

/// Runs `f`, a synchronous call into sspi, with this thread's `tracing` dispatcher
/// set to one that records nothing, so that none of sspi's events (nor spans) reach
/// the application's subscriber, whatever its level. The dispatcher is thread-local
/// and scoped to the call: the application's own events, on this thread and others,
/// are untouched.
///
/// One side effect of tracing's design: once any scoped dispatcher has been set, the
/// `log` compatibility of `tracing` (its `log` feature, which forwards events to the
/// `log` crate while no subscriber exists) considers a subscriber present.
pub fn quiet<T>(f: impl FnOnce() -> T) -> T {
    tracing::dispatcher::with_default(&tracing::Dispatch::none(), f)
}

/// Client: the credentials handle of `auth_data` for outbound use.
///
/// # Errors
/// sspi's error when the package refuses the credentials.
pub fn outbound_credentials<P: Sspi>(
    package: &mut P,
    auth_data: &P::AuthenticationData,
) -> sspi::Result<P::CredentialsHandle> {
    quiet(|| {
        let acquired = package
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(auth_data)
            .execute(package)?;
        Ok(acquired.credentials_handle)
    })
}

/// The token of a one-buffer output (empty when there is none).
pub fn output_token(mut output: Vec<SecurityBuffer>) -> Vec<u8> {
    output.pop().map(|b| b.buffer).unwrap_or_default()
}

/// The context requirements of a WinRM initiator: mutual authentication, sealing,
/// signing and sequence detection.
fn client_flags() -> ClientRequestFlags {
    ClientRequestFlags::MUTUAL_AUTH
        | ClientRequestFlags::CONFIDENTIALITY
        | ClientRequestFlags::INTEGRITY
        | ClientRequestFlags::SEQUENCE_DETECT
        | ClientRequestFlags::ALLOCATE_MEMORY
}

/// Initiator: one step of `package` on the acceptor's token (`input`, empty at first),
/// for `target` (the service principal), with the `SEC_CHANNEL_BINDINGS` buffer when
/// given, the KDC (if any) reached through `kdc`. Returns sspi's status and the token to
/// send. Blocking when `kdc` is.
///
/// # Errors
/// sspi's error when the KDC or the handshake fails.
pub fn initialize<P>(
    package: &mut P,
    creds: &mut Option<CredentialsBuffers>,
    target: Option<&str>,
    channel_bindings: Option<&[u8]>,
    input: &[u8],
    kdc: &dyn NetworkClient,
) -> sspi::Result<(SecurityStatus, Vec<u8>)>
where
    P: Sspi + SspiImpl<CredentialsHandle = Option<CredentialsBuffers>>,
{
    let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
    let mut input_buffers = vec![SecurityBuffer::new(input.to_vec(), BufferType::Token)];
    if let Some(cb) = channel_bindings {
        input_buffers.push(SecurityBuffer::new(
            cb.to_vec(),
            BufferType::ChannelBindings,
        ));
    }
    let status = quiet(|| {
        let mut builder = package
            .initialize_security_context()
            .with_credentials_handle(creds)
            .with_context_requirements(client_flags())
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input_buffers)
            .with_output(&mut output);
        if let Some(t) = target {
            builder = builder.with_target_name(t);
        }
        package
            .initialize_security_context_impl(&mut builder)
            .and_then(|mut g| g.resolve_with_client(kdc))
            .map(|r| r.status)
    })?;
    Ok((status, output_token(output)))
}

/// Completes the output token when the handshake step's `status` asks for it.
///
/// # Errors
/// sspi's error when it cannot complete the token.
pub fn complete_if_needed<P: Sspi>(
    package: &mut P,
    status: SecurityStatus,
    output: &mut [SecurityBuffer],
) -> sspi::Result<()> {
    if matches!(
        status,
        SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
    ) {
        quiet(|| package.complete_auth_token(output))?;
    }
    Ok(())
}

/// Server: one step of the handshake on `token`. Returns the status and the token to
/// send back (completed first when the status asks for it).
///
/// # Errors
/// sspi's error when the token is malformed or the logon fails.
pub fn accept<P: Sspi>(
    package: &mut P,
    creds: &mut P::CredentialsHandle,
    token: &[u8],
) -> sspi::Result<(SecurityStatus, Vec<u8>)> {
    accept_bound(package, creds, token, None)
}

/// [`accept`] with a `SEC_CHANNEL_BINDINGS` buffer (see
/// [`kerberos::sec_channel_bindings`]) that the package checks the client's binding
/// against.
///
/// # Errors
/// As [`accept`]; also when the client's channel binding differs from `channel_bindings`.
pub fn accept_bound<P: Sspi>(
    package: &mut P,
    creds: &mut P::CredentialsHandle,
    token: &[u8],
    channel_bindings: Option<&[u8]>,
) -> sspi::Result<(SecurityStatus, Vec<u8>)> {
    let mut input = vec![SecurityBuffer::new(token.to_vec(), BufferType::Token)];
    if let Some(cb) = channel_bindings {
        input.push(SecurityBuffer::new(
            cb.to_vec(),
            BufferType::ChannelBindings,
        ));
    }
    let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
    let status = quiet(|| {
        let builder = package
            .accept_security_context()
            .with_credentials_handle(creds)
            .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input)
            .with_output(&mut output);
        let status = package
            .accept_security_context_impl(builder)?
            .resolve_to_result()?
            .status;
        complete_if_needed(package, status, &mut output)?;
        Ok::<_, sspi::Error>(status)
    })?;
    Ok((status, output_token(output)))
}

/// Which way [`transform`] goes.
#[derive(Debug, Clone, Copy)]
pub enum Message {
    /// Encrypt and sign: the signature is written, the data sealed.
    Seal,
    /// Decrypt and verify against the signature (which sspi may overwrite).
    Unseal,
}

/// Seals or unseals `data` with a token buffer on `signature` (sized by the caller) and
/// a data buffer on a copy of `data`. Returns the data buffer as sspi leaves it: all of
/// the copy when its length is unchanged (NTLM both ways, Kerberos sealing), else the
/// part sspi points it at (Kerberos unsealing: a wrap token's tail carries more than
/// the plaintext).
///
/// # Errors
/// sspi's error: when sealing fails, or when unsealing finds the signature or the data
/// altered, replayed or out of order.
pub fn transform<P: Sspi>(
    package: &mut P,
    way: Message,
    signature: &mut [u8],
    data: &[u8],
) -> sspi::Result<Vec<u8>> {
    let mut out = data.to_vec();
    let mut buffers = [
        SecurityBufferRef::token_buf(signature),
        SecurityBufferRef::data_buf(&mut out),
    ];
    quiet(|| match way {
        Message::Seal => package
            .encrypt_message(EncryptionFlags::empty(), &mut buffers)
            .map(drop),
        Message::Unseal => package.decrypt_message(&mut buffers).map(drop),
    })?;
    if buffers[1].data().len() == data.len() {
        return Ok(out);
    }
    Ok(buffers[1].data().to_vec())
}

/// Seals `plain` with an established context whose signature is its security trailer
/// (Kerberos, SPNEGO): the signature (the NTLM signature, or the head of a Kerberos wrap
/// token) and the sealed data.
///
/// # Errors
/// sspi's error when the context cannot tell its sizes or seal.
pub fn seal<P: Sspi>(package: &mut P, plain: &[u8]) -> sspi::Result<(Vec<u8>, Vec<u8>)> {
    let trailer = quiet(|| package.query_context_sizes())?.security_trailer as usize;
    let mut signature = vec![0u8; trailer];
    let data = transform(package, Message::Seal, &mut signature, plain)?;
    Ok((signature, data))
}

/// Unseals and verifies a message sealed by [`seal`]'s peer: the plaintext.
///
/// # Errors
/// sspi's error when the message does not verify; the context is then unusable.
pub fn unseal<P: Sspi>(package: &mut P, signature: &[u8], sealed: &[u8]) -> sspi::Result<Vec<u8>> {
    transform(package, Message::Unseal, &mut signature.to_vec(), sealed)
}
