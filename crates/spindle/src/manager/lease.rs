//! A proxy passed to another process: a token with a lease ticket.
//!
//! Serializing a proxy asks the server for a ticket that holds a reference
//! for [`LEASE_TIME`](super::LEASE_TIME); the process that deserializes it
//! connects (with its own authkey, see [`Manager::connect`](super::Manager))
//! and trades the ticket for a reference of its own.
#![forbid(unsafe_code)]

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::client::{Handle, shared_connection};
use super::proto::{Op, Token, Value};
use super::proxy::Proxy;
use super::wire::WireConfig;
use crate::ipc::Address;

#[derive(Serialize, Deserialize)]
struct Wire {
    address: String,
    typeid: String,
    ticket: u64,
}

pub(crate) fn serialize<S: serde::Serializer>(h: &Handle, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error;
    let conn = h.conn().map_err(S::Error::custom)?;
    let ticket = match conn
        .call_checked(Op::Lease { obj: h.token.obj })
        .map_err(S::Error::custom)?
    {
        Value::U64(t) => t,
        v => return Err(S::Error::custom(format!("unexpected lease reply {v:?}"))),
    };
    Wire {
        address: conn.address.to_string(),
        typeid: h.token.typeid.clone(),
        ticket,
    }
    .serialize(s)
}

pub(crate) fn deserialize<'de, P: Proxy, D: serde::Deserializer<'de>>(d: D) -> Result<P, D::Error> {
    use serde::de::Error;
    let w = Wire::deserialize(d)?;
    let address: Address = w
        .address
        .parse()
        .map_err(|e| D::Error::custom(format!("proxy token address: {e}")))?;
    if w.typeid != super::server_typeid(P::TYPEID) {
        return Err(D::Error::custom(format!(
            "wrong type: a {} proxy token read as a {} proxy",
            w.typeid,
            P::TYPEID
        )));
    }
    let conn =
        shared_connection(&address, None, &WireConfig::default()).map_err(D::Error::custom)?;
    let token: Token = match conn
        .call_checked(Op::Claim { ticket: w.ticket })
        .map_err(D::Error::custom)?
    {
        Value::Token(t) => t,
        v => return Err(D::Error::custom(format!("unexpected claim reply {v:?}"))),
    };
    Ok(<P as super::proxy::sealed::Sealed>::from_handle(Arc::new(
        Handle::new(conn, token),
    )))
}
