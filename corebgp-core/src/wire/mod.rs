//! The BGP-4 wire codec: zero-copy message views and encoders.
//!
//! Decoding borrows the input (`&'a [u8]`) and never copies; encoding writes
//! into a caller-provided `&mut [u8]` and returns the number of bytes written
//! or an [`EncodeError`]. Every decoding failure carries the NOTIFICATION the
//! RFCs require via a `notification()` method.

mod buf;
mod capability;
mod framer;
mod header;
mod message;
mod notification;
mod open;
mod route_refresh;
mod types;
mod update;

pub use buf::EncodeError;
pub(crate) use buf::{Reader, Writer, copy};
pub(crate) use capability::fqdn_well_formed;
pub use capability::{
    AddPathDirection, AddPathEntry, Capability, CapabilityCode, ExtendedNextHopEntry,
    GracefulRestart, GracefulRestartEntry, List, ListItem, ListIter, LlgrEntry,
    MalformedCapability, RawCapability, Role,
};
pub use framer::Framer;
pub use header::{
    HEADER_LEN, Header, HeaderError, KEEPALIVE, MARKER, MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN,
    MessageType, encode_header, encode_keepalive,
};
pub use message::{Message, MessageError};
pub use notification::{
    CeaseSubcode, FsmSubcode, HeaderSubcode, InlineData, MAX_SHUTDOWN_COMMUNICATION_LEN,
    Notification, NotificationCode, NotificationData, OpenSubcode, RouteRefreshSubcode,
    ShutdownCommunicationError, UpdateSubcode,
};
pub use open::{
    AS_TRANS, BGP_VERSION, Capabilities, Open, OpenBuilder, OpenError, OptionalParameter,
    PARAM_CAPABILITIES, Parameters, RawCapabilities,
};
pub use route_refresh::{RouteRefresh, RouteRefreshError, RouteRefreshSubtype};
pub use types::{Afi, AfiSafi, Safi};
pub use update::{UpdateSections, UpdateSectionsError, encode_update_sections};
