//! `seccomp_nif`: the native half of beam_seccomp.
//!
//! It holds the table of restricted processes and answers checks. The Erlang
//! module `seccomp_nif` validates every argument first; the functions here still
//! refuse malformed terms with `badarg` rather than trusting their caller.

mod dist;
mod etf;
pub mod policy;
mod size;
pub mod table;
mod terms;

use std::sync::{Arc, Mutex};

use once_cell::sync::{Lazy, OnceCell};
use rustler::{
    Atom, Binary, Encoder, Env, LocalPid, Monitor, NifResult, Resource, ResourceArc, Term,
};

use policy::{Action, Compiled};
use table::{Added, Layers, Table};
use terms::{atoms, pid_key, Broker, Key};

type Policy = Compiled<Key, Broker>;

static TABLE: Lazy<Table<Key, Broker>> = Lazy::new(Table::default);
/// One resource watches every restricted process: its `down` drops the entry.
/// Created on first use: a resource allocated inside `load` gets no monitor
/// support, because the VM commits the type's callbacks only after `load` returns.
static WATCHER: OnceCell<ResourceArc<Watcher>> = OnceCell::new();
/// Calls no restricted process may make, whatever its own layers say.
static GUARD: OnceCell<Policy> = OnceCell::new();
/// Entries made by the tracer callback, which runs where no monitor can be
/// set: the next call from a process (any restrict, adopt or `watch_pending`)
/// monitors them, or forgets those already gone, so none outlives its process.
static UNWATCHED: Mutex<Vec<u64>> = Mutex::new(Vec::new());
/// Unrestricted processes (supervisors) that are starting a restricted child:
/// whatever they spawn meanwhile adopts these layers (see `arm`).
static ARMED: Lazy<dashmap::DashMap<u64, Arc<Layers<Key, Broker>>>> = Lazy::new(Default::default);

/// A compiled policy, shared by every process that carries it. Its `source` is
/// the validated policy as the Erlang side wrote it (external term format).
pub struct PolicyResource {
    compiled: Arc<Policy>,
}

#[rustler::resource_impl]
impl Resource for PolicyResource {}

/// The layers a parent hands to a child it spawns.
pub struct Ticket {
    layers: Arc<Layers<Key, Broker>>,
}

#[rustler::resource_impl]
impl Resource for Ticket {}

pub struct Watcher;

#[rustler::resource_impl]
impl Resource for Watcher {
    const IMPLEMENTS_DOWN: bool = true;

    fn down<'a>(&'a self, _env: Env<'a>, pid: LocalPid, _monitor: Monitor) {
        TABLE.forget(pid_key(&pid));
    }
}

/// Start watching a process that just got its first entry; forget it at once if it is already dead.
fn watch(env: Env, pid: &LocalPid, added: Added) -> bool {
    watch_unwatched(env);
    if added == Added::Stacked {
        return true;
    }
    let watcher = WATCHER.get_or_init(|| ResourceArc::new(Watcher));
    if env.monitor(watcher, pid).is_none() {
        TABLE.forget(pid_key(pid));
        return false;
    }
    true
}

/// Encode a table decision; restricted processes also face the guard.
fn verdict<'a>(
    env: Env<'a>,
    action: Option<Action<Broker>>,
    m: Key,
    f: Key,
    arity: u32,
) -> Term<'a> {
    let Some(action) = action else {
        return atoms::allow().encode(env);
    };
    let guard = GUARD.get().expect("guard is set at load");
    terms::encode_verdict(env, action.strictest(guard.decide(m, f, arity)))
}

#[rustler::nif]
fn noop() -> Atom {
    atoms::ok()
}

// Work proportional to a policy's size (up to a million rules) runs on dirty
// schedulers, so a large policy never blocks a normal scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn compile<'a>(env: Env<'a>, spec: Term<'a>, spec_etf: Binary<'a>) -> NifResult<Term<'a>> {
    let compiled = terms::compile_spec(spec, spec_etf.as_slice().to_vec())?;
    let resource = PolicyResource {
        compiled: Arc::new(compiled),
    };
    Ok((atoms::ok(), ResourceArc::new(resource)).encode(env))
}

#[rustler::nif]
fn restrict_self(env: Env, policy: ResourceArc<PolicyResource>) -> Atom {
    let me = env.pid();
    let added = TABLE.add_layers(pid_key(&me), std::slice::from_ref(&policy.compiled));
    watch(env, &me, added);
    atoms::ok()
}

#[rustler::nif]
fn restrict<'a>(env: Env<'a>, pid: LocalPid, policy: ResourceArc<PolicyResource>) -> Term<'a> {
    if TABLE.is_restricted(pid_key(&env.pid())) {
        return (atoms::error(), atoms::not_permitted()).encode(env);
    }
    if !env.is_process_alive(pid) {
        return (atoms::error(), atoms::noproc()).encode(env);
    }
    let added = TABLE.add_layers(pid_key(&pid), std::slice::from_ref(&policy.compiled));
    if watch(env, &pid, added) {
        atoms::ok().encode(env)
    } else {
        (atoms::error(), atoms::noproc()).encode(env)
    }
}

/// The decoded `{M, F, Arity}` of a check, or `badarg`.
#[inline]
fn mfa(m: Term, f: Term, arity: Term) -> NifResult<(Key, Key, u32)> {
    match (terms::atom_key(m), terms::atom_key(f), terms::arity(arity)) {
        (Some(m), Some(f), Some(a)) => Ok((m, f, a)),
        _ => Err(rustler::Error::BadArg),
    }
}

#[rustler::nif]
fn check<'a>(env: Env<'a>, m: Term<'a>, f: Term<'a>, arity: Term<'a>) -> NifResult<Term<'a>> {
    let (m, f, a) = mfa(m, f, arity)?;
    Ok(verdict(
        env,
        TABLE.check(pid_key(&env.pid()), m, f, a),
        m,
        f,
        a,
    ))
}

/// The guard alone: for a restricted caller, what no layer may allow.
#[rustler::nif]
fn check_guard<'a>(env: Env<'a>, m: Term<'a>, f: Term<'a>, arity: Term<'a>) -> NifResult<Term<'a>> {
    let (m, f, a) = mfa(m, f, arity)?;
    let restricted = TABLE.is_restricted(pid_key(&env.pid()));
    Ok(verdict(env, restricted.then_some(Action::Allow), m, f, a))
}

/// A check against a given policy and the caller's own layers together: the
/// caller-mode runs of prepared code, which stay in an unrestricted process.
#[rustler::nif]
fn check_with<'a>(
    env: Env<'a>,
    policy: ResourceArc<PolicyResource>,
    m: Term<'a>,
    f: Term<'a>,
    arity: Term<'a>,
) -> NifResult<Term<'a>> {
    let (m, f, a) = mfa(m, f, arity)?;
    let given = policy.compiled.decide(m, f, a);
    let action = match TABLE.check(pid_key(&env.pid()), m, f, a) {
        Some(own) => own.strictest(given).clone(),
        None => given.clone(),
    };
    Ok(verdict(env, Some(action), m, f, a))
}

#[rustler::nif]
fn check_pid<'a>(
    env: Env<'a>,
    pid: LocalPid,
    m: Term<'a>,
    f: Term<'a>,
    arity: Term<'a>,
) -> NifResult<Term<'a>> {
    let (m, f, a) = mfa(m, f, arity)?;
    Ok(verdict(env, TABLE.check(pid_key(&pid), m, f, a), m, f, a))
}

/// `none` for an unrestricted caller, else `{Verdict, Ticket | none}`: whether
/// the caller may spawn, and the layers its child must adopt.
#[rustler::nif]
fn spawn_ticket(env: Env) -> Term {
    let key = pid_key(&env.pid());
    let found = TABLE.with_entry(key, |e| {
        (e.layers.spawn_denial().cloned(), e.layers.inherited())
    });
    let Some((denial, inherited)) = found else {
        return atoms::none().encode(env);
    };
    let verdict = match denial {
        Some(action) => {
            TABLE.count_denial(key);
            terms::encode_verdict(env, &action)
        }
        None => atoms::allow().encode(env),
    };
    let ticket = match inherited {
        Some(layers) => ResourceArc::new(Ticket { layers }).encode(env),
        None => atoms::none().encode(env),
    };
    (verdict, ticket).encode(env)
}

/// Give another process a ticket's layers; only an unrestricted caller may
/// (a supervisor restricting the child it just started for a restricted caller).
#[rustler::nif]
fn adopt_pid<'a>(env: Env<'a>, pid: LocalPid, ticket: ResourceArc<Ticket>) -> Term<'a> {
    if TABLE.is_restricted(pid_key(&env.pid())) {
        return (atoms::error(), atoms::not_permitted()).encode(env);
    }
    let added = TABLE.adopt(pid_key(&pid), &ticket.layers);
    if watch(env, &pid, added) {
        atoms::ok().encode(env)
    } else {
        (atoms::error(), atoms::noproc()).encode(env)
    }
}

/// A ticket holding exactly one policy, for restricting a child by spec.
#[rustler::nif]
fn policy_ticket(policy: ResourceArc<PolicyResource>) -> ResourceArc<Ticket> {
    let layers = Arc::new(Layers {
        policies: vec![Arc::clone(&policy.compiled)],
    });
    ResourceArc::new(Ticket { layers })
}

#[rustler::nif]
fn adopt(env: Env, ticket: ResourceArc<Ticket>) -> Atom {
    let me = env.pid();
    let added = TABLE.adopt(pid_key(&me), &ticket.layers);
    watch(env, &me, added);
    atoms::ok()
}

/// `undefined` for an unrestricted process, else `{Layers, Checks, Denials}`.
#[rustler::nif(schedule = "DirtyCpu")]
fn status(env: Env, pid: LocalPid) -> Term {
    use std::sync::atomic::Ordering::Relaxed;
    let found = TABLE.with_entry(pid_key(&pid), |e| {
        (
            Arc::clone(&e.layers),
            e.checks.load(Relaxed),
            e.denials.load(Relaxed),
        )
    });
    match found {
        None => atoms::undefined().encode(env),
        Some((layers, checks, denials)) => {
            let specs: NifResult<Vec<Term>> = layers
                .policies
                .iter()
                .map(|p| terms::binary(env, &p.source))
                .collect();
            let Ok(specs) = specs else {
                return atoms::error().encode(env);
            };
            (specs, checks, denials).encode(env)
        }
    }
}

#[rustler::nif(schedule = "DirtyCpu")]
fn policy_spec(env: Env, policy: ResourceArc<PolicyResource>) -> NifResult<Term> {
    terms::binary(env, &policy.compiled.source)
}

#[rustler::nif]
fn table_size() -> usize {
    TABLE.len()
}

/// Whether a process carries layers, without copying them out (see `status`).
#[rustler::nif]
fn is_restricted(pid: LocalPid) -> bool {
    TABLE.is_restricted(pid_key(&pid))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn spec_to_json<'a>(env: Env<'a>, spec: Term<'a>) -> NifResult<Term<'a>> {
    let spec = terms::decode_spec(spec)?;
    Ok(match terms::spec_to_json(env, &spec) {
        Ok(text) => (atoms::ok(), text).encode(env),
        Err(why) => (atoms::error(), why).encode(env),
    })
}

#[rustler::nif(schedule = "DirtyCpu")]
fn spec_from_json<'a>(env: Env<'a>, text: Binary<'a>) -> Term<'a> {
    match terms::spec_from_json(env, text.as_slice()) {
        Ok(spec) => (atoms::ok(), spec).encode(env),
        Err(why) => (atoms::error(), (atoms::invalid_json(), why)).encode(env),
    }
}

/// Tracer-module callback (erl_tracer): only spawn events of traced processes
/// are of interest; everything else is discarded before it is built.
#[rustler::nif]
fn enabled(tag: Atom, _state: Term, _tracee: Term) -> Atom {
    if tag == atoms::spawn() || tag == atoms::trace_status() {
        atoms::trace()
    } else {
        atoms::discard()
    }
}

/// Tracer-module callback, run in the parent while it spawns: the child gets
/// the parent's inheritable layers before spawn returns to the parent.
#[rustler::nif]
fn trace(env: Env, tag: Atom, _state: Term, tracee: Term, child: Term, _opts: Term) -> Atom {
    if tag != atoms::spawn() {
        return atoms::ok();
    }
    let (Ok(parent), Ok(child)) = (tracee.decode::<LocalPid>(), child.decode::<LocalPid>()) else {
        return atoms::ok();
    };
    let inherited = TABLE
        .with_entry(pid_key(&parent), |e| e.layers.inherited())
        .flatten();
    let armed = ARMED.get(&pid_key(&parent)).map(|l| Arc::clone(&l));
    let inherited = match (inherited, armed) {
        (Some(own), Some(armed)) => Some(own.stacked(&armed.policies)),
        (own, armed) => own.or(armed),
    };
    if let Some(layers) = inherited {
        // This environment cannot monitor: the key waits in UNWATCHED and the
        // events server is asked to drain it now (any later call would too).
        if TABLE.adopt(pid_key(&child), &layers) == Added::NewEntry {
            // One request drains all waiting keys: ask only for the first.
            let first = UNWATCHED.lock().is_ok_and(|mut keys| {
                keys.push(pid_key(&child));
                keys.len() == 1
            });
            if first {
                if let Some(server) = env.whereis_pid(atoms::seccomp_events()) {
                    let _ = env.send(&server, atoms::seccomp_watch());
                }
            }
        }
    }
    atoms::ok()
}

/// Until `disarm`, every process the (traced) caller spawns adopts the
/// ticket's layers, on top of any it inherits, through the tracer callback
/// before it runs. Arming again stacks. It only ever adds restrictions to
/// children, so any caller may.
#[rustler::nif]
fn arm(env: Env, ticket: ResourceArc<Ticket>) -> Atom {
    let me = pid_key(&env.pid());
    let layers = match ARMED.get(&me).map(|l| Arc::clone(&l)) {
        Some(armed) => armed.stacked(&ticket.layers.policies),
        None => Arc::clone(&ticket.layers),
    };
    ARMED.insert(me, layers);
    atoms::ok()
}

#[rustler::nif]
fn disarm(env: Env) -> Atom {
    ARMED.remove(&pid_key(&env.pid()));
    atoms::ok()
}

/// Monitor the processes whose entries tracer callbacks made since the last call.
#[rustler::nif]
fn watch_pending(env: Env) -> Atom {
    watch_unwatched(env);
    atoms::ok()
}

fn watch_unwatched(env: Env) {
    let pending = match UNWATCHED.lock() {
        Ok(mut keys) if !keys.is_empty() => std::mem::take(&mut *keys),
        _ => return,
    };
    let watcher = WATCHER.get_or_init(|| ResourceArc::new(Watcher));
    for key in pending {
        let pid = terms::local_pid(key);
        if env.monitor(watcher, &pid).is_none() {
            TABLE.forget(key);
        }
    }
}

/// `load_info` is the guard spec: what no restricted process may call.
fn load(_env: Env, load_info: Term) -> bool {
    let Ok(guard) = terms::compile_spec(load_info, Vec::new()) else {
        return false;
    };
    let _ = GUARD.set(guard);
    true
}

rustler::init!("seccomp_nif", load = load);
