//! The log of the KDC that tests/kdc/setup.sh starts (`$TOKIO_WINRM_KDC_DIR/kdc.log`):
//! how many AS and TGS exchanges a user made.

use std::time::Duration;

/// `(AS, TGS)` exchanges of `user@realm` in the log of the KDC in `dir` (an AS exchange
/// answered "preauthentication needed" does not count).
pub fn exchanges(dir: &str, realm: &str, user: &str) -> (usize, usize) {
    let log = std::fs::read_to_string(format!("{dir}/kdc.log")).unwrap_or_default();
    let who = format!(" {user}@{realm} for ");
    let lines = || log.lines().filter(|l| l.contains(&who));
    let as_exchanges = lines()
        .filter(|l| l.contains("AS_REQ") && !l.contains("NEEDED_PREAUTH"))
        .count();
    let tgs_exchanges = lines().filter(|l| l.contains("TGS_REQ")).count();
    (as_exchanges, tgs_exchanges)
}

/// The counts once the KDC has written its lines (it logs after it answers).
pub async fn settled_exchanges(dir: &str, realm: &str, user: &str) -> (usize, usize) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    exchanges(dir, realm, user)
}
