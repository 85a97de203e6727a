//! WS-Enumeration (Enumerate, Pull, Release; [MS-WSMV] §3.1.4.8-10) as a cancellable
//! `Stream`: the builder and public types here, request bodies in `message`, the
//! streaming response reader in `page` (over the event layer in `cursor`; typed items
//! in `typed`), the Pull driver and the stream in `stream`.

mod cursor;
mod message;
mod page;
mod stream;
mod typed;

use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::{Error, Result};
use crate::operation::CancelReason;
use crate::resource::Resource;
use crate::soap::cim::{EndpointReference, Instance};
use crate::soap::envelope::Selector;

pub use page::Page;

pub use stream::Enumeration;

/// The default `MaxElements` of Enumerate and Pull (Windows' `MaxBatchItems` default).
/// The server also bounds every batch by `MaxEnvelopeSize`.
pub const DEFAULT_MAX_ELEMENTS: u32 = 32_000;

/// A WQL query, for [`EnumerateBuilder::filter`]: `Wql("SELECT Name FROM Win32_Service")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wql<'a>(pub &'a str);

impl Wql<'_> {
    /// `value` as a WQL string literal, for a query built from data: in single quotes,
    /// with `\` and `'` escaped by a backslash, as WMI reads them. A path written as it
    /// is (`C:\Windows`) is an invalid query in WMI (its backslash escapes the next
    /// character); and an unescaped quote would end the literal early and let the rest of
    /// the value become part of the query.
    ///
    /// ```
    /// use tokio_winrm::Wql;
    ///
    /// let path = r"C:\Program Files\O'Brien\app.exe";
    /// let query = format!(
    ///     "SELECT Name FROM Win32_Process WHERE ExecutablePath = {}",
    ///     Wql::string(path)
    /// );
    /// assert_eq!(
    ///     query,
    ///     r"SELECT Name FROM Win32_Process WHERE ExecutablePath = 'C:\\Program Files\\O\'Brien\\app.exe'"
    /// );
    /// ```
    pub fn string(value: &str) -> String {
        let mut out = String::with_capacity(value.len() + 2);
        out.push('\'');
        for c in value.chars() {
            if matches!(c, '\\' | '\'') {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('\'');
        out
    }
}

/// What an enumeration returns: all instances, or those a filter selects.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Filter {
    /// A WQL query (dialect `http://schemas.microsoft.com/wbem/wsman/1/WQL`). With the
    /// resource `.../wmi/root/cimv2/*` the query names the class.
    Wql(String),
    /// Instances whose keys equal these selectors (dialect
    /// `http://schemas.dmtf.org/wbem/wsman/1/wsman/SelectorFilter`).
    Selectors(Vec<Selector>),
}

impl From<Wql<'_>> for Filter {
    fn from(q: Wql<'_>) -> Self {
        Filter::Wql(q.0.to_string())
    }
}

/// What each item of an enumeration carries (`w:EnumerationMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EnumerationMode {
    /// The instances (the default).
    #[default]
    Objects,
    /// Endpoint references only (`EnumerateEPR`).
    References,
    /// Instances with their endpoint references (`EnumerateObjectAndEPR`).
    ObjectsAndReferences,
}

/// One enumerated item.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EnumItem {
    /// An instance ([`EnumerationMode::Objects`]).
    Object(Instance),
    /// An endpoint reference ([`EnumerationMode::References`]).
    Reference(EndpointReference),
    /// An instance and its endpoint reference ([`EnumerationMode::ObjectsAndReferences`]).
    ObjectAndReference(Instance, EndpointReference),
}

impl EnumItem {
    /// The instance, unless this is a bare reference.
    pub fn instance(&self) -> Option<&Instance> {
        match self {
            EnumItem::Object(i) | EnumItem::ObjectAndReference(i, _) => Some(i),
            EnumItem::Reference(_) => None,
        }
    }

    /// The endpoint reference, usable with [`Resource::from_epr`] for Get and Invoke.
    pub fn epr(&self) -> Option<&EndpointReference> {
        match self {
            EnumItem::Reference(r) | EnumItem::ObjectAndReference(_, r) => Some(r),
            EnumItem::Object(_) => None,
        }
    }

    /// The instance, by value.
    pub fn into_instance(self) -> Option<Instance> {
        match self {
            EnumItem::Object(i) | EnumItem::ObjectAndReference(i, _) => Some(i),
            EnumItem::Reference(_) => None,
        }
    }
}

/// One event of an [`Enumeration`]: an item, or the final status (always last, exactly once).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EnumEvent<T> {
    /// An item.
    Item(T),
    /// How the enumeration ended; the stream yields nothing after it.
    End(EnumEnd),
}

/// How an enumeration ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnumEnd {
    /// The server sent `EndOfSequence`: every item was delivered.
    Complete,
    /// Cancelled (caller, deadline or client shutdown). The items received before the
    /// cancel were delivered; a Release was sent for the server's context.
    Cancelled {
        /// Why.
        reason: CancelReason,
    },
}

/// The request an enumeration sends (pure data, written by `message`).
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub resource: Resource,
    pub filter: Option<Filter>,
    pub max_elements: u32,
    pub optimize: bool,
    pub mode: EnumerationMode,
}

/// Reads a response body into a batch of the stream's items (a fault is an error).
pub(crate) type ReadPage<T> = fn(&[u8]) -> Result<page::Batch<Result<T>>>;

/// Items as [`EnumItem`]s.
struct AnyItems;

impl page::Sink for AnyItems {
    type Item = Result<EnumItem>;
    fn object<'i>(
        &mut self,
        c: &mut page::Cursor<'i>,
        e: &page::Start<'i>,
        empty: bool,
    ) -> Result<Result<EnumItem>, crate::soap::ParseError> {
        Ok(Ok(EnumItem::Object(c.instance(e, empty)?)))
    }
    fn other(&mut self, item: EnumItem) -> Result<EnumItem> {
        Ok(item)
    }
}

fn read_items(bytes: &[u8]) -> Result<page::Batch<Result<EnumItem>>> {
    page::read(bytes, &mut AnyItems)
}

fn read_typed<T: DeserializeOwned>(bytes: &[u8]) -> Result<page::Batch<Result<T>>> {
    page::read(bytes, &mut typed::Typed::<T>::new())
}

/// Reads a PullResponse (or EnumerateResponse) into the caller's serde type, the way
/// [`Client::enumerate_as`] does: each object item is deserialized from the text as
/// received, without building an [`Instance`]. Returns the items (each its own
/// result), the next context and whether the sequence ended ([MS-WSMV] §3.1.4.8-9,
/// DMTF DSP0226 §8.3). For reading responses a program saved or received some other way
/// (captures, replays, a message queue) with the same reader the client uses.
///
/// # Errors
/// [`Error::Fault`] when the envelope is a fault, [`Error::Parse`] when it is not an
/// enumeration response; an item that does not fit `T` is that item's error.
pub fn parse_page_as<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<(Vec<Result<T>>, Option<String>, bool)> {
    let b = read_typed::<T>(bytes)?;
    Ok((b.items, b.context, b.end_of_sequence))
}

/// Builds an enumeration; [`EnumerateBuilder::start`] returns the stream.
#[must_use = "an enumeration does nothing until started"]
pub struct EnumerateBuilder<T> {
    client: Client,
    request: Request,
    deadline: Option<Duration>,
    token: Option<CancellationToken>,
    reader: ReadPage<T>,
    _t: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for EnumerateBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnumerateBuilder")
            .field("request", &self.request)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> EnumerateBuilder<T> {
    fn new(client: &Client, resource: &Resource, reader: ReadPage<T>) -> Self {
        EnumerateBuilder {
            client: client.clone(),
            request: Request {
                resource: resource.clone(),
                filter: None,
                max_elements: DEFAULT_MAX_ELEMENTS,
                optimize: true,
                mode: EnumerationMode::Objects,
            },
            deadline: None,
            token: None,
            reader,
            _t: PhantomData,
        }
    }

    /// Enumerates only what `filter` selects: `Wql("SELECT ...")` or
    /// [`Filter::Selectors`]. A query or selector (or the resource's URI, selectors or
    /// options) holding a character XML cannot carry (NUL, control characters other
    /// than tab, CR and LF, U+FFFE, U+FFFF) ends the stream with
    /// [`crate::Error::InvalidText`] before anything is sent.
    pub fn filter(mut self, filter: impl Into<Filter>) -> Self {
        self.request.filter = Some(filter.into());
        self
    }

    /// The most items per batch (`MaxElements`, default [`DEFAULT_MAX_ELEMENTS`], at
    /// least 1). The stream keeps at most one batch ahead of the consumer.
    pub fn max_elements(mut self, n: u32) -> Self {
        self.request.max_elements = n.max(1);
        self
    }

    /// `OptimizeEnumeration` (default true): the Enumerate response already carries the
    /// first batch, saving one round trip.
    pub fn optimize(mut self, yes: bool) -> Self {
        self.request.optimize = yes;
        self
    }

    /// Objects, references or both (default objects).
    pub fn mode(mut self, mode: EnumerationMode) -> Self {
        self.request.mode = mode;
        self
    }

    /// Cancels the enumeration (reason Timeout) when `d` has passed since `start()`.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline = Some(d);
        self
    }

    /// Cancels the enumeration (reason User) when `token` is cancelled.
    pub fn cancellation(mut self, token: CancellationToken) -> Self {
        self.token = Some(token);
        self
    }

    /// Starts the enumeration: a background task sends Enumerate, then Pull until
    /// `EndOfSequence`, one batch ahead of the consumer. Outside a tokio runtime the
    /// task starts when the stream is first polled.
    pub fn start(self) -> Enumeration<T> {
        let scope = self
            .client
            .scope(self.token, self.deadline.map(|d| Instant::now() + d));
        Enumeration::new(self.client, scope, self.request, self.reader)
    }
}

impl Client {
    /// An enumeration of `resource` (a WMI class, `.../wmi/root/cimv2/*` with a WQL
    /// filter, or any enumerable resource such as the shell list) yielding [`EnumItem`]s.
    ///
    /// ```no_run
    /// # async fn f(client: tokio_winrm::Client) -> tokio_winrm::Result<()> {
    /// use futures_util::StreamExt;
    /// use tokio_winrm::{EnumEvent, Resource, Wql};
    /// let mut services = client
    ///     .enumerate(&Resource::wmi("root/cimv2", "*"))
    ///     .filter(Wql("SELECT Name, State FROM Win32_Service WHERE State = 'Running'"))
    ///     .start();
    /// while let Some(event) = services.next().await {
    ///     match event? {
    ///         EnumEvent::Item(item) => println!("{:?}", item.instance()),
    ///         EnumEvent::End(end) => println!("{end:?}"),
    ///         _ => {} // the enum may grow
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn enumerate(&self, resource: &Resource) -> EnumerateBuilder<EnumItem> {
        EnumerateBuilder::new(self, resource, read_items)
    }

    /// An enumeration yielding the caller's serde type, deserialized from each instance
    /// (see [`crate::from_instance`]). An item that does not fit `T` is an
    /// [`Error::Deserialize`] item; the stream goes on after it.
    pub fn enumerate_as<T: DeserializeOwned + Send + 'static>(
        &self,
        resource: &Resource,
    ) -> EnumerateBuilder<T> {
        EnumerateBuilder::new(self, resource, read_typed::<T>)
    }

    /// A WQL query in a WMI namespace (e.g. `root/cimv2`): an enumeration of
    /// `.../wmi/{namespace}/*` with the query as filter.
    pub fn wql(&self, namespace: &str, query: &str) -> EnumerateBuilder<EnumItem> {
        self.enumerate(&Resource::wmi(namespace, "*"))
            .filter(Wql(query))
    }
}

/// True for the fault a Pull or Release gets once the context has expired or ended.
pub(crate) fn is_invalid_context(e: &Error) -> bool {
    e.fault()
        .is_some_and(crate::soap::Fault::is_invalid_enumeration_context)
}
