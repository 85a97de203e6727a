//! Credentials. Passwords live in `secrecy` types and never reach `Debug`, logs or errors.

use std::fmt;

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

/// How to authenticate.
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials (Identify with `WSMANIDENTIFY: unauthenticated`, or open endpoints).
    None,
    /// HTTP Basic. Refused over plain HTTP unless the client explicitly allows it.
    Basic {
        /// User name (`user`, `DOMAIN\user` or `user@domain`).
        user: String,
        /// Password.
        password: SecretString,
    },
}

impl Auth {
    /// Basic authentication.
    pub fn basic(user: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Basic {
            user: user.into(),
            password: SecretString::from(password.into()),
        }
    }

    /// The user name, if any.
    pub fn user(&self) -> Option<&str> {
        match self {
            Auth::None => None,
            Auth::Basic { user, .. } => Some(user),
        }
    }

    /// The scheme name as used in `WWW-Authenticate`.
    pub fn scheme(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Basic { .. } => "Basic",
        }
    }

    /// The value of the `Authorization` header for Basic.
    pub(crate) fn basic_header(&self) -> Option<http::HeaderValue> {
        match self {
            Auth::Basic { user, password } => {
                let raw = format!("{user}:{}", password.expose_secret());
                let enc = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
                let mut v = http::HeaderValue::from_str(&format!("Basic {enc}")).ok()?;
                v.set_sensitive(true);
                Some(v)
            }
            Auth::None => None,
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Basic { user, .. } => f
                .debug_struct("Auth::Basic")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let a = Auth::basic("DOMAIN\\bob", "hunter2-secret");
        let d = format!("{a:?}");
        assert!(d.contains("DOMAIN\\\\bob"));
        assert!(!d.contains("hunter2"));
        let h = a.basic_header().unwrap();
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("aHVudGVy"));
    }
}
