//! What a peer node was given: the local pids and references (aliases) this
//! node has shown it in any packet it sent, and the monitors local processes
//! set up on the peer's processes. The driver records them as packets go
//! out and looks them up as packets come in; the filter asks through NIFs.
//!
//! Identifiers are kept as canonical keys (kind, creation, numbers), so the
//! same pid encoded two ways is one key. Shown items are kept in generations
//! of `GENERATION`; when one is full, items older than the previous one are
//! dropped, except pids of processes still alive (asked by the NIF that
//! rotates, which has a runtime to ask).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use once_cell::sync::Lazy;
use rustc_hash::FxBuildHasher;

use crate::etf;

const GENERATION: usize = 100_000;
/// Successive identifiers hashed to neighbouring buckets (see `CountingUp`).
const RUN: u64 = 16;
/// Shown keys added to the table together.
const PENDING: usize = 32;

/// This node's pids and references that a peer named before they were shown
/// to it (a guess, or one relayed from a third node). Local code that sends
/// them back to that peer (an error that quotes its arguments, an `erpc`
/// call's reference in its reply) echoes them; it does not show them: they
/// count as shown only where the process itself is the sender. Kept per peer
/// node name: a peer that reconnects finds what it named; and what one peer
/// names does not stop this node from showing those processes to others
/// (`pg` and `global` tell every peer the pids joined or registered here).
static PEER_NAMED: Lazy<Mutex<PeerNamed>> = Lazy::new(Default::default);
/// Whether `PEER_NAMED` may hold anything (set under its lock): while it is
/// empty, as it is on a node whose peers name only what they were shown, an
/// outgoing packet need not take the node-wide lock.
static PEER_NAMED_ANY: AtomicBool = AtomicBool::new(false);
const PEER_NAMED_CAP: usize = 1_000_000;
/// Identifiers one connection may add to `PEER_NAMED` per generation of
/// what it was shown (more closes it).
const NAMED_PER_PEER: usize = 100_000;

/// The identifiers each peer node named (see `PEER_NAMED`), and how many
/// there are in all.
#[derive(Default)]
struct PeerNamed {
    by_peer: HashMap<Vec<u8>, HashSet<Key, FxBuildHasher>, FxBuildHasher>,
    len: usize,
}

impl PeerNamed {
    fn contains(&self, peer: &[u8], key: &Key) -> bool {
        self.by_peer.get(peer).is_some_and(|set| set.contains(key))
    }

    fn insert(&mut self, peer: &[u8], key: Key) {
        let added = match self.by_peer.get_mut(peer) {
            Some(set) => set.insert(key),
            None => {
                let mut set = HashSet::default();
                set.insert(key);
                self.by_peer.insert(peer.to_vec(), set);
                true
            }
        };
        self.len += usize::from(added);
    }

    fn retain(&mut self, mut keep: impl FnMut(&Key) -> bool) {
        for set in self.by_peer.values_mut() {
            set.retain(|k| keep(k));
        }
        self.by_peer.retain(|_, set| !set.is_empty());
        self.len = self.by_peer.values().map(HashSet::len).sum();
    }
}
const PASS_THROUGH: u8 = 112;
const VERSION: u8 = 131;

/// What a monitor a local process set up on the peer watches: a pid (its
/// node and key) or a registered name, as its exit must name it; or, for a
/// spawn request's, the process that request starts, not known yet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Watched {
    Pid(Vec<u8>, Key),
    Name(Vec<u8>),
    Spawned,
}

impl Watched {
    /// What the term at the start of `bin` (from its tag) names as watched.
    pub fn named(bin: &[u8]) -> Option<Watched> {
        if let Some((node, key, _)) = identifier(bin) {
            return (key[0] == b'p').then(|| Watched::Pid(node.to_vec(), key));
        }
        atom(bin, 0).map(|(name, _)| Watched::Name(name.to_vec()))
    }
}

/// Kind (`b'p'` or `b'r'`), how many words follow the creation, the
/// creation, then up to five words (a pid's id and serial, a reference's).
pub type Key = [u8; 26];

/// The node name and key of the pid or reference whose encoding (from its
/// tag) starts `bin`, with the bytes it takes.
pub fn identifier(bin: &[u8]) -> Option<(&[u8], Key, usize)> {
    let tag = *bin.first()?;
    let (kind, words_at, words, creation_len) = match tag {
        88 => (b'p', 1, 2, 4),
        103 => (b'p', 1, 2, 1),
        90 | 114 => {
            let n = u16::from_be_bytes([*bin.get(1)?, *bin.get(2)?]) as usize;
            if n == 0 || n > 5 {
                return None;
            }
            (b'r', 3, n, if tag == 90 { 4 } else { 1 })
        }
        _ => return None,
    };
    let (node, after_node) = atom(bin, words_at)?;
    let mut key = [0u8; 26];
    key[0] = kind;
    key[1] = words as u8;
    let (creation_at, words_from) = if kind == b'p' {
        (after_node + 8, after_node)
    } else {
        (after_node, after_node + creation_len)
    };
    let creation = bin.get(creation_at..creation_at + creation_len)?;
    key[2 + 4 - creation_len..6].copy_from_slice(creation);
    let numbers = bin.get(words_from..words_from + 4 * words)?;
    key[6..6 + 4 * words].copy_from_slice(numbers);
    if kind == b'r' {
        // The runtime takes a reference padded with zero words for the same
        // reference: so does its key.
        let mut used = words;
        while used > 1 && numbers[4 * (used - 1)..4 * used] == [0, 0, 0, 0] {
            used -= 1;
        }
        key[1] = used as u8;
    }
    let end = if kind == b'p' {
        creation_at + creation_len
    } else {
        words_from + 4 * words
    };
    Some((node, key, end))
}

/// An atom's name at `at` and where it ends.
pub fn atom(bin: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let (len, from) = match *bin.get(at)? {
        100 | 118 => (
            u16::from_be_bytes([*bin.get(at + 1)?, *bin.get(at + 2)?]) as usize,
            at + 3,
        ),
        115 | 119 => (*bin.get(at + 1)? as usize, at + 2),
        _ => return None,
    };
    Some((bin.get(from..from + len)?, from + len))
}

/// The key of a local identifier encoded as a whole term (`term_to_binary`).
pub fn local_key(encoded: &[u8], node: &[u8]) -> Option<Key> {
    match encoded.split_first() {
        Some((&VERSION, rest)) => match identifier(rest)? {
            (n, key, _) if n == node => Some(key),
            _ => None,
        },
        _ => None,
    }
}

/// Hashes a `Key` so that identifiers made one after another (pid and
/// reference numbers count up) land in neighbouring buckets: the pids of
/// successive spawns go into the same cache lines and pages of a table of
/// up to two generations, not a random one each. The top bits (the table's
/// tags) come from a full hash of the key.
#[derive(Default)]
pub struct CountingUp {
    hash: u64,
}

impl Hasher for CountingUp {
    fn write(&mut self, bytes: &[u8]) {
        let mut full = rustc_hash::FxHasher::default();
        full.write(bytes);
        let word = |at: usize| {
            bytes.get(at..at + 4).map_or(0, |w| {
                u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
            })
        };
        // Runs of `RUN` numbers share a block of buckets; the blocks are
        // spread over the table (one long run of full buckets would make
        // every lookup of an absent key that lands in it probe for long).
        let first = word(6);
        let block = (first / RUN)
            .wrapping_add(word(10).wrapping_mul(0x9E37_79B9))
            .wrapping_add(word(2).wrapping_mul(0x85EB_CA6B))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(32);
        const TAG: u64 = 0x7F << 57;
        self.hash =
            (full.finish() & TAG) | (block.wrapping_mul(RUN).wrapping_add(first % RUN) & !TAG);
    }

    fn write_usize(&mut self, _length: usize) {}

    fn finish(&self) -> u64 {
        self.hash
    }
}

#[derive(Default)]
pub struct Caps {
    shown: HashMap<Key, u32, BuildHasherDefault<CountingUp>>,
    /// Shown keys on their way into `shown`, added a batch at a time: each
    /// insert into a large table misses the cache, and a batch of them
    /// overlaps the misses. Every reader of `shown` settles them first.
    pending: Vec<Key>,
    gen: u32,
    count: usize,
    last: Vec<Key>,
    /// Each monitor's reference and what it watches.
    monitors: HashMap<Key, Watched, FxBuildHasher>,
    /// A full generation waits for `rotate`.
    full: bool,
    /// Identifiers this connection's peer added to `PEER_NAMED`.
    named: usize,
    /// The peer's node name (what `PEER_NAMED` keeps its identifiers under).
    peer: Vec<u8>,
    /// Of each reference shown, the local process that sent it (the owner of
    /// an alias it created for a call, most often).
    owners: HashMap<Key, Key, FxBuildHasher>,
    /// Processes the filter found to be neither named nor the runtime's or
    /// OTP's own: messages to them and their aliases need not go to it.
    plain: HashSet<Key, FxBuildHasher>,
    /// Room reused from packet to packet.
    spans: Vec<(usize, usize)>,
    keys: Vec<Key>,
}

impl Caps {
    /// The peer's node name, once the handshake has proven or taken it.
    pub fn set_peer(&mut self, peer: &[u8]) {
        self.peer = peer.to_vec();
    }

    /// Record what the outgoing packet `packet` shows the peer (`node`: this
    /// node's name). `payload_mentions`: whether the bytes after the control
    /// term may name this node (the caller may know they do not, without
    /// them in one piece). True when a generation just filled up.
    pub fn show(&mut self, packet: &[u8], node: &[u8], payload_mentions: bool) -> bool {
        let Some(terms) = packet.strip_prefix(&[PASS_THROUGH]) else {
            return false;
        };
        let mut spans = std::mem::take(&mut self.spans);
        let Some(control) = etf::control_spans(terms, node, &mut spans) else {
            self.spans = spans;
            return false;
        };
        self.monitors_in(terms, &control, node);
        let whole =
            !payload_mentions || etf::local_spans_from(terms, control.end, node, &mut spans);
        let (senders, count) = sender_fields(terms, &control);
        let senders = &senders[..count];
        let sender = senders
            .iter()
            .find_map(|&at| match identifier(&terms[at..]) {
                Some((n, key, _)) if n == node && key[0] == b'p' => Some(key),
                _ => None,
            });
        let mut keys = std::mem::take(&mut self.keys);
        keys.clear();
        if whole && !spans.is_empty() {
            let echoed = PEER_NAMED_ANY
                .load(Ordering::Acquire)
                .then(|| PEER_NAMED.lock().expect("peer named"));
            keys.extend(spans.iter().filter_map(|&(start, _)| {
                let (_, key, _) = identifier(&terms[start..])?;
                let echo = echoed
                    .as_ref()
                    .is_some_and(|e| e.contains(&self.peer, &key));
                (senders.contains(&start) || !echo).then_some(key)
            }));
        }
        self.spans = spans;
        if let Some(owner) = sender {
            for key in keys.iter().filter(|k| k[0] == b'r') {
                self.owners.insert(*key, owner);
            }
        }
        self.add(keys)
    }

    /// Note the local pids and references an incoming packet names that its
    /// peer was not shown (see `PEER_NAMED`); a packet, or its payload, is
    /// read only if it names this node. False when the peer has named more
    /// than its share.
    pub fn named_by_peer(
        &mut self,
        packet: &[u8],
        node: &[u8],
        finder: &memchr::memmem::Finder,
    ) -> bool {
        let Some(terms) = packet.strip_prefix(&[PASS_THROUGH]) else {
            return true;
        };
        if finder.find(terms).is_none() {
            return true;
        }
        let mut spans = std::mem::take(&mut self.spans);
        // A packet that is not whole terms is the filter's to refuse.
        let whole = etf::control_spans(terms, node, &mut spans).is_some_and(|control| {
            finder.find(&terms[control.end..]).is_none()
                || etf::local_spans_from(terms, control.end, node, &mut spans)
        });
        let within = !whole || spans.is_empty() || self.note_named(terms, &spans);
        self.spans = spans;
        within
    }

    fn note_named(&mut self, terms: &[u8], spans: &[(usize, usize)]) -> bool {
        self.settle();
        // Most packets name only what the peer was shown: no need for the
        // node-wide set (and its lock) then.
        let unshown = |&(start, _): &(usize, usize)| {
            identifier(&terms[start..]).filter(|(_, key, _)| !self.shown.contains_key(key))
        };
        if !spans.iter().any(|s| unshown(s).is_some()) {
            return true;
        }
        let mut echoed = PEER_NAMED.lock().expect("peer named");
        for (_, key, _) in spans.iter().filter_map(unshown) {
            if echoed.contains(&self.peer, &key) {
                continue;
            }
            if echoed.len >= PEER_NAMED_CAP {
                // References cannot be asked whether they are still in use:
                // when the set is full they go (pids leave it when they die).
                echoed.retain(|k| k[0] == b'p');
            }
            if self.named >= NAMED_PER_PEER || echoed.len >= PEER_NAMED_CAP {
                return false;
            }
            echoed.insert(&self.peer, key);
            PEER_NAMED_ANY.store(true, Ordering::Release);
            self.named += 1;
        }
        true
    }

    /// Record `keys` (the buffer comes back as the next one's room).
    fn add(&mut self, keys: Vec<Key>) -> bool {
        if keys.is_empty() || keys == self.last {
            self.keys = keys;
            return false;
        }
        self.pending.extend_from_slice(&keys);
        if self.pending.len() >= PENDING {
            self.settle();
        }
        self.count += keys.len();
        self.keys = std::mem::replace(&mut self.last, keys);
        if self.count >= GENERATION && !self.full {
            self.full = true;
            return true;
        }
        false
    }

    /// The monitors a local process sets up on the peer's (`MONITOR_P`, 19,
    /// and spawn requests, 29 and 30, whose request id names the monitor
    /// one asks for) until they fire or `DEMONITOR_P` (20) takes them down.
    fn monitors_in(&mut self, terms: &[u8], control: &etf::Control, node: &[u8]) {
        let op = operation(terms, control);
        let (key_field, watched) = match op {
            Some(19 | 20) => (4, element(terms, control, 3).and_then(Watched::named)),
            Some(29 | 30) => (2, Some(Watched::Spawned)),
            _ => return,
        };
        let Some((n, key, _)) = element(terms, control, key_field).and_then(identifier) else {
            return;
        };
        if n == node {
            match (op, watched) {
                (Some(20), _) => {
                    self.monitors.remove(&key);
                }
                (_, Some(watched)) => {
                    self.monitors.insert(key, watched);
                }
                _ => {}
            }
        }
    }

    /// Move the pending shown keys into `shown`.
    fn settle(&mut self) {
        let gen = self.gen;
        for key in self.pending.drain(..) {
            self.shown.insert(key, gen);
        }
    }

    pub fn holds(&mut self, key: &Key) -> bool {
        self.settle();
        self.shown.contains_key(key)
    }

    /// The local process that sent the shown reference `key`, if one did.
    pub fn owner(&self, key: &Key) -> Option<Key> {
        self.owners.get(key).copied()
    }

    /// Whether the owner of the alias `key` is a process the filter found plain.
    pub fn plain_owner(&self, key: &Key) -> bool {
        self.owners.get(key).is_some_and(|o| self.plain.contains(o))
    }

    /// Whether the filter found the pid `key` plain.
    pub fn is_plain(&self, key: &Key) -> bool {
        self.plain.contains(key)
    }

    pub fn set_plain(&mut self, pid: Key) {
        self.plain.insert(pid);
    }

    /// Whether `key` names a monitor recorded here whose exit may name
    /// `from` as the process that went; if so, it counts as fired.
    pub fn monitor_fired(&mut self, key: &Key, from: &Watched) -> bool {
        let fits = match (self.monitors.get(key), from) {
            (None, _) => false,
            (Some(Watched::Spawned), Watched::Pid(..)) => true,
            (Some(watched), from) => watched == from,
        };
        if fits {
            self.monitors.remove(key);
        }
        fits
    }

    /// The monitor `key` will never fire (a spawn that failed).
    pub fn forget_monitor(&mut self, key: &Key) {
        self.monitors.remove(key);
    }

    /// Start a new generation: the full one stays, items of earlier ones
    /// are dropped but pids `alive` says are alive (they join the full one).
    pub fn rotate(&mut self, mut alive: impl FnMut(&Key) -> bool) {
        self.settle();
        let gen = self.gen;
        self.shown.retain(|k, g| {
            if *g == gen {
                return true;
            }
            let keep = k[0] == b'p' && alive(k);
            if keep {
                *g = gen;
            }
            keep
        });
        let shown = &self.shown;
        self.owners
            .retain(|reference, _| shown.contains_key(reference));
        self.plain.clear();
        let mut echoed = PEER_NAMED.lock().expect("peer named");
        echoed.retain(|k| k[0] != b'p' || alive(k));
        PEER_NAMED_ANY.store(echoed.len > 0, Ordering::Release);
        drop(echoed);
        self.gen = gen.wrapping_add(1);
        self.count = 0;
        self.named = 0;
        self.last.clear();
        self.full = false;
    }
}

/// The operation of a control term (`terms`: version byte, then the term)
/// whose elements `control` found.
fn operation(terms: &[u8], control: &etf::Control) -> Option<u8> {
    match *element(terms, control, 1)? {
        [97, op, ..] if matches!(terms.get(control.starts[0]), Some(104 | 105)) => Some(op),
        _ => None,
    }
}

/// The bytes from the control tuple's `index`th element (1: the operation) on.
fn element<'a>(terms: &'a [u8], control: &etf::Control, index: usize) -> Option<&'a [u8]> {
    (index < control.count).then(|| &terms[control.starts[index]..])
}

/// Where the fields of a control term that name the local process acting
/// (the sender of a message, link, exit or monitor; a spawn's requester and
/// group leader; the process a spawn reply reports) start in `terms`.
fn sender_fields(terms: &[u8], control: &etf::Control) -> ([usize; 3], usize) {
    let mut starts = [0; 3];
    let fields: &[usize] = match operation(terms, control) {
        Some(1 | 3 | 4 | 6 | 7 | 8 | 13 | 16 | 18..=28 | 33 | 34) => &[2],
        Some(29 | 30) => &[2, 3, 4],
        Some(31 | 32) => &[5],
        Some(35..=37) => &[3],
        _ => &[],
    };
    let mut count = 0;
    for &index in fields.iter().filter(|&&i| i < control.count) {
        starts[count] = control.starts[index];
        count += 1;
    }
    (starts, count)
}

/// How many bytes of a pass-through packet its marker and control term take.
pub fn control_len(packet: &[u8]) -> Option<usize> {
    match packet.strip_prefix(&[PASS_THROUGH, VERSION]) {
        Some(_) => etf::skip_term(packet, 2),
        None => None,
    }
}

/// The encoding of a local pid whose key is `key`, as a whole term.
pub fn pid_term_bytes(key: &Key, node: &[u8]) -> Option<Vec<u8>> {
    if key[0] != b'p' || node.len() > 255 {
        return None;
    }
    let mut out = vec![VERSION, 88, 119, node.len() as u8];
    out.extend_from_slice(node);
    out.extend_from_slice(&key[6..14]);
    out.extend_from_slice(&key[2..6]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pid(node: &[u8], id: u8) -> Vec<u8> {
        let mut v = vec![88, 119, node.len() as u8];
        v.extend_from_slice(node);
        v.extend_from_slice(&[0, 0, 0, id, 0, 0, 0, 0, 0, 0, 0, 7]);
        v
    }

    fn send_packet(from: &[u8], to: &[u8]) -> Vec<u8> {
        let mut p = vec![112, 131, 104, 3, 97, 22];
        p.extend_from_slice(from);
        p.extend_from_slice(to);
        p.extend_from_slice(&[131, 106]);
        p
    }

    #[test]
    fn pids_shown_are_held_and_others_are_not() {
        let mut caps = Caps::default();
        caps.show(&send_packet(&pid(b"a@h", 1), &pid(b"b@h", 2)), b"a@h", true);
        let key = identifier(&pid(b"a@h", 1)).unwrap().1;
        assert!(caps.holds(&key));
        assert!(!caps.holds(&identifier(&pid(b"a@h", 2)).unwrap().1));
        let mut whole = vec![131];
        whole.extend_from_slice(&pid(b"a@h", 1));
        assert_eq!(local_key(&whole, b"a@h"), Some(key));
        assert_eq!(pid_term_bytes(&key, b"a@h").unwrap(), whole);
    }

    #[test]
    fn echoes_of_named_pids_show_nothing_but_senders_do() {
        let node = b"echo@h";
        let guessed = pid(node, 40);
        let mut incoming = vec![112, 131, 104, 3, 97, 22];
        incoming.extend(pid(b"peer@h", 1));
        incoming.extend(pid(node, 41));
        incoming.push(131);
        incoming.extend(&guessed);
        let mut caps = Caps::default();
        caps.set_peer(b"peer@h");
        assert!(caps.named_by_peer(&incoming, node, &memchr::memmem::Finder::new(node)));
        let key = identifier(&guessed).unwrap().1;
        caps.show(&send_packet(&pid(node, 3), &pid(b"peer@h", 1)), node, true);
        let mut echo = vec![112, 131, 104, 3, 97, 22];
        echo.extend(pid(node, 3));
        echo.extend(pid(b"peer@h", 1));
        echo.push(131);
        echo.extend(&guessed);
        caps.show(&echo, node, true);
        assert!(!caps.holds(&key));
        // What one peer named is shown to another (pg and global tell every
        // peer of the processes joined or registered here).
        let mut other = Caps::default();
        other.set_peer(b"other@h");
        other.show(&echo, node, true);
        assert!(other.holds(&key));
        // A reconnection of the peer that named it finds it named.
        let mut again = Caps::default();
        again.set_peer(b"peer@h");
        again.show(&echo, node, true);
        assert!(!again.holds(&key));
        caps.show(&send_packet(&guessed, &pid(b"peer@h", 1)), node, true);
        assert!(caps.holds(&key));
    }

    #[test]
    fn shown_items_outlive_one_rotation_and_dead_pids_not_two() {
        let mut caps = Caps::default();
        caps.show(&send_packet(&pid(b"a@h", 1), &pid(b"b@h", 2)), b"a@h", true);
        let key = identifier(&pid(b"a@h", 1)).unwrap().1;
        caps.rotate(|_| false);
        assert!(caps.holds(&key));
        caps.rotate(|_| false);
        assert!(!caps.holds(&key));
        caps.show(&send_packet(&pid(b"a@h", 1), &pid(b"b@h", 2)), b"a@h", true);
        caps.rotate(|_| true);
        caps.rotate(|_| true);
        assert!(caps.holds(&key));
    }

    #[test]
    fn monitors_fire_once_for_what_they_watch() {
        let mut caps = Caps::default();
        let r = [90, 0, 1, 119, 3, b'a', b'@', b'h', 0, 0, 0, 7, 0, 0, 0, 9];
        let mut p = vec![112, 131, 104, 4, 97, 19];
        p.extend_from_slice(&pid(b"a@h", 1));
        p.extend_from_slice(&pid(b"b@h", 2));
        p.extend_from_slice(&r);
        caps.show(&p, b"a@h", true);
        let key = identifier(&r).unwrap().1;
        let other = Watched::named(&pid(b"b@h", 3)).unwrap();
        let watched = Watched::named(&pid(b"b@h", 2)).unwrap();
        assert!(!caps.monitor_fired(&key, &other));
        assert!(!caps.monitor_fired(&key, &Watched::Name(b"b@h".to_vec())));
        assert!(caps.monitor_fired(&key, &watched));
        assert!(!caps.monitor_fired(&key, &watched));
    }
}
