//! A registered simulator cmdlet reads the SecureStrings the client sends
//! (`CmdletContext::secure_parameter`, `CmdletContext::decrypt`) with the pool's
//! session key, and gets a typed error when no key was exchanged.

use std::time::Duration;

use secrecy::ExposeSecret as _;
use tokio_winrm::psrp::{EncryptedString, PsValue, SessionKey, ps_credential};
use tokio_winrm::{Auth, Client, Error};
use winrm_simulator::{CmdletContext, SecureStringError, Simulator};

async fn within<T>(secs: u64, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test step timed out")
}

async fn setup() -> (Simulator, Client) {
    let sim = Simulator::start().await.unwrap();
    let client = Client::builder(sim.endpoint())
        .auth(Auth::basic(sim.user(), sim.password()))
        .allow_insecure_basic(true)
        .operation_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    // Writes the plain text of -Value, or the typed error's name when it has none.
    sim.register_cmdlet("Show-Secret", |ctx: CmdletContext| async move {
        match ctx.secure_parameter("Value") {
            Ok(s) => ctx.write_output(s.expose_secret().to_string()).await,
            Err(e) => {
                let name = match e {
                    SecureStringError::Missing { .. } => "Missing",
                    SecureStringError::NotSecureString { .. } => "NotSecureString",
                    SecureStringError::NoSessionKey => "NoSessionKey",
                    SecureStringError::Undecryptable => "Undecryptable",
                    _ => "other",
                };
                ctx.write_output(name).await;
            }
        }
        Ok(())
    });
    // Reads a PSCredential's password from -Credential; `?` makes the error a record.
    sim.register_cmdlet("Show-Credential", |ctx: CmdletContext| async move {
        let cred = ctx
            .parameter("Credential")
            .cloned()
            .unwrap_or(PsValue::Null);
        let secure = match cred.as_object().and_then(|o| o.property("Password")) {
            Some(PsValue::SecureString(s)) => s.clone(),
            _ => return Ok(()),
        };
        let plain = ctx.decrypt(&secure)?;
        ctx.write_output(plain.expose_secret().to_string()).await;
        Ok(())
    });
    (sim, client)
}

async fn show(pool: &tokio_winrm::psrp::RunspacePool, value: Option<PsValue>) -> String {
    let mut p = pool.pipeline().command("Show-Secret");
    if let Some(v) = value {
        p = p.param("Value", v);
    }
    let inv = within(10, p.invoke()).await.unwrap();
    inv.output[0].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_registered_cmdlet_decrypts_the_secure_strings_the_client_sends() {
    let (_sim, client) = setup().await;
    let pool = within(10, client.runspace_pool().open()).await.unwrap();

    // Before any exchange: a SecureString made with a key the server never got.
    let stray = PsValue::SecureString(SessionKey::generate().encrypt("early"));
    assert_eq!(show(&pool, Some(stray)).await, "NoSessionKey");
    // As a cmdlet's `?`: the pipeline fails with the error's text.
    let cred = ps_credential("admin", SessionKey::generate().encrypt("x"));
    let err = within(
        10,
        pool.pipeline()
            .command("Show-Credential")
            .param("Credential", cred)
            .invoke(),
    )
    .await
    .expect_err("no session key");
    match err {
        Error::PipelineFailed { error } => {
            assert!(error.message.contains("no session key"), "{error:?}")
        }
        other => panic!("{other:?}"),
    }

    // The client exchanges the key and sends SecureStrings.
    let secret = within(10, pool.secure_string("pässw0rd €")).await.unwrap();
    assert_eq!(show(&pool, Some(secret)).await, "pässw0rd €");
    let PsValue::SecureString(enc) = within(10, pool.secure_string("hunter2")).await.unwrap()
    else {
        panic!("not a SecureString");
    };
    let inv = within(
        10,
        pool.pipeline()
            .command("Show-Credential")
            .param("Credential", ps_credential("admin", enc))
            .invoke(),
    )
    .await
    .unwrap();
    assert_eq!(inv.output[0].as_str(), Some("hunter2"));

    // The other typed errors.
    assert_eq!(show(&pool, Some("plain".into())).await, "NotSecureString");
    assert_eq!(show(&pool, None).await, "Missing");
    // Not whole AES blocks: no key decrypts it.
    let damaged = PsValue::SecureString(EncryptedString::from_ciphertext(vec![7; 5]));
    assert_eq!(show(&pool, Some(damaged)).await, "Undecryptable");
    within(10, pool.close()).await.unwrap();
}
