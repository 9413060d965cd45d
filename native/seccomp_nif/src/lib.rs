//! `seccomp_nif`: the native half of beam_seccomp.
//!
//! It holds the table of restricted processes and answers checks. The Erlang
//! module `seccomp_nif` validates every argument first; the functions here still
//! refuse malformed terms with `badarg` rather than trusting their caller.

pub mod policy;
mod size;
pub mod table;
mod terms;

use std::sync::Arc;

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

#[rustler::nif]
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
#[rustler::nif]
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

#[rustler::nif]
fn policy_spec(env: Env, policy: ResourceArc<PolicyResource>) -> NifResult<Term> {
    terms::binary(env, &policy.compiled.source)
}

#[rustler::nif]
fn table_size() -> usize {
    TABLE.len()
}

#[rustler::nif]
fn spec_to_json<'a>(env: Env<'a>, spec: Term<'a>) -> NifResult<Term<'a>> {
    let spec = terms::decode_spec(spec)?;
    Ok(match terms::spec_to_json(env, &spec) {
        Ok(text) => (atoms::ok(), text).encode(env),
        Err(why) => (atoms::error(), why).encode(env),
    })
}

#[rustler::nif]
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
    if let Some(layers) = inherited {
        // This environment belongs to no process, so it cannot monitor: the
        // events server does it (`watch_pid/1`). Without it the entry stays
        // (fail closed) until the VM stops.
        if TABLE.adopt(pid_key(&child), &layers) == Added::NewEntry {
            if let Some(server) = env.whereis_pid(atoms::seccomp_events()) {
                let _ = env.send(&server, (atoms::seccomp_watch(), child));
            }
        }
    }
    atoms::ok()
}

/// Monitor a process that got its entry from a tracer callback.
#[rustler::nif]
fn watch_pid(env: Env, pid: LocalPid) -> Atom {
    watch(env, &pid, Added::NewEntry);
    atoms::ok()
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
