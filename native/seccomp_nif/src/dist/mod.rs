//! The distribution carrier's native half: per connection, what the peer
//! holds (`caps`), the rules the driver needs to deliver a message without
//! the filter (`fast`), and the TCP connection's port driver (`driver`).
//!
//! A connection's state is made by `dist_conn_new/2` (a resource the
//! connection's processes keep) and claimed once by the driver port that
//! carries it. Rules and the registry of named processes come from the
//! Erlang side: the driver delivers on its own only while they are current
//! (the rules of the policy epoch in force; a registry at most
//! `REGISTRY_TTL` old), else it asks the filter, which brings them up to date.

mod caps;
mod driver;
mod fast;
mod ffi;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use once_cell::sync::{Lazy, OnceCell};
use rustc_hash::FxBuildHasher;
use rustler::{Binary, Encoder, Env, LocalPid, NifResult, ResourceArc, Term};

use caps::{Caps, Key};

const REGISTRY_TTL: Duration = Duration::from_millis(100);
/// Rules that never match the policy epoch (the first packet asks the filter).
const NO_EPOCH: u64 = u64::MAX;

/// Bumped whenever the distribution policy changes.
static POLICY_EPOCH: AtomicU64 = AtomicU64::new(0);

/// Connection states made but not yet claimed by their driver port.
static UNCLAIMED: Lazy<Mutex<HashMap<u64, Arc<Shared>>>> = Lazy::new(Default::default);
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
struct Registry {
    named: HashSet<Key, FxBuildHasher>,
    at: Option<Instant>,
}

pub struct Shared {
    /// This node's name and the peer's, as atoms' UTF-8 text.
    node: Vec<u8>,
    /// Finds this node's name in bytes (whether a packet may name its pids).
    node_finder: memchr::memmem::Finder<'static>,
    peer: OnceCell<Vec<u8>>,
    caps: Mutex<Caps>,
    send_allowed: AtomicBool,
    max_bytes: AtomicU64,
    epoch: AtomicU64,
    registry: Mutex<Registry>,
    /// The rules' `rpc` list: module, and function and arity unless any.
    rpc: Mutex<Vec<RpcPattern>>,
    /// The atoms a door message starts with (the filter's list).
    doors: Mutex<Vec<Vec<u8>>>,
    /// Messages and spawn requests the driver delivered on its own, not yet
    /// counted in the stats.
    accepted: [AtomicU64; 2],
}

struct RpcPattern {
    module: Vec<u8>,
    function: Option<Vec<u8>>,
    arity: Option<usize>,
}

impl Shared {
    fn new(node: &[u8]) -> Shared {
        Shared {
            node: node.to_vec(),
            node_finder: memchr::memmem::Finder::new(node).into_owned(),
            peer: OnceCell::new(),
            caps: Mutex::new(Caps::default()),
            send_allowed: AtomicBool::new(false),
            max_bytes: AtomicU64::new(0),
            epoch: AtomicU64::new(NO_EPOCH),
            registry: Mutex::new(Registry::default()),
            rpc: Mutex::new(Vec::new()),
            doors: Mutex::new(Vec::new()),
            accepted: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn rules_current(&self) -> bool {
        self.epoch.load(Ordering::Acquire) == POLICY_EPOCH.load(Ordering::Acquire)
    }

    fn send_allowed(&self) -> bool {
        self.send_allowed.load(Ordering::Relaxed)
    }

    fn max_bytes(&self) -> u64 {
        self.max_bytes.load(Ordering::Relaxed)
    }

    fn rpc_allowed(&self, module: &[u8], function: &[u8], arity: usize) -> bool {
        self.rpc.lock().expect("rpc").iter().any(|p| {
            p.module == module
                && p.function.as_deref().is_none_or(|f| f == function)
                && p.arity.is_none_or(|a| a == arity)
        })
    }

    /// Whether `name` is one of the atoms a door message starts with.
    fn door(&self, name: &[u8]) -> bool {
        self.doors.lock().expect("doors").iter().any(|d| d == name)
    }

    /// Whether a fresh registry says the pid `key` is not a named process.
    fn unregistered(&self, key: &Key) -> bool {
        let registry = self.registry.lock().expect("registry");
        matches!(registry.at, Some(at) if at.elapsed() < REGISTRY_TTL)
            && !registry.named.contains(key)
    }
}

/// The state the driver port for connection `id` carries.
fn claim(id: u64) -> Option<Arc<Shared>> {
    UNCLAIMED.lock().ok()?.remove(&id)
}

pub struct ConnResource {
    id: u64,
    shared: Arc<Shared>,
}

impl Drop for ConnResource {
    fn drop(&mut self) {
        if let Ok(mut unclaimed) = UNCLAIMED.lock() {
            unclaimed.remove(&self.id);
        }
    }
}

#[rustler::resource_impl]
impl rustler::Resource for ConnResource {}

type Conn = ResourceArc<ConnResource>;

mod atoms {
    rustler::atoms! { ok, undefined, any = "_" }
}

/// `dist_conn_new(NodeName)`: `{Conn, Id}`, a connection's state and the
/// number its driver port claims it by.
#[rustler::nif]
fn dist_conn_new<'a>(env: Env<'a>, node: Binary<'a>) -> Term<'a> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let shared = Arc::new(Shared::new(node.as_slice()));
    if let Ok(mut unclaimed) = UNCLAIMED.lock() {
        unclaimed.insert(id, shared.clone());
    }
    (ResourceArc::new(ConnResource { id, shared }), id).encode(env)
}

/// `dist_conn_peer(Conn, PeerName)`: the node the connection leads to, once
/// the handshake knows it (messages from it are delivered on their own only
/// from then on).
#[rustler::nif]
fn dist_conn_peer(conn: Conn, peer: Binary) -> bool {
    let set = conn.shared.peer.set(peer.as_slice().to_vec()).is_ok();
    if set {
        conn.shared
            .caps
            .lock()
            .expect("caps")
            .set_peer(peer.as_slice());
    }
    set
}

/// `dist_caps_show(Conn, Packet)`: record what an outgoing packet shows the
/// peer (a connection without the driver sends its packets itself).
#[rustler::nif]
fn dist_caps_show(env: Env, conn: Conn, packet: Binary) -> rustler::Atom {
    let shared = &conn.shared;
    let mut caps = shared.caps.lock().expect("caps");
    if caps.show(packet.as_slice(), &shared.node, true) {
        rotate(env, shared, &mut caps);
    }
    atoms::ok()
}

/// `dist_caps_named(Conn, Packet)`: note the local pids and references an
/// incoming packet names that the peer was not shown (a connection without
/// the driver reads its packets itself); false when the peer has named more
/// than its share.
#[rustler::nif]
fn dist_caps_named(conn: Conn, packet: Binary) -> bool {
    let shared = &conn.shared;
    let mut caps = shared.caps.lock().expect("caps");
    caps.named_by_peer(packet.as_slice(), &shared.node, &shared.node_finder)
}

/// `dist_caps_rotate(Conn)`: start a new generation of shown items (the
/// driver asks with `{Port, caps_full}`).
#[rustler::nif]
fn dist_caps_rotate(env: Env, conn: Conn) -> rustler::Atom {
    let shared = &conn.shared;
    let mut caps = shared.caps.lock().expect("caps");
    rotate(env, shared, &mut caps);
    atoms::ok()
}

fn rotate(env: Env, shared: &Shared, caps: &mut Caps) {
    caps.rotate(|key| {
        caps::pid_term_bytes(key, &shared.node)
            .and_then(|bytes| env.binary_to_term(&bytes))
            .and_then(|(term, _)| term.decode::<LocalPid>().ok())
            .is_some_and(|pid| env.is_process_alive(pid))
    });
}

fn local_key(conn: &Conn, term: Term) -> Option<Key> {
    caps::local_key(term.to_binary().as_slice(), &conn.shared.node)
}

/// `dist_caps_holds(Conn, PidOrRef)`: whether the peer was shown it.
#[rustler::nif]
fn dist_caps_holds(conn: Conn, item: Term) -> bool {
    local_key(&conn, item).is_some_and(|k| conn.shared.caps.lock().expect("caps").holds(&k))
}

/// `dist_caps_monitor_fired(Conn, Ref, From)`: whether `Ref` names a monitor
/// a local process set up on the peer whose exit may name `From` (a pid or
/// a name) as the process that went, which now counts as fired.
#[rustler::nif]
fn dist_caps_monitor_fired(conn: Conn, reference: Term, from: Term) -> bool {
    let from = match from.to_binary().as_slice().split_first() {
        Some((131, term)) => caps::Watched::named(term),
        _ => None,
    };
    from.is_some_and(|from| {
        local_key(&conn, reference).is_some_and(|k| {
            conn.shared
                .caps
                .lock()
                .expect("caps")
                .monitor_fired(&k, &from)
        })
    })
}

/// `dist_caps_forget_monitor(Conn, Ref)`: the monitor `Ref` will never fire.
#[rustler::nif]
fn dist_caps_forget_monitor(conn: Conn, reference: Term) -> rustler::Atom {
    if let Some(key) = local_key(&conn, reference) {
        conn.shared.caps.lock().expect("caps").forget_monitor(&key);
    }
    atoms::ok()
}

/// `dist_caps_owner(Conn, Ref)`: the local process that sent the shown
/// reference `Ref` (the owner of an alias), or `undefined`.
#[rustler::nif]
fn dist_caps_owner<'a>(env: Env<'a>, conn: Conn, reference: Term<'a>) -> Term<'a> {
    let shared = &conn.shared;
    local_key(&conn, reference)
        .and_then(|k| shared.caps.lock().expect("caps").owner(&k))
        .and_then(|owner| caps::pid_term_bytes(&owner, &shared.node))
        .and_then(|bytes| env.binary_to_term(&bytes))
        .map_or_else(|| atoms::undefined().encode(env), |(pid, _)| pid)
}

/// `dist_caps_found_plain(Conn, Pid)`: the filter found `Pid` neither named
/// nor the runtime's or OTP's own; messages to it and its aliases may be
/// delivered by the driver until the next generation.
#[rustler::nif]
fn dist_caps_found_plain(conn: Conn, pid: Term) -> rustler::Atom {
    if let Some(key) = local_key(&conn, pid) {
        conn.shared.caps.lock().expect("caps").set_plain(key);
    }
    atoms::ok()
}

/// `dist_caps_is_plain(Conn, Pid)`: whether the filter found `Pid` plain
/// in this generation.
#[rustler::nif]
fn dist_caps_is_plain(conn: Conn, pid: Term) -> bool {
    local_key(&conn, pid).is_some_and(|k| conn.shared.caps.lock().expect("caps").is_plain(&k))
}

/// `dist_policy_changed()`: the rules every driver holds are out of date.
#[rustler::nif]
fn dist_policy_changed() -> u64 {
    POLICY_EPOCH.fetch_add(1, Ordering::AcqRel) + 1
}

/// `dist_conn_stale(Conn)`: `{Epoch, RulesStale, RegistryStale, Messages,
/// SpawnRequests}`: the policy epoch now, whether the driver's rules or
/// registry need to be given again, and what it delivered since the last call.
#[rustler::nif]
fn dist_conn_stale(env: Env, conn: Conn) -> Term {
    let shared = &conn.shared;
    let epoch = POLICY_EPOCH.load(Ordering::Acquire);
    let registry_stale = !matches!(shared.registry.lock().expect("registry").at,
                                   Some(at) if at.elapsed() < REGISTRY_TTL / 2);
    let [messages, spawns] = &shared.accepted;
    let rules_stale = shared.epoch.load(Ordering::Acquire) != epoch;
    let delivered = (
        messages.swap(0, Ordering::Relaxed),
        spawns.swap(0, Ordering::Relaxed),
    );
    (epoch, rules_stale, registry_stale, delivered.0, delivered.1).encode(env)
}

/// `dist_conn_rules(Conn, Epoch, {SendAllowed, MaxMessageBytes, Rpc, Doors})`:
/// `Rpc` as the rules have it (modules, and `{M, F, A}` with `'_'` for any),
/// `Doors` the names of the atoms door messages start with.
#[rustler::nif]
fn dist_conn_rules(
    conn: Conn,
    epoch: u64,
    rules: (bool, u64, Vec<Term>, Vec<Binary>),
) -> rustler::Atom {
    let (send, max_bytes, rpc, doors) = rules;
    let patterns = rpc.into_iter().filter_map(rpc_pattern).collect();
    let shared = &conn.shared;
    *shared.rpc.lock().expect("rpc") = patterns;
    *shared.doors.lock().expect("doors") = doors.iter().map(|d| d.as_slice().to_vec()).collect();
    shared.send_allowed.store(send, Ordering::Relaxed);
    shared.max_bytes.store(max_bytes, Ordering::Relaxed);
    shared.epoch.store(epoch, Ordering::Release);
    atoms::ok()
}

/// A pattern the driver can match, or `None` (an arity no function has):
/// the filter judges what it would have matched.
fn rpc_pattern(term: Term) -> Option<RpcPattern> {
    let name = |t: Term| t.atom_to_string().ok().map(String::into_bytes);
    let any = |t: Term| t.decode::<rustler::Atom>().ok() == Some(atoms::any());
    if term.is_atom() {
        return Some(RpcPattern {
            module: name(term)?,
            function: None,
            arity: None,
        });
    }
    let (m, f, a): (Term, Term, Term) = term.decode().ok()?;
    Some(RpcPattern {
        module: name(m)?,
        function: if any(f) { None } else { Some(name(f)?) },
        arity: if any(a) { None } else { Some(a.decode().ok()?) },
    })
}

/// `dist_conn_registry(Conn, NamedPids)`: the local processes the filter
/// judges by name, as of now.
#[rustler::nif]
fn dist_conn_registry(conn: Conn, named: Vec<Term>) -> NifResult<rustler::Atom> {
    let keys = named
        .into_iter()
        .filter_map(|p| local_key(&conn, p))
        .collect();
    let mut registry = conn.shared.registry.lock().expect("registry");
    registry.named = keys;
    registry.at = Some(Instant::now());
    Ok(atoms::ok())
}

/// The driver's entry, for `erl_ddll` (the library is the NIF's too).
#[no_mangle]
pub extern "C" fn driver_init() -> *mut ffi::ErlDrvEntry {
    driver::entry()
}
