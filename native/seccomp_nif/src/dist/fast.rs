//! The packets the driver delivers without asking the filter: messages to a
//! local process or alias the peer holds, exactly as the filter
//! (`seccomp_dist_filter`) would accept them. Anything else, or anything
//! this cannot prove, goes to the filter.
//!
//! A message to a pid: `SEND_SENDER` (22) or `ALTACT_SIG_SEND` (37, no
//! flags); to an alias: `ALIAS_SEND` (33) or 37 with the alias flag. The
//! sender must be a pid of the peer, the destination one the peer was shown
//! and, for a pid, one the filter has found plain (not named, not the
//! runtime's or OTP's own) and not registered since (the filter judges
//! those by name), with `send` allowed; for an alias, its owner one the
//! filter has found plain. The payload
//! must be one whole term whose
//! atoms this node is known to have, with no funs, within
//! `max_message_bytes`, and not tagged as a door (`$gen_call`, ...).
//!
//! A spawn request (`SPAWN_REQUEST`, 29, no trace token) from a process of
//! the peer, with a group leader not of this node, options `link` and
//! `monitor` only, and an argument list as long as the arity it names, of a
//! function the rules' `rpc` list allows (for `erpc:execute_call/4` and
//! `erpc:execute_cast/3`, the function they call). Its atoms, like a
//! message's, must be known to exist and its names UTF-8.

use super::caps::{self, Caps};
use super::Shared;
use crate::etf::{self, KnownAtoms};

const VERSION: u8 = 131;
/// Terms a payload walk may visit here (longer walks go to the filter).
const WALK_BUDGET: u64 = 20_000;

/// What the driver delivers on its own.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Message,
    SpawnRequest,
}

/// Whether `packet` is a spawn request (`SPAWN_REQUEST`, no trace token).
pub fn spawn_request_packet(packet: &[u8]) -> bool {
    matches!(packet, [112, VERSION, 104, 6, 97, 29, ..])
}

pub fn accepts(
    packet: &[u8],
    shared: &Shared,
    caps: &mut Caps,
    known: &mut KnownAtoms,
) -> Option<Kind> {
    let terms = packet.strip_prefix(&[112])?;
    if !shared.rules_current() {
        return None;
    }
    if spawn_request_packet(packet) {
        return spawn_request(terms, shared, known).then_some(Kind::SpawnRequest);
    }
    message(terms, shared, caps, known).then_some(Kind::Message)
}

fn message(terms: &[u8], shared: &Shared, caps: &mut Caps, known: &mut KnownAtoms) -> bool {
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
    if from[0] != b'p'
        || shared.peer.get().map(Vec::as_slice) != Some(from_node)
        || to[0] != to_kind
        || to_node != shared.node.as_slice()
    {
        return false;
    }
    if !caps.holds(&to) {
        return false;
    }
    if to_kind == b'p' && !(shared.send_allowed() && caps.is_plain(&to) && shared.unregistered(&to))
    {
        return false;
    }
    // An alias is judged as its owner is: the filter vouches for plain ones.
    if to_kind == b'r' && !caps.plain_owner(&to) {
        return false;
    }
    let payload = &terms[to_at + to_len..];
    !door(payload, shared) && plain_payload(payload, shared, known)
}

/// One whole term of known atoms, no funs, within `max_message_bytes`.
fn plain_payload(payload: &[u8], shared: &Shared, known: &mut KnownAtoms) -> bool {
    match etf::scan_known(payload, WALK_BUDGET, known) {
        Some((size, 0, memory)) => size == payload.len() && memory <= shared.max_bytes(),
        _ => false,
    }
}

/// `{29, ReqId, From, GroupLeader, {M, F, A}, Opts}` and its argument list.
fn spawn_request(terms: &[u8], shared: &Shared, known: &mut KnownAtoms) -> bool {
    spawn_call(terms, shared, known).is_some_and(|(m, f, a)| shared.rpc_allowed(m, f, a))
}

fn spawn_call<'a>(
    terms: &'a [u8],
    shared: &Shared,
    known: &mut KnownAtoms,
) -> Option<(&'a [u8], &'a [u8], usize)> {
    let (_, request, len) = caps::identifier(terms.get(5..)?)?;
    let from_at = 5 + len;
    let (from_node, from, len) = caps::identifier(terms.get(from_at..)?)?;
    let leader_at = from_at + len;
    let (leader_node, leader, len) = caps::identifier(terms.get(leader_at..)?)?;
    let at = leader_at + len;
    if request[0] != b'r'
        || from[0] != b'p'
        || shared.peer.get().map(Vec::as_slice) != Some(from_node)
        || leader[0] != b'p'
        || leader_node == shared.node.as_slice()
        || ![5, from_at, leader_at]
            .iter()
            .all(|&at| node_known(terms, at, shared, known))
    {
        return None;
    }
    if terms.get(at..at + 2)? != [104, 3] {
        return None;
    }
    let (m, after) = utf8_atom(terms, at + 2)?;
    let (f, after) = utf8_atom(terms, after)?;
    let [97, arity] = *terms.get(after..after + 2)? else {
        return None;
    };
    // Every atom of the control term known (the sender's node is the peer;
    // `link` and `monitor` exist in every runtime), nothing after it but the
    // arguments.
    if !known.knows(119, m) || !known.knows(119, f) {
        return None;
    }
    let control_end = spawn_options(terms, after + 2)?;
    let payload = &terms[control_end..];
    if !plain_payload(payload, shared, known) {
        return None;
    }
    let args = list(payload, 1)?;
    if args.len != arity as usize {
        return None;
    }
    match (m, f, args.len) {
        (b"erpc", b"execute_call", 4) => inner_call(payload, skip(payload, args.first)?),
        (b"erpc", b"execute_cast", 3) => inner_call(payload, args.first),
        (b"erpc", _, _) => None,
        _ => Some((m, f, args.len)),
    }
}

/// Whether the node of the pid or reference at `at` names an atom known to
/// exist (the peer's name, in UTF-8, does).
fn node_known(terms: &[u8], at: usize, shared: &Shared, known: &mut KnownAtoms) -> bool {
    let tag_at = match terms.get(at) {
        Some(88 | 103) => at + 1,
        Some(90 | 114) => at + 3,
        _ => return false,
    };
    match (terms.get(tag_at), caps::atom(terms, tag_at)) {
        (Some(&tag), Some((node, _))) => {
            (matches!(tag, 118 | 119) && shared.peer.get().is_some_and(|p| p.as_slice() == node))
                || known.knows(tag, node)
        }
        _ => false,
    }
}

/// The module, function and argument count of `M, F, Args` at `at`.
fn inner_call(payload: &[u8], at: usize) -> Option<(&[u8], &[u8], usize)> {
    let (m, at) = utf8_atom(payload, at)?;
    let (f, at) = utf8_atom(payload, at)?;
    Some((m, f, list(payload, at)?.len))
}

/// The spawn options `[]`, or a proper list of `link` and `monitor`; where they end.
fn spawn_options(terms: &[u8], at: usize) -> Option<usize> {
    let options = list(terms, at)?;
    let mut at = options.first;
    for _ in 0..options.len {
        let (name, next) = utf8_atom(terms, at)?;
        if name != b"link" && name != b"monitor" {
            return None;
        }
        at = next;
    }
    Some(options.end)
}

struct List {
    len: usize,
    /// Where its first element starts, and where the list ends.
    first: usize,
    end: usize,
}

/// A proper list at `at` (`[]`, a list whose tail is `[]`, or a string).
fn list(bin: &[u8], at: usize) -> Option<List> {
    match *bin.get(at)? {
        106 => Some(List {
            len: 0,
            first: at + 1,
            end: at + 1,
        }),
        107 => {
            let len = u16::from_be_bytes([*bin.get(at + 1)?, *bin.get(at + 2)?]) as usize;
            Some(List {
                len,
                first: at + 3,
                end: at + 3 + len,
            })
        }
        108 => {
            let len = u32::from_be_bytes(bin.get(at + 1..at + 5)?.try_into().ok()?) as usize;
            let mut end = at + 5;
            for _ in 0..len {
                end = skip(bin, end)?;
            }
            (*bin.get(end)? == 106).then_some(List {
                len,
                first: at + 5,
                end: end + 1,
            })
        }
        _ => None,
    }
}

fn skip(bin: &[u8], at: usize) -> Option<usize> {
    etf::skip_term(bin, at)
}

/// An atom encoded as UTF-8 (a Latin-1 encoding of the same bytes would
/// name another atom).
fn utf8_atom(bin: &[u8], at: usize) -> Option<(&[u8], usize)> {
    match *bin.get(at)? {
        118 | 119 => caps::atom(bin, at),
        _ => None,
    }
}

/// Whether a payload's outer term is a tuple whose first element is one of
/// the atoms door messages start with (`seccomp_dist_filter:doors/0`).
fn door(payload: &[u8], shared: &Shared) -> bool {
    let first = match *payload {
        [VERSION, 104, _, ..] => 3,
        [VERSION, 105, _, _, _, _, ..] => 6,
        _ => return false,
    };
    match caps::atom(payload, first) {
        Some((name, _)) => shared.door(name),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    const NODE: &[u8] = b"here@h";
    const PEER: &[u8] = b"peer@h";

    fn atom(name: &[u8]) -> Vec<u8> {
        let mut v = vec![119, name.len() as u8];
        v.extend_from_slice(name);
        v
    }

    fn pid(node: &[u8], id: u8) -> Vec<u8> {
        let mut v = vec![88];
        v.extend(atom(node));
        v.extend_from_slice(&[0, 0, 0, id, 0, 0, 0, 0, 0, 0, 0, 1]);
        v
    }

    fn reference(node: &[u8], id: u8) -> Vec<u8> {
        let mut v = vec![90, 0, 1];
        v.extend(atom(node));
        v.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, id]);
        v
    }

    fn tuple(items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![104, items.len() as u8];
        items.iter().for_each(|i| v.extend(i));
        v
    }

    fn list(items: &[Vec<u8>]) -> Vec<u8> {
        if items.is_empty() {
            return vec![106];
        }
        let mut v = vec![108, 0, 0, 0, items.len() as u8];
        items.iter().for_each(|i| v.extend(i));
        v.push(106);
        v
    }

    fn small(n: u8) -> Vec<u8> {
        vec![97, n]
    }

    fn packet(control: Vec<u8>, payload: Vec<u8>) -> Vec<u8> {
        let mut p = vec![112, VERSION];
        p.extend(control);
        p.push(VERSION);
        p.extend(payload);
        p
    }

    fn shared() -> Shared {
        for name in [
            &b"msg"[..],
            b"erpc",
            b"execute_call",
            b"erlang",
            b"node",
            b"os",
            b"cmd",
            b"monitor",
            NODE,
            PEER,
        ] {
            etf::know(name);
        }
        let s = Shared::new(NODE);
        let _ = s.peer.set(PEER.to_vec());
        s.send_allowed.store(true, Ordering::Relaxed);
        s.max_bytes.store(1 << 20, Ordering::Relaxed);
        s.epoch.store(
            super::super::POLICY_EPOCH.load(Ordering::Acquire),
            Ordering::Release,
        );
        s.registry.lock().unwrap().at = Some(Instant::now());
        *s.doors.lock().unwrap() = vec![b"$gen_call".to_vec()];
        s.rpc.lock().unwrap().push(super::super::RpcPattern {
            module: b"erlang".to_vec(),
            function: Some(b"node".to_vec()),
            arity: Some(0),
        });
        s
    }

    /// What the driver does with `packet` on a connection that has met no atoms yet.
    fn judge(packet: &[u8], s: &Shared, caps: &mut Caps) -> Option<Kind> {
        accepts(packet, s, caps, &mut KnownAtoms::default())
    }

    /// Shown by the local process `<1>` (the owner of the references).
    fn holding(items: &[Vec<u8>]) -> Caps {
        let mut caps = Caps::default();
        caps.show(
            &packet(tuple(&[small(22), pid(NODE, 1), pid(PEER, 5)]), list(items)),
            NODE,
            true,
        );
        caps
    }

    #[test]
    fn messages_to_held_processes_only() {
        let s = shared();
        let mut caps = holding(&[pid(NODE, 1), reference(NODE, 9)]);
        let msg = tuple(&[atom(b"msg"), small(1)]);
        let send = |from: Vec<u8>, to: Vec<u8>| packet(tuple(&[small(22), from, to]), msg.clone());
        let alias = packet(
            tuple(&[small(33), pid(PEER, 5), reference(NODE, 9)]),
            msg.clone(),
        );
        // Held, but not yet found plain by the filter (a server may have
        // registered since the registry was copied): nor its alias.
        assert_eq!(
            judge(&send(pid(PEER, 5), pid(NODE, 1)), &s, &mut caps),
            None
        );
        assert_eq!(judge(&alias, &s, &mut caps), None);
        caps.set_plain(caps::identifier(&pid(NODE, 1)).unwrap().1);
        assert_eq!(
            judge(&send(pid(PEER, 5), pid(NODE, 1)), &s, &mut caps),
            Some(Kind::Message)
        );
        assert_eq!(
            judge(&send(pid(PEER, 5), pid(NODE, 2)), &s, &mut caps),
            None
        );
        assert_eq!(
            judge(&send(pid(NODE, 5), pid(NODE, 1)), &s, &mut caps),
            None
        );
        assert_eq!(judge(&alias, &s, &mut caps), Some(Kind::Message));
        let door = packet(
            tuple(&[small(22), pid(PEER, 5), pid(NODE, 1)]),
            tuple(&[atom(b"$gen_call"), small(1)]),
        );
        assert_eq!(judge(&door, &s, &mut caps), None);
        let unknown_atom = packet(
            tuple(&[small(22), pid(PEER, 5), pid(NODE, 1)]),
            atom(b"never_seen_here"),
        );
        assert_eq!(judge(&unknown_atom, &s, &mut caps), None);
        s.registry.lock().unwrap().at = None;
        assert_eq!(
            judge(&send(pid(PEER, 5), pid(NODE, 1)), &s, &mut caps),
            None
        );
    }

    fn spawn(mfa: Vec<u8>, opts: Vec<u8>, args: Vec<u8>) -> Vec<u8> {
        packet(
            tuple(&[
                small(29),
                reference(PEER, 3),
                pid(PEER, 5),
                pid(PEER, 6),
                mfa,
                opts,
            ]),
            args,
        )
    }

    #[test]
    fn spawn_requests_of_allowed_functions_only() {
        let s = shared();
        let mut caps = Caps::default();
        let erpc = tuple(&[atom(b"erpc"), atom(b"execute_call"), small(4)]);
        let call = |m: &[u8], f: &[u8], args: Vec<Vec<u8>>| {
            list(&[reference(PEER, 4), atom(m), atom(f), list(&args)])
        };
        let monitor = list(&[atom(b"monitor")]);
        let ok = spawn(
            erpc.clone(),
            monitor.clone(),
            call(b"erlang", b"node", vec![]),
        );
        assert_eq!(judge(&ok, &s, &mut caps), Some(Kind::SpawnRequest));
        let refused = [
            spawn(erpc.clone(), monitor.clone(), call(b"os", b"cmd", vec![])),
            spawn(
                erpc.clone(),
                monitor.clone(),
                call(b"erlang", b"node", vec![small(1)]),
            ),
            spawn(
                erpc.clone(),
                list(&[atom(b"erlang")]),
                call(b"erlang", b"node", vec![]),
            ),
            spawn(
                tuple(&[atom(b"erpc"), atom(b"execute_call"), small(3)]),
                monitor.clone(),
                call(b"erlang", b"node", vec![]),
            ),
            spawn(
                tuple(&[atom(b"erlang"), atom(b"node"), small(0)]),
                monitor.clone(),
                list(&[small(1)]),
            ),
        ];
        for p in &refused {
            assert_eq!(judge(p, &s, &mut caps), None);
        }
        let direct = spawn(
            tuple(&[atom(b"erlang"), atom(b"node"), small(0)]),
            list(&[]),
            list(&[]),
        );
        assert_eq!(judge(&direct, &s, &mut caps), Some(Kind::SpawnRequest));
        // An atom this node is not known to have, wherever the control term
        // names one, sends the request to the filter.
        let unknown = b"nowhere@never_seen";
        let with_nodes = |request: &[u8], from: &[u8], leader: &[u8], mfa: Vec<u8>| {
            packet(
                tuple(&[
                    small(29),
                    reference(request, 3),
                    pid(from, 5),
                    pid(leader, 6),
                    mfa,
                    list(&[]),
                ]),
                list(&[]),
            )
        };
        let erlang_node = || tuple(&[atom(b"erlang"), atom(b"node"), small(0)]);
        for p in [
            with_nodes(unknown, PEER, PEER, erlang_node()),
            with_nodes(PEER, PEER, unknown, erlang_node()),
            with_nodes(
                PEER,
                PEER,
                PEER,
                tuple(&[atom(b"erlang"), atom(b"never_seen_fun"), small(0)]),
            ),
        ] {
            assert_eq!(judge(&p, &s, &mut caps), None);
        }
        let same = with_nodes(PEER, PEER, PEER, erlang_node());
        assert_eq!(judge(&same, &s, &mut caps), Some(Kind::SpawnRequest));
        // A Latin-1 encoding of the same bytes names another atom.
        let mut latin1 = direct.clone();
        let at = latin1
            .windows(6)
            .position(|w| w == [119, 6, b'e', b'r', b'l', b'a'])
            .unwrap();
        latin1[at] = 115;
        assert_eq!(judge(&latin1, &s, &mut caps), None);
    }
}
