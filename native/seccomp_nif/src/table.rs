//! The per-process table: which layers of policy each restricted process carries.
//!
//! Keys are opaque words (the NIF uses the pid's term word). Layers are shared
//! through `Arc`, so a million processes under one policy cost one pointer each.

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

use crate::policy::{Action, Compiled, WordHasher};

/// The stack of policies of one process; a call must pass every one.
#[derive(Debug)]
pub struct Layers<K: Eq + Hash, B> {
    pub policies: Vec<Arc<Compiled<K, B>>>,
}

impl<K: Copy + Eq + Hash, B: Clone> Layers<K, B> {
    /// The strictest action among all layers for this call.
    #[inline]
    pub fn decide(&self, m: K, f: K, a: u32) -> &Action<B> {
        let mut verdict: Option<&Action<B>> = None;
        for p in &self.policies {
            let act = p.decide(m, f, a);
            verdict = Some(match verdict {
                Some(v) => v.strictest(act),
                None => act,
            });
        }
        verdict.expect("a table entry always has at least one layer")
    }

    /// `Some(action)` when a layer forbids spawning: the strictest such layer's default action.
    pub fn spawn_denial(&self) -> Option<&Action<B>> {
        self.policies
            .iter()
            .filter(|p| p.no_spawn)
            .map(|p| &p.default_action)
            .reduce(|a, b| a.strictest(b))
    }

    /// The layers a child inherits (those with the inherit bit), if any.
    pub fn inherited(&self) -> Option<Arc<Layers<K, B>>> {
        let policies: Vec<_> = self
            .policies
            .iter()
            .filter(|p| p.inherit)
            .cloned()
            .collect();
        (!policies.is_empty()).then(|| Arc::new(Layers { policies }))
    }

    pub fn stacked(&self, more: &[Arc<Compiled<K, B>>]) -> Arc<Layers<K, B>> {
        let mut policies = self.policies.clone();
        policies.extend(more.iter().cloned());
        Arc::new(Layers { policies })
    }
}

/// One restricted process: its layers and its counters.
#[derive(Debug)]
pub struct Entry<K: Eq + Hash, B> {
    pub layers: Arc<Layers<K, B>>,
    pub checks: AtomicU64,
    pub denials: AtomicU64,
}

/// What `add_layers` did, so the caller knows whether to start watching the process.
#[derive(Debug, PartialEq, Eq)]
pub enum Added {
    NewEntry,
    Stacked,
}

pub struct Table<K: Eq + Hash, B> {
    map: DashMap<u64, Entry<K, B>, std::hash::BuildHasherDefault<WordHasher>>,
}

impl<K: Copy + Eq + Hash, B: Clone> Default for Table<K, B> {
    fn default() -> Self {
        Table {
            map: DashMap::with_hasher(Default::default()),
        }
    }
}

impl<K: Copy + Eq + Hash, B: Clone> Table<K, B> {
    /// Stack more layers on a process; layers are never removed while it lives.
    ///
    /// Like every method here, it works on the entry it holds and never calls
    /// back into the map while holding it: a DashMap shard lock is not reentrant.
    pub fn add_layers(&self, key: u64, more: &[Arc<Compiled<K, B>>]) -> Added {
        self.stack_or_insert(key, more, false, || {
            Arc::new(Layers {
                policies: more.to_vec(),
            })
        })
    }

    /// Give a process the layers its parent passed on: shared, not copied, when
    /// it has none yet; else those it does not carry yet are stacked on its own
    /// (a child given its parent's layers twice, by the tracer and by a ticket,
    /// carries them once).
    pub fn adopt(&self, key: u64, layers: &Arc<Layers<K, B>>) -> Added {
        self.stack_or_insert(key, &layers.policies, true, || Arc::clone(layers))
    }

    fn stack_or_insert(
        &self,
        key: u64,
        more: &[Arc<Compiled<K, B>>],
        skip_carried: bool,
        fresh: impl FnOnce() -> Arc<Layers<K, B>>,
    ) -> Added {
        match self.map.entry(key) {
            dashmap::Entry::Occupied(mut e) => {
                let carried = &e.get().layers.policies;
                let new: Vec<_> = more
                    .iter()
                    .filter(|p| !skip_carried || !carried.iter().any(|c| Arc::ptr_eq(c, p)))
                    .cloned()
                    .collect();
                if !new.is_empty() {
                    let stacked = e.get().layers.stacked(&new);
                    e.get_mut().layers = stacked;
                }
                Added::Stacked
            }
            dashmap::Entry::Vacant(v) => {
                v.insert(Entry {
                    layers: fresh(),
                    checks: AtomicU64::new(0),
                    denials: AtomicU64::new(0),
                });
                Added::NewEntry
            }
        }
    }

    /// Only for processes that are gone.
    pub fn forget(&self, key: u64) {
        self.map.remove(&key);
    }

    pub fn is_restricted(&self, key: u64) -> bool {
        self.map.contains_key(&key)
    }

    /// The decision for a call, counted; `None` when the process is unrestricted.
    #[inline]
    pub fn check(&self, key: u64, m: K, f: K, a: u32) -> Option<Action<B>> {
        let entry = self.map.get(&key)?;
        entry.checks.fetch_add(1, Ordering::Relaxed);
        let act = entry.layers.decide(m, f, a);
        if !act.is_allow() {
            entry.denials.fetch_add(1, Ordering::Relaxed);
        }
        Some(act.clone())
    }

    /// Run `f` on a process's entry, if it has one.
    pub fn with_entry<R>(&self, key: u64, f: impl FnOnce(&Entry<K, B>) -> R) -> Option<R> {
        self.map.get(&key).map(|e| f(&e))
    }

    pub fn count_denial(&self, key: u64) {
        if let Some(e) = self.map.get(&key) {
            e.denials.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Mode, Rule, Spec};

    fn policy(
        mode: Mode,
        rules: &[(&'static str, Option<&'static str>)],
        no_spawn: bool,
        inherit: bool,
    ) -> Arc<Compiled<&'static str, ()>> {
        let rules = rules
            .iter()
            .map(|(m, f)| Rule {
                module: *m,
                function: *f,
                arity: None,
                action: None,
            })
            .collect();
        Arc::new(Compiled::new(
            &Spec {
                mode,
                no_spawn,
                inherit,
                default_action: Action::Error,
                rules,
            },
            Vec::new(),
        ))
    }

    #[test]
    fn unrestricted_processes_are_not_checked() {
        let t: Table<&str, ()> = Table::default();
        assert_eq!(t.check(1, "os", "cmd", 1), None);
        assert!(t.is_empty());
    }

    #[test]
    fn stacking_requires_every_layer_to_allow() {
        let t = Table::default();
        let lists_and_maps = policy(
            Mode::Whitelist,
            &[("lists", None), ("maps", None)],
            false,
            true,
        );
        let no_maps = policy(Mode::Blacklist, &[("maps", None)], false, true);
        assert_eq!(t.add_layers(7, &[lists_and_maps]), Added::NewEntry);
        assert_eq!(t.check(7, "maps", "get", 2), Some(Action::Allow));
        assert_eq!(t.add_layers(7, &[no_maps]), Added::Stacked);
        assert_eq!(t.check(7, "maps", "get", 2), Some(Action::Error));
        assert_eq!(t.check(7, "lists", "map", 2), Some(Action::Allow));
        assert_eq!(t.check(7, "os", "cmd", 1), Some(Action::Error));
        let (checks, denials) = t
            .with_entry(7, |e| {
                (
                    e.checks.load(Ordering::Relaxed),
                    e.denials.load(Ordering::Relaxed),
                )
            })
            .unwrap();
        assert_eq!((checks, denials), (4, 2));
    }

    #[test]
    fn children_inherit_only_inheritable_layers() {
        let t = Table::default();
        t.add_layers(1, &[policy(Mode::Blacklist, &[("os", None)], false, true)]);
        t.add_layers(
            1,
            &[policy(Mode::Blacklist, &[("file", None)], true, false)],
        );
        let parent = t.with_entry(1, |e| Arc::clone(&e.layers)).unwrap();
        assert!(parent.spawn_denial().is_some());
        let child = parent.inherited().unwrap();
        assert_eq!(child.policies.len(), 1);
        assert!(child.spawn_denial().is_none());
        t.adopt(2, &child);
        assert_eq!(t.check(2, "os", "cmd", 1), Some(Action::Error));
        assert_eq!(t.check(2, "file", "read_file", 1), Some(Action::Allow));
    }

    #[test]
    fn adopting_onto_an_entry_stacks_without_relocking() {
        let t = Table::default();
        let layers = Arc::new(Layers {
            policies: vec![policy(Mode::Blacklist, &[("os", None)], false, true)],
        });
        assert_eq!(t.adopt(3, &layers), Added::NewEntry);
        assert_eq!(t.adopt(3, &layers), Added::Stacked);
        t.add_layers(
            3,
            &[policy(Mode::Blacklist, &[("file", None)], false, true)],
        );
        assert_eq!(t.adopt(3, &layers), Added::Stacked);
        assert_eq!(t.with_entry(3, |e| e.layers.policies.len()), Some(2));
        assert_eq!(t.check(3, "file", "read_file", 1), Some(Action::Error));
    }

    #[test]
    fn forgetting_removes_the_entry() {
        let t = Table::default();
        for k in 0..1000 {
            t.add_layers(k, &[policy(Mode::Blacklist, &[], false, true)]);
        }
        assert_eq!(t.len(), 1000);
        for k in 0..1000 {
            t.forget(k);
        }
        assert!(t.is_empty());
    }
}
