//! Conversions between Erlang terms and the policy types.
//!
//! The wire shape of a spec, produced by `seccomp_policy:to_native/1`, is
//! `{Mode, NoSpawn, Inherit, DefaultAction, [{M, F | '_', A | '_', Action | default}]}`
//! with `Action :: allow | log | error | kill | {trap, pid() | atom()}`.

use std::fmt;

use rustler::{Atom, Encoder, Env, Error, LocalPid, NifResult, OwnedBinary, Term};

use crate::policy::{Action, Compiled, Mode, Rule, Spec};

pub mod atoms {
    rustler::atoms! {
        ok, error, allow, deny, log, trap, kill, none, undefined, default,
        whitelist, blacklist, not_permitted, noproc, invalid_json,
        unserialisable_broker, spawn, trace_status, discard, trace,
        seccomp_events, seccomp_watch,
        wildcard = "_",
    }
}

/// An atom, hashed by its term word (stable for the life of the VM).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Key(usize);

impl Key {
    #[inline]
    pub fn of(atom: Atom) -> Key {
        Key(atom.as_c_arg())
    }
}

/// The key of an atom term, or `None` for any other term. Checks run on
/// every mediated call, so the common case reads the tag bits of the term
/// word (an immediate atom is tagged `0b00_1011` on every 64- and 32-bit
/// BEAM) and only other words ask the VM.
#[inline]
pub fn atom_key(term: Term) -> Option<Key> {
    const ATOM_TAG_MASK: usize = 0x3F;
    const ATOM_TAG: usize = 0x0B;
    let word = term.as_c_arg();
    if word & ATOM_TAG_MASK == ATOM_TAG || term.is_atom() {
        Some(Key(word))
    } else {
        None
    }
}

/// An arity: a small non-negative integer below 256.
#[inline]
pub fn arity(term: Term) -> Option<u32> {
    const SMALL_TAG_MASK: usize = 0xF;
    const SMALL_TAG: usize = 0xF;
    let word = term.as_c_arg();
    if word & SMALL_TAG_MASK == SMALL_TAG {
        let value = (word as isize) >> 4;
        (0..256).contains(&value).then_some(value as u32)
    } else {
        None
    }
}

/// A local pid's identity: its term word.
#[inline]
pub fn pid_key(pid: &LocalPid) -> u64 {
    // `ErlNifPid` is `#[repr(C)]` around a single term word.
    const _: () =
        assert!(std::mem::size_of::<rustler::sys::ErlNifPid>() == std::mem::size_of::<usize>());
    let word = unsafe { *(pid.as_c_arg() as *const rustler::sys::ErlNifPid as *const usize) };
    word as u64
}

/// The local pid whose key is `key` (the inverse of `pid_key`).
pub fn local_pid(key: u64) -> LocalPid {
    const _: () = assert!(std::mem::size_of::<LocalPid>() == std::mem::size_of::<usize>());
    // SAFETY: `LocalPid` is `ErlNifPid`, a `#[repr(C)]` single term word (see
    // `pid_key`); a stale key only names a dead process, which monitoring reports.
    unsafe { std::mem::transmute::<usize, LocalPid>(key as usize) }
}

/// Who answers a `trap`: a pid, or a registered name (the only form a file can hold).
#[derive(Clone, Copy)]
pub enum Broker {
    Pid(LocalPid),
    Name(Atom),
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Broker::Pid(p) => write!(f, "Pid({})", pid_key(p)),
            Broker::Name(a) => write!(f, "Name({:?})", a),
        }
    }
}

impl Encoder for Broker {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self {
            Broker::Pid(p) => p.encode(env),
            Broker::Name(a) => a.encode(env),
        }
    }
}

fn decode_action(t: Term) -> NifResult<Action<Broker>> {
    if let Ok(a) = t.decode::<Atom>() {
        return match a {
            a if a == atoms::allow() => Ok(Action::Allow),
            a if a == atoms::log() => Ok(Action::Log),
            a if a == atoms::error() => Ok(Action::Error),
            a if a == atoms::kill() => Ok(Action::Kill),
            _ => Err(Error::BadArg),
        };
    }
    let (tag, broker): (Atom, Term) = t.decode()?;
    if tag != atoms::trap() {
        return Err(Error::BadArg);
    }
    let broker = match broker.decode::<LocalPid>() {
        Ok(pid) => Broker::Pid(pid),
        Err(_) => Broker::Name(broker.decode()?),
    };
    Ok(Action::Trap(broker))
}

fn encode_action<'a>(env: Env<'a>, action: &Action<Broker>) -> Term<'a> {
    match action {
        Action::Allow => atoms::allow().encode(env),
        Action::Log => atoms::log().encode(env),
        Action::Error => atoms::error().encode(env),
        Action::Kill => atoms::kill().encode(env),
        Action::Trap(b) => (atoms::trap(), b).encode(env),
    }
}

/// `allow` or `{deny, Action}`.
pub fn encode_verdict<'a>(env: Env<'a>, action: &Action<Broker>) -> Term<'a> {
    match action {
        Action::Allow => atoms::allow().encode(env),
        other => (atoms::deny(), encode_action(env, other)).encode(env),
    }
}

fn wildcard_or<'a, T: rustler::Decoder<'a>>(t: Term<'a>) -> NifResult<Option<T>> {
    if t.decode::<Atom>().ok() == Some(atoms::wildcard()) {
        Ok(None)
    } else {
        t.decode().map(Some)
    }
}

pub fn decode_spec(t: Term) -> NifResult<Spec<Atom, Broker>> {
    let (mode, no_spawn, inherit, default_action, rules): (Atom, bool, bool, Term, Term) =
        t.decode()?;
    // An improper list is `badarg`: rustler's list decoding would panic on it.
    rules.list_length()?;
    let rules: Vec<Term> = rules.decode()?;
    let mode = match mode {
        m if m == atoms::whitelist() => Mode::Whitelist,
        m if m == atoms::blacklist() => Mode::Blacklist,
        _ => return Err(Error::BadArg),
    };
    let rules = rules
        .into_iter()
        .map(|r| {
            let (module, function, arity, action): (Atom, Term, Term, Term) = r.decode()?;
            let action = if action.decode::<Atom>().ok() == Some(atoms::default()) {
                None
            } else {
                Some(decode_action(action)?)
            };
            Ok(Rule {
                module,
                function: wildcard_or(function)?,
                arity: wildcard_or(arity)?,
                action,
            })
        })
        .collect::<NifResult<Vec<_>>>()?;
    Ok(Spec {
        mode,
        no_spawn,
        inherit,
        default_action: decode_action(default_action)?,
        rules,
    })
}

fn encode_spec<'a>(env: Env<'a>, spec: &Spec<Atom, Broker>) -> Term<'a> {
    let wildcard = atoms::wildcard().encode(env);
    let rules: Vec<Term> = spec
        .rules
        .iter()
        .map(|r| {
            let function = r.function.map_or(wildcard, |f| f.encode(env));
            let arity = r.arity.map_or(wildcard, |a| a.encode(env));
            let action = r
                .action
                .as_ref()
                .map_or(atoms::default().encode(env), |a| encode_action(env, a));
            (r.module, function, arity, action).encode(env)
        })
        .collect();
    let mode = match spec.mode {
        Mode::Whitelist => atoms::whitelist(),
        Mode::Blacklist => atoms::blacklist(),
    };
    (
        mode,
        spec.no_spawn,
        spec.inherit,
        encode_action(env, &spec.default_action),
        rules,
    )
        .encode(env)
}

pub fn compile_spec(t: Term, source: Vec<u8>) -> NifResult<Compiled<Key, Broker>> {
    let spec = decode_spec(t)?;
    let keyed = spec.try_map(|a| Ok::<_, Error>(Key::of(*a)), |b| Ok(*b))?;
    Ok(Compiled::new(&keyed, source))
}

pub fn binary<'a>(env: Env<'a>, bytes: &[u8]) -> NifResult<Term<'a>> {
    let mut bin = OwnedBinary::new(bytes.len()).ok_or(Error::BadArg)?;
    bin.as_mut_slice().copy_from_slice(bytes);
    Ok(bin.release(env).encode(env))
}

/// The spec as JSON text; a trap broker given as a pid has no written form.
pub fn spec_to_json<'a>(env: Env<'a>, spec: &Spec<Atom, Broker>) -> Result<String, Term<'a>> {
    let name = |a: &Atom| {
        a.to_term(env)
            .atom_to_string()
            .map_err(|_| atoms::error().encode(env))
    };
    let text = spec.try_map(name, |b| match b {
        Broker::Name(a) => name(a),
        Broker::Pid(p) => Err((atoms::unserialisable_broker(), *p).encode(env)),
    })?;
    serde_json::to_string_pretty(&text).map_err(|e| e.to_string().encode(env))
}

/// How many atoms one JSON policy may add to the VM's atom table: names that
/// do not exist yet (a blacklist may name a module not loaded yet) are
/// counted before any is created.
pub const MAX_NEW_ATOMS: usize = 10_000;
/// The longest atom the VM accepts, in characters.
const MAX_ATOM_CHARS: usize = 255;
/// The largest rule list a policy may have (as `seccomp_policy`).
const MAX_RULES: usize = 1_000_000;

pub fn spec_from_json<'a>(env: Env<'a>, text: &[u8]) -> Result<Term<'a>, String> {
    let parsed: Spec<String, String> = serde_json::from_slice(text).map_err(|e| e.to_string())?;
    if parsed.rules.len() > MAX_RULES {
        return Err(format!("more than {MAX_RULES} rules"));
    }
    // What the Erlang side would refuse is refused here, before any atom exists.
    if matches!(parsed.default_action, crate::policy::Action::Allow) {
        return Err("default_action must not be allow".to_owned());
    }
    // Every name the spec holds (modules, functions, brokers), checked before any is created.
    let names = std::cell::RefCell::new(Vec::new());
    let collect = |s: &String| {
        names.borrow_mut().push(s.clone());
        Ok::<_, ()>(())
    };
    let _ = parsed.try_map(collect, collect);
    let mut unknown = std::collections::HashSet::new();
    for name in names.into_inner() {
        count_new_atom(env, &name, &mut unknown)?;
    }
    reserve_new_atoms(unknown.len())?;
    let atom = |s: &String| Atom::from_str(env, s).map_err(|_| format!("not an atom: {s:?}"));
    let spec = parsed.try_map(atom, |b| atom(b).map(Broker::Name))?;
    Ok(encode_spec(env, &spec))
}

/// How many atoms all JSON policies together may add over the VM's life:
/// each call is bounded, and so is their sum (the atom table never shrinks).
pub const MAX_NEW_ATOMS_TOTAL: usize = 100_000;
static NEW_ATOMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn reserve_new_atoms(n: usize) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    NEW_ATOMS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |used| {
            used.checked_add(n).filter(|&t| t <= MAX_NEW_ATOMS_TOTAL)
        })
        .map(|_| ())
        .map_err(|_| format!("JSON policies may add at most {MAX_NEW_ATOMS_TOTAL} atoms in all"))
}

/// Refuse a name no atom can hold, and count it when it would be a new atom.
fn count_new_atom(
    env: Env,
    name: &str,
    unknown: &mut std::collections::HashSet<String>,
) -> Result<(), String> {
    if name.chars().count() > MAX_ATOM_CHARS {
        return Err(format!("name longer than {MAX_ATOM_CHARS} characters"));
    }
    let exists = matches!(Atom::try_from_bytes(env, name.as_bytes()), Ok(Some(_)));
    if !exists && unknown.insert(name.to_owned()) && unknown.len() > MAX_NEW_ATOMS {
        return Err(format!("more than {MAX_NEW_ATOMS} new atoms"));
    }
    Ok(())
}
