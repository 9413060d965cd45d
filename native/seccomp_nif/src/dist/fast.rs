//! The packets the driver delivers without asking the filter: messages to a
//! local process or alias the peer holds, exactly as the filter
//! (`seccomp_dist_filter`) would accept them. Anything else, or anything
//! this cannot prove, goes to the filter.
//!
//! A message to a pid: `SEND_SENDER` (22) or `ALTACT_SIG_SEND` (37, no
//! flags); to an alias: `ALIAS_SEND` (33) or 37 with the alias flag. The
//! sender must be a pid of the peer, the destination one the peer was shown
//! and, for a pid, not a registered process (the filter judges those by
//! name), with `send` allowed. The payload must be one whole term whose
//! atoms this node is known to have, with no funs, within
//! `max_message_bytes`, and not tagged as a door (`$gen_call`, ...).

use super::caps::{self, Caps};
use super::Shared;
use crate::etf;

const VERSION: u8 = 131;
/// Terms a payload walk may visit here (longer walks go to the filter).
const WALK_BUDGET: u64 = 20_000;
const DOORS: [&[u8]; 6] = [b"$gen_call", b"$gen_cast", b"system", b"EXIT", b"io_request", b"file_request"];

pub fn accepts(packet: &[u8], shared: &Shared, caps: &Caps) -> bool {
    let Some(terms) = packet.strip_prefix(&[112]) else {
        return false;
    };
    let (from_at, to_kind) = match *terms {
        [VERSION, 104, 3, 97, 22, ..] => (5, b'p'),
        [VERSION, 104, 3, 97, 33, ..] => (5, b'r'),
        [VERSION, 104, 4, 97, 37, 97, 0, ..] => (7, b'p'),
        [VERSION, 104, 4, 97, 37, 97, 4, ..] => (7, b'r'),
        _ => return false,
    };
    let Some((from_node, from, from_len)) = caps::identifier(&terms[from_at..]) else {
        return false;
    };
    let to_at = from_at + from_len;
    let Some((to_node, to, to_len)) = caps::identifier(&terms[to_at..]) else {
        return false;
    };
    if from[0] != b'p' || shared.peer.get().map(Vec::as_slice) != Some(from_node) || to[0] != to_kind || to_node != shared.node.as_slice() {
        return false;
    }
    if !shared.rules_current() || !caps.holds(&to) {
        return false;
    }
    if to_kind == b'p' && !(shared.send_allowed() && shared.unregistered(&to)) {
        return false;
    }
    let payload = &terms[to_at + to_len..];
    if door(payload) {
        return false;
    }
    match etf::scan_known(payload, WALK_BUDGET) {
        Some((size, 0, memory)) => size == payload.len() && memory <= shared.max_bytes(),
        _ => false,
    }
}

/// Whether a payload's outer term is a tuple whose first element is one of
/// the atoms door messages start with.
fn door(payload: &[u8]) -> bool {
    let first = match *payload {
        [VERSION, 104, _, ..] => 3,
        [VERSION, 105, _, _, _, _, ..] => 6,
        _ => return false,
    };
    match caps::atom(payload, first) {
        Some((name, _)) => DOORS.contains(&name),
        None => false,
    }
}
