//! Per-operation fault injection ([`Simulator::inject`]): the next requests that match
//! an [`Injection`] are delayed, answered with a fault or an HTTP status, or have their
//! connection dropped, before the simulator carries them out.

use std::sync::Mutex;
use std::time::Duration;

use super::response::SimFault;
use super::{SimRequest, Simulator};
use crate::soap::ns::action;

/// The operations an [`Injection`] can match, by their `wsa:Action`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Any request but Identify.
    Any,
    /// WS-Transfer Get.
    Get,
    /// WS-Transfer Put.
    Put,
    /// WS-Transfer Create (also a WinRS shell's creation).
    Create,
    /// WS-Transfer Delete (also a WinRS shell's deletion).
    Delete,
    /// WS-Enumeration Enumerate.
    Enumerate,
    /// WS-Enumeration Pull.
    Pull,
    /// WS-Enumeration Release.
    Release,
    /// WinRS Command.
    Command,
    /// WinRS Send.
    Send,
    /// WinRS Receive.
    Receive,
    /// WinRS Signal.
    Signal,
    /// Any other action, by its URI (e.g. an Invoke:
    /// `.../wmi/root/cimv2/Win32_Process/Create`), compared case-insensitively.
    Action(String),
}

impl Operation {
    fn matches(&self, req: &SimRequest) -> bool {
        let uri = match self {
            Operation::Any => return !req.identify,
            Operation::Get => action::GET,
            Operation::Put => action::PUT,
            Operation::Create => action::CREATE,
            Operation::Delete => action::DELETE,
            Operation::Enumerate => action::ENUMERATE,
            Operation::Pull => action::PULL,
            Operation::Release => action::RELEASE,
            Operation::Command => action::COMMAND,
            Operation::Send => action::SEND,
            Operation::Receive => action::RECEIVE,
            Operation::Signal => action::SIGNAL,
            Operation::Action(a) => a.as_str(),
        };
        !req.identify && req.action.eq_ignore_ascii_case(uri)
    }
}

/// What an injection does to a request it matches.
#[derive(Debug, Clone)]
pub(crate) enum Effect {
    /// Waits, then carries the request out as usual.
    Delay(Duration),
    /// Answers with this fault instead.
    Fault(SimFault),
    /// Answers with this HTTP status and an empty body instead.
    HttpStatus(u16),
    /// Closes the connection without an answer (the request is not carried out).
    Drop,
}

/// A fault to inject into the next requests that match an operation (and, optionally,
/// a resource URI), registered with [`Simulator::inject`]. Its effect, by default a
/// 200 ms delay, is chosen with [`delay`](Injection::delay),
/// [`fault`](Injection::fault), [`fault_code`](Injection::fault_code),
/// [`http_status`](Injection::http_status) or
/// [`drop_connection`](Injection::drop_connection); it applies to the next
/// [`times`](Injection::times) matching requests (default 1), after authentication and
/// before the request is carried out; [`after`](Injection::after) lets a number of
/// matching requests by first (to hit, say, the third Receive of a command).
///
/// ```
/// use winrm_simulator::{Injection, Operation};
///
/// // The next two Receives fail with ERROR_INVALID_STATE (5023).
/// let i = Injection::on(Operation::Receive).fault_code(5023).times(2);
/// # let _ = i;
/// ```
#[derive(Debug, Clone)]
pub struct Injection {
    operation: Operation,
    resource_uri: Option<String>,
    effect: Effect,
    times: u32,
    skip: u32,
}

impl Injection {
    /// An injection on requests of `operation`.
    pub fn on(operation: Operation) -> Injection {
        Injection {
            operation,
            resource_uri: None,
            effect: Effect::Delay(Duration::from_millis(200)),
            times: 1,
            skip: 0,
        }
    }

    /// Only requests whose `w:ResourceURI` starts with `prefix` (case-insensitive),
    /// e.g. `http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Acme_Widget`.
    #[must_use]
    pub fn resource_uri(mut self, prefix: impl Into<String>) -> Injection {
        self.resource_uri = Some(prefix.into());
        self
    }

    /// Delays the request by `d`, then carries it out as usual.
    #[must_use]
    pub fn delay(mut self, d: Duration) -> Injection {
        self.effect = Effect::Delay(d);
        self
    }

    /// Answers with `fault` instead of carrying the request out.
    #[must_use]
    pub fn fault(mut self, fault: SimFault) -> Injection {
        self.effect = Effect::Fault(fault);
        self
    }

    /// Answers with a `w:InternalError` fault (HTTP 500) whose WSManFault code is
    /// `code`, e.g. 1726 (`RPC_S_CALL_FAILED`).
    #[must_use]
    pub fn fault_code(self, code: u32) -> Injection {
        self.fault(SimFault::internal(
            "A fault injected by the simulator.",
            code,
        ))
    }

    /// Answers with HTTP `status` (e.g. 503) and an empty body.
    #[must_use]
    pub fn http_status(mut self, status: u16) -> Injection {
        self.effect = Effect::HttpStatus(status);
        self
    }

    /// Closes the connection without answering; the request is not carried out.
    #[must_use]
    pub fn drop_connection(mut self) -> Injection {
        self.effect = Effect::Drop;
        self
    }

    /// Lets the next `n` matching requests by untouched (counted whether or not an
    /// injection armed earlier takes them), then applies to the following
    /// [`times`](Injection::times) (default 0: from the first).
    ///
    /// ```
    /// use winrm_simulator::{Injection, Operation};
    ///
    /// // The third Receive (and only it) fails with ERROR_INVALID_STATE (5023).
    /// let i = Injection::on(Operation::Receive).fault_code(5023).after(2);
    /// # let _ = i;
    /// ```
    #[must_use]
    pub fn after(mut self, n: u32) -> Injection {
        self.skip = n;
        self
    }

    /// Applies to the next `n` matching requests (default 1; 0 arms nothing).
    #[must_use]
    pub fn times(mut self, n: u32) -> Injection {
        self.times = n;
        self
    }

    fn matches(&self, req: &SimRequest) -> bool {
        self.operation.matches(req)
            && self.resource_uri.as_deref().is_none_or(|prefix| {
                req.resource_uri.as_deref().is_some_and(|uri| {
                    uri.get(..prefix.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
                })
            })
    }
}

/// The armed injections of one simulator, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Injections {
    armed: Mutex<Vec<Injection>>,
}

impl Injections {
    /// The effect for `req`: the oldest armed injection that matches it, used up once.
    pub(crate) fn take(&self, req: &SimRequest) -> Option<Effect> {
        let mut armed = super::wmi::lock(&self.armed);
        // Every matching injection still letting requests by counts this one; the
        // oldest matching one that is not takes it.
        let mut hit = None;
        for (i, inj) in armed.iter_mut().enumerate() {
            if !inj.matches(req) {
                continue;
            }
            if inj.skip > 0 {
                inj.skip -= 1;
            } else if hit.is_none() {
                hit = Some(i);
            }
        }
        let i = hit?;
        let effect = armed[i].effect.clone();
        armed[i].times -= 1;
        if armed[i].times == 0 {
            armed.remove(i);
        }
        Some(effect)
    }
}

impl Simulator {
    /// Arms `injection`: the next requests that match it get its effect (see
    /// [`Injection`]). Injections armed earlier are checked first.
    pub fn inject(&self, injection: Injection) {
        if injection.times > 0 {
            super::wmi::lock(&self.state.injections.armed).push(injection);
        }
    }

    /// Disarms every injection not used up yet.
    pub fn clear_injections(&self) {
        super::wmi::lock(&self.state.injections.armed).clear();
    }

    /// How many matching requests the armed injections still wait for, in total.
    pub fn pending_injections(&self) -> u64 {
        super::wmi::lock(&self.state.injections.armed)
            .iter()
            .map(|i| u64::from(i.times))
            .sum()
    }
}
