//! Policies: the plain specification a user writes, and its compiled form.
//!
//! Everything here is independent of the BEAM: atoms are any `Copy + Eq + Hash`
//! key (the NIF uses the atom's term word), brokers are any value. That keeps
//! the matching logic testable with `cargo test` alone.

use std::collections::HashMap;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

pub type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<WordHasher>>;

/// A multiply-rotate hasher for keys made of machine words (atom and pid term
/// words). Those are not attacker-chosen, so speed wins over DoS resistance;
/// the multiply spreads the tag bits that term words share.
#[derive(Default, Clone, Copy)]
pub struct WordHasher(u64);

impl std::hash::Hasher for WordHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Whether unmatched calls are denied (`Whitelist`) or allowed (`Blacklist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Whitelist,
    Blacklist,
}

/// What a check decides. Variants are ordered by severity: when several layers
/// disagree, the most severe one wins (like seccomp's action precedence).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action<B> {
    Allow,
    Log,
    Trap(B),
    Error,
    Kill,
}

impl<B> Action<B> {
    fn severity(&self) -> u8 {
        match self {
            Action::Allow => 0,
            Action::Log => 1,
            Action::Trap(_) => 2,
            Action::Error => 3,
            Action::Kill => 4,
        }
    }

    pub fn is_allow(&self) -> bool {
        matches!(self, Action::Allow)
    }

    pub fn map_broker<C>(&self, f: &mut impl FnMut(&B) -> C) -> Action<C> {
        match self {
            Action::Allow => Action::Allow,
            Action::Log => Action::Log,
            Action::Trap(b) => Action::Trap(f(b)),
            Action::Error => Action::Error,
            Action::Kill => Action::Kill,
        }
    }

    /// The more severe of two actions (the first one on a tie).
    pub fn strictest<'a>(&'a self, other: &'a Action<B>) -> &'a Action<B> {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }
}

/// One `{Module, Function, Arity}` pattern; `None` is the `'_'` wildcard.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de>, B: Deserialize<'de>"))]
pub struct Rule<K, B> {
    pub module: K,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<K>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arity: Option<u32>,
    /// `None`: allow in a whitelist, the default action in a blacklist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action<B>>,
}

/// A policy as written by a user, after validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de>, B: Deserialize<'de>"))]
pub struct Spec<K, B> {
    pub mode: Mode,
    pub no_spawn: bool,
    pub inherit: bool,
    pub default_action: Action<B>,
    pub rules: Vec<Rule<K, B>>,
}

impl<K, B> Spec<K, B> {
    /// The same spec with its atoms and brokers converted (e.g. to text for JSON).
    pub fn try_map<K2, B2, E>(
        &self,
        mut atom: impl FnMut(&K) -> Result<K2, E>,
        mut broker: impl FnMut(&B) -> Result<B2, E>,
    ) -> Result<Spec<K2, B2>, E> {
        let mut convert_action = |a: &Action<B>| -> Result<Action<B2>, E> {
            Ok(match a {
                Action::Trap(b) => Action::Trap(broker(b)?),
                Action::Allow => Action::Allow,
                Action::Log => Action::Log,
                Action::Error => Action::Error,
                Action::Kill => Action::Kill,
            })
        };
        let default_action = convert_action(&self.default_action)?;
        let mut rules = Vec::with_capacity(self.rules.len());
        for r in &self.rules {
            rules.push(Rule {
                module: atom(&r.module)?,
                function: r.function.as_ref().map(&mut atom).transpose()?,
                arity: r.arity,
                action: r.action.as_ref().map(&mut convert_action).transpose()?,
            });
        }
        Ok(Spec {
            mode: self.mode,
            no_spawn: self.no_spawn,
            inherit: self.inherit,
            default_action,
            rules,
        })
    }
}

/// A spec compiled into hashed sets: a decision is at most four probes.
#[derive(Debug)]
pub struct Compiled<K: Eq + Hash, B> {
    pub mode: Mode,
    pub no_spawn: bool,
    pub inherit: bool,
    pub default_action: Action<B>,
    exact: FastMap<(K, K, u32), Action<B>>,
    by_function: FastMap<(K, K), Action<B>>,
    by_arity: FastMap<(K, u32), Action<B>>,
    by_module: FastMap<K, Action<B>>,
    allow: Action<B>,
    /// The policy as its embedder wrote it, kept opaque for `status`.
    pub source: Vec<u8>,
}

impl<K: Copy + Eq + Hash, B: Clone> Compiled<K, B> {
    pub fn new(spec: &Spec<K, B>, source: Vec<u8>) -> Self {
        let mut c = Compiled {
            mode: spec.mode,
            no_spawn: spec.no_spawn,
            inherit: spec.inherit,
            default_action: spec.default_action.clone(),
            exact: FastMap::default(),
            by_function: FastMap::default(),
            by_arity: FastMap::default(),
            by_module: FastMap::default(),
            allow: Action::Allow,
            source,
        };
        for rule in &spec.rules {
            let action = match (&rule.action, spec.mode) {
                (Some(a), _) => a.clone(),
                (None, Mode::Whitelist) => Action::Allow,
                (None, Mode::Blacklist) => spec.default_action.clone(),
            };
            // Two rules for the same pattern: keep the stricter (fail closed).
            fn put<Q: Eq + Hash, B: Clone>(m: &mut FastMap<Q, Action<B>>, k: Q, a: Action<B>) {
                let merged = match m.get(&k) {
                    Some(old) => old.strictest(&a).clone(),
                    None => a,
                };
                m.insert(k, merged);
            }
            match (rule.function, rule.arity) {
                (Some(f), Some(a)) => put(&mut c.exact, (rule.module, f, a), action),
                (Some(f), None) => put(&mut c.by_function, (rule.module, f), action),
                (None, Some(a)) => put(&mut c.by_arity, (rule.module, a), action),
                (None, None) => put(&mut c.by_module, rule.module, action),
            }
        }
        c
    }

    /// The action for a call; the most specific matching rule wins.
    #[inline]
    pub fn decide(&self, m: K, f: K, a: u32) -> &Action<B> {
        if !self.exact.is_empty() {
            if let Some(act) = self.exact.get(&(m, f, a)) {
                return act;
            }
        }
        if !self.by_function.is_empty() {
            if let Some(act) = self.by_function.get(&(m, f)) {
                return act;
            }
        }
        if !self.by_arity.is_empty() {
            if let Some(act) = self.by_arity.get(&(m, a)) {
                return act;
            }
        }
        if let Some(act) = self.by_module.get(&m) {
            return act;
        }
        match self.mode {
            Mode::Whitelist => &self.default_action,
            Mode::Blacklist => &self.allow,
        }
    }

    pub fn rule_count(&self) -> usize {
        self.exact.len() + self.by_function.len() + self.by_arity.len() + self.by_module.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<K: Copy + Eq + Hash, B: Clone> Compiled<K, B> {
        fn new_test(spec: &Spec<K, B>) -> Self {
            Compiled::new(spec, Vec::new())
        }
    }

    type S = Spec<&'static str, &'static str>;

    fn rule(
        m: &'static str,
        f: Option<&'static str>,
        a: Option<u32>,
    ) -> Rule<&'static str, &'static str> {
        Rule {
            module: m,
            function: f,
            arity: a,
            action: None,
        }
    }

    fn spec(mode: Mode, rules: Vec<Rule<&'static str, &'static str>>) -> S {
        Spec {
            mode,
            no_spawn: false,
            inherit: true,
            default_action: Action::Error,
            rules,
        }
    }

    #[test]
    fn whitelist_allows_only_listed_calls() {
        let c = Compiled::new_test(&spec(
            Mode::Whitelist,
            vec![rule("lists", Some("map"), Some(2))],
        ));
        assert_eq!(c.decide("lists", "map", 2), &Action::Allow);
        assert_eq!(c.decide("lists", "map", 3), &Action::Error);
        assert_eq!(c.decide("os", "cmd", 1), &Action::Error);
    }

    #[test]
    fn blacklist_denies_only_listed_calls() {
        let c = Compiled::new_test(&spec(Mode::Blacklist, vec![rule("os", None, None)]));
        assert_eq!(c.decide("os", "cmd", 1), &Action::Error);
        assert_eq!(c.decide("lists", "map", 2), &Action::Allow);
    }

    #[test]
    fn wildcards_match_at_each_level() {
        let c = Compiled::new_test(&spec(
            Mode::Whitelist,
            vec![
                rule("a", None, None),
                rule("b", Some("f"), None),
                rule("c", None, Some(1)),
            ],
        ));
        assert!(c.decide("a", "anything", 7).is_allow());
        assert!(c.decide("b", "f", 0).is_allow());
        assert!(c.decide("b", "f", 9).is_allow());
        assert!(!c.decide("b", "g", 0).is_allow());
        assert!(c.decide("c", "x", 1).is_allow());
        assert!(!c.decide("c", "x", 2).is_allow());
        assert_eq!(c.rule_count(), 3);
    }

    #[test]
    fn most_specific_rule_wins() {
        let mut deny_exact = rule("file", Some("delete"), Some(1));
        deny_exact.action = Some(Action::Kill);
        let c = Compiled::new_test(&spec(
            Mode::Whitelist,
            vec![rule("file", None, None), deny_exact],
        ));
        assert_eq!(c.decide("file", "read_file", 1), &Action::Allow);
        assert_eq!(c.decide("file", "delete", 1), &Action::Kill);
    }

    #[test]
    fn per_rule_actions_in_blacklist() {
        let mut logged = rule("io", None, None);
        logged.action = Some(Action::Log);
        let mut trapped = rule("file", Some("open"), Some(2));
        trapped.action = Some(Action::Trap("broker"));
        let c = Compiled::new_test(&spec(
            Mode::Blacklist,
            vec![logged, trapped, rule("os", None, None)],
        ));
        assert_eq!(c.decide("io", "format", 2), &Action::Log);
        assert_eq!(c.decide("file", "open", 2), &Action::Trap("broker"));
        assert_eq!(c.decide("os", "cmd", 1), &Action::Error);
        assert_eq!(c.decide("maps", "get", 2), &Action::Allow);
    }

    #[test]
    fn duplicate_patterns_keep_the_stricter_action() {
        let mut a = rule("os", None, None);
        a.action = Some(Action::Kill);
        let mut b = rule("os", None, None);
        b.action = Some(Action::Log);
        let c = Compiled::new_test(&spec(Mode::Blacklist, vec![a, b]));
        assert_eq!(c.decide("os", "cmd", 1), &Action::Kill);
    }

    #[test]
    fn severity_order_is_seccomp_like() {
        let all: [Action<u8>; 5] = [
            Action::Allow,
            Action::Log,
            Action::Trap(0),
            Action::Error,
            Action::Kill,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i..] {
                assert_eq!(a.strictest(b), b);
                assert_eq!(b.strictest(a), b);
            }
        }
    }

    #[test]
    fn spec_round_trips_through_json() {
        let mut r = rule("file", Some("open"), Some(2));
        r.action = Some(Action::Trap("broker"));
        let s = spec(Mode::Blacklist, vec![r, rule("os", None, None)]);
        let owned: Spec<String, String> = s
            .try_map(|a| Ok::<_, ()>(a.to_string()), |b| Ok(b.to_string()))
            .unwrap();
        let text = serde_json::to_string(&owned).unwrap();
        let back: Spec<String, String> = serde_json::from_str(&text).unwrap();
        assert_eq!(owned, back);
    }

    #[test]
    fn try_map_stops_at_first_error() {
        let mut r = rule("file", None, None);
        r.action = Some(Action::Trap("pid"));
        let s = spec(Mode::Whitelist, vec![r]);
        let res: Result<Spec<String, String>, &str> =
            s.try_map(|a| Ok(a.to_string()), |_| Err("unserialisable"));
        assert_eq!(res, Err("unserialisable"));
    }
}
