//! Reads one term of the external term format without decoding it, for the
//! distribution carrier's filter: where the term ends, which atoms decoding it
//! would create, how many funs it holds and how much heap it would take.
//!
//! The walk keeps a count of terms still to read (prefix order), so nesting
//! depth costs nothing and a lying length only makes the input end early.
//! Binaries are skipped, never copied. Tags a connection without the atom
//! cache never carries (atom cache references, compressed terms, `LOCAL_EXT`)
//! and unknown tags are errors. The Erlang side (`seccomp_dist_etf`) keeps
//! the semantics; this is its fast path.

use std::collections::HashSet;

use dashmap::DashSet;
use once_cell::sync::Lazy;
use rustc_hash::FxBuildHasher;
use rustler::{Atom, Binary, Encoder, Env, NifResult, Term};

mod atoms {
    rustler::atoms! { ok, error, dirty, truncated, bad_version, bad_tag, bad_node_name, atom_budget }
}

const VERSION: u8 = 131;
const WORD: u64 = 8;
/// Binaries up to this size are copied onto the receiver's heap.
const HEAP_BIN: u64 = 64;
/// Terms a call on a normal scheduler may visit before it hands the walk to
/// a dirty scheduler (well under a millisecond of work).
const SCHEDULER_BUDGET: u64 = 20_000;

/// Texts (Latin-1) of atoms known to exist. Atoms are never removed, so a
/// name found once stays found; asking the runtime costs about 100 ns a name,
/// this set a fraction of that. Names past the cap are asked every time.
static KNOWN_ATOMS: Lazy<DashSet<Box<[u8]>, FxBuildHasher>> = Lazy::new(DashSet::default);
const KNOWN_ATOMS_CAP: usize = 65_536;

/// Whether an atom of this Latin-1 text exists, or `None` when the runtime
/// cannot be asked (a text over 255 bytes).
fn atom_exists(env: Env, text: &[u8]) -> Option<bool> {
    if KNOWN_ATOMS.contains(text) {
        return Some(true);
    }
    let exists = Atom::try_from_bytes(env, text).ok()?.is_some();
    if exists && KNOWN_ATOMS.len() < KNOWN_ATOMS_CAP {
        KNOWN_ATOMS.insert(text.into());
    }
    Some(exists)
}

/// Make a name count as a known atom (tests of callers of `scan_known`).
#[cfg(test)]
pub(crate) fn know(name: &[u8]) {
    KNOWN_ATOMS.insert(name.into());
}

#[derive(Debug, PartialEq, Eq)]
enum Failure {
    Truncated,
    BadVersion,
    BadTag(u8),
    BadNodeName,
    AtomBudget,
    /// The normal scheduler's budget is spent: walk again on a dirty one.
    Budget,
}

/// What the walk found.
#[derive(Debug, Default, PartialEq, Eq)]
struct Scan {
    size: usize,
    /// Atom names (as encoded) that do not exist on this node.
    new: Vec<Vec<u8>>,
    /// UTF-8 names the runtime could not be asked about here (characters
    /// outside Latin-1, or not UTF-8): the caller looks them up.
    unchecked: Vec<Vec<u8>>,
    funs: u64,
    memory: u64,
    /// Where the pids, ports and references of `local_node` start and end.
    locals: Vec<(usize, usize)>,
}

/// `lookup(Tag, Name)`: whether an atom of this name (as encoded under this
/// tag) exists, or `None` when the runtime cannot be asked.
struct Walker<'b, L: FnMut(u8, &[u8]) -> Option<bool>> {
    bin: &'b [u8],
    pos: usize,
    max_new: usize,
    budget: Option<u64>,
    visits: u64,
    seen: HashSet<&'b [u8], FxBuildHasher>,
    lookup: L,
    /// The node whose identifiers are collected (our own outgoing data).
    local_node: Option<&'b [u8]>,
    /// Where the first term walked and its elements start (see `Control`).
    roots: Option<Control>,
    scan: Scan,
}

/// Where a term and its elements start: `starts[0]` the term, `starts[i]`
/// its `i`th element (while there is room), and where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Control {
    pub starts: [usize; 8],
    pub count: usize,
    pub end: usize,
}

impl<'b, L: FnMut(u8, &[u8]) -> Option<bool>> Walker<'b, L> {
    fn take(&mut self, n: usize) -> Result<&'b [u8], Failure> {
        let end = self.pos.checked_add(n).ok_or(Failure::Truncated)?;
        let bytes = self.bin.get(self.pos..end).ok_or(Failure::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, Failure> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<usize, Failure> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn u32(&mut self) -> Result<u64, Failure> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
    }

    fn skip(&mut self, n: u64) -> Result<(), Failure> {
        let n = usize::try_from(n).map_err(|_| Failure::Truncated)?;
        self.take(n).map(|_| ())
    }

    fn words(&mut self, w: u64) {
        self.scan.memory = self.scan.memory.saturating_add(w.saturating_mul(WORD));
    }

    fn binary(&mut self, len: u64) {
        if len <= HEAP_BIN {
            self.words(len / WORD + 2);
        } else {
            self.words(6 + len / WORD);
        }
    }

    fn walk(&mut self) -> Result<(), Failure> {
        self.walk_one()?;
        self.scan.size = self.pos;
        Ok(())
    }

    /// Every term of `bin`, one after another.
    fn walk_all(&mut self) -> Result<(), Failure> {
        while self.pos < self.bin.len() {
            self.walk_one()?;
        }
        Ok(())
    }

    fn walk_one(&mut self) -> Result<(), Failure> {
        if self.u8()? != VERSION {
            return Err(Failure::BadVersion);
        }
        self.walk_term()
    }

    /// One term without its version byte.
    fn walk_term(&mut self) -> Result<(), Failure> {
        let mut pending: u64 = 1;
        // The term's own elements start where `pending` falls to a new low.
        let mut low = u64::MAX;
        while pending > 0 {
            if let Some(roots) = &mut self.roots {
                if pending < low && roots.count < roots.starts.len() {
                    roots.starts[roots.count] = self.pos;
                    roots.count += 1;
                    // Past the term itself, its first element is the first low.
                    low = if roots.count == 1 { u64::MAX } else { pending };
                }
            }
            pending -= 1;
            self.visits += 1;
            if let Some(b) = self.budget {
                if self.visits > b {
                    return Err(Failure::Budget);
                }
            }
            pending = pending.saturating_add(self.term()?);
        }
        Ok(())
    }

    /// One term's own bytes; returns how many terms follow as its elements.
    fn term(&mut self) -> Result<u64, Failure> {
        let start = self.pos;
        let tag = self.u8()?;
        match tag {
            97 => self.skip(1).map(|_| 0),
            98 => {
                self.skip(4)?;
                self.words(2);
                Ok(0)
            }
            70 => {
                self.skip(8)?;
                self.words(3);
                Ok(0)
            }
            99 => {
                self.skip(31)?;
                self.words(3);
                Ok(0)
            }
            106 => Ok(0),
            104 => {
                let ar = self.u8()? as u64;
                self.words(ar + 1);
                Ok(ar)
            }
            105 => {
                let ar = self.u32()?;
                self.words(ar + 1);
                Ok(ar)
            }
            108 => {
                let len = self.u32()?;
                self.words(2 * len);
                Ok(len + 1)
            }
            116 => {
                let ar = self.u32()?;
                self.words(3 * ar + 3);
                Ok(2 * ar)
            }
            107 => {
                let len = self.u16()? as u64;
                self.skip(len)?;
                self.words(2 * len);
                Ok(0)
            }
            109 => {
                let len = self.u32()?;
                self.skip(len)?;
                self.binary(len);
                Ok(0)
            }
            77 => {
                let len = self.u32()?;
                self.skip(1 + len)?;
                self.binary(len);
                Ok(0)
            }
            110 => {
                let len = self.u8()? as u64;
                self.skip(1 + len)?;
                self.words(len / WORD + 2);
                Ok(0)
            }
            111 => {
                let len = self.u32()?;
                self.skip(1 + len)?;
                self.words(len / WORD + 2);
                Ok(0)
            }
            100 | 118 | 115 | 119 => self.atom(tag).map(|_| 0),
            // Pids, ports and references: a node name, then fixed fields.
            88 => self.identifier(start, true, 12),
            103 => self.identifier(start, true, 9),
            89 => self.identifier(start, false, 8),
            120 => self.identifier(start, false, 12),
            102 => self.identifier(start, false, 5),
            101 => self.identifier(start, false, 5),
            90 | 114 => {
                let len = self.u16()?;
                if len > 5 {
                    return Err(Failure::BadTag(tag));
                }
                self.identifier(
                    start,
                    true,
                    if tag == 90 { 4 + 4 * len } else { 1 + 4 * len },
                )
            }
            // Module, function, arity.
            113 => {
                self.scan.funs += 1;
                Ok(3)
            }
            // Size, arity, uniq, index, free count; then module, old index,
            // old uniq, creator pid and the free variables.
            112 => {
                self.skip(4 + 1 + 16 + 4)?;
                let free = self.u32()?;
                self.scan.funs += 1;
                self.words(free + 8);
                Ok(4 + free)
            }
            _ => Err(Failure::BadTag(tag)),
        }
    }

    /// A pid, port or reference that starts at `start` (`addressable`: a pid
    /// or a reference, what a peer may address), read up to its node name.
    fn identifier(
        &mut self,
        start: usize,
        addressable: bool,
        fixed: usize,
    ) -> Result<u64, Failure> {
        let tag = self.u8()?;
        if !matches!(tag, 100 | 118 | 115 | 119) {
            return Err(Failure::BadNodeName);
        }
        let node = self.atom(tag)?;
        self.take(fixed)?;
        self.words(6);
        if addressable && self.local_node == Some(node) {
            self.scan.locals.push((start, self.pos));
        }
        Ok(0)
    }

    fn atom(&mut self, tag: u8) -> Result<&'b [u8], Failure> {
        let len = if tag == 100 || tag == 118 {
            self.u16()?
        } else {
            self.u8()? as usize
        };
        let name = self.take(len)?;
        let exists = (self.lookup)(tag, name);
        // Only names that are not atoms yet are remembered, to count each once.
        if exists == Some(true) || !self.seen.insert(name) {
            return Ok(name);
        }
        match exists {
            Some(_) => {
                if self.scan.new.len() >= self.max_new {
                    return Err(Failure::AtomBudget);
                }
                self.scan.new.push(name.to_vec());
            }
            None => self.scan.unchecked.push(name.to_vec()),
        }
        Ok(name)
    }
}

/// The Latin-1 text of an atom's name encoded under `tag`, if it has one.
#[inline]
fn latin1(tag: u8, name: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    if tag == 100 || tag == 115 {
        return Some(std::borrow::Cow::Borrowed(name));
    }
    utf8_as_latin1(name)
}

/// The Latin-1 text of a UTF-8 name, if every character is Latin-1.
fn utf8_as_latin1(name: &[u8]) -> Option<std::borrow::Cow<'_, [u8]>> {
    if name.is_ascii() {
        return Some(std::borrow::Cow::Borrowed(name));
    }
    std::str::from_utf8(name)
        .ok()?
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect::<Option<Vec<u8>>>()
        .map(std::borrow::Cow::Owned)
}

/// The scan of the term at the start of `bin`, and how many terms it visited.
fn scan<L: FnMut(u8, &[u8]) -> Option<bool>>(
    bin: &[u8],
    max_new: usize,
    budget: Option<u64>,
    lookup: L,
) -> (Result<Scan, Failure>, u64) {
    let mut walker = Walker::new(bin, 0, lookup);
    walker.max_new = max_new;
    walker.budget = budget;
    let result = walker.walk();
    let visits = walker.visits;
    (result.map(|()| walker.scan), visits)
}

fn run<'a>(
    env: Env<'a>,
    bin: Binary<'a>,
    max_new: u64,
    budget: Option<u64>,
) -> NifResult<Term<'a>> {
    let max_new = usize::try_from(max_new).unwrap_or(usize::MAX);
    let lookup = |tag, name: &[u8]| latin1(tag, name).and_then(|text| atom_exists(env, &text));
    let (result, visits) = scan(bin.as_slice(), max_new, budget, lookup);
    charge(env, visits, budget);
    let binaries = |names: Vec<Vec<u8>>| -> NifResult<Vec<Term<'a>>> {
        names.iter().map(|n| crate::terms::binary(env, n)).collect()
    };
    Ok(match result {
        Ok(s) => (
            atoms::ok(),
            s.size,
            binaries(s.new)?,
            binaries(s.unchecked)?,
            s.funs,
            s.memory,
        )
            .encode(env),
        Err(Failure::Budget) => atoms::dirty().encode(env),
        Err(Failure::AtomBudget) => (atoms::error(), atoms::atom_budget()).encode(env),
        Err(Failure::Truncated) => (atoms::error(), atoms::truncated()).encode(env),
        Err(Failure::BadVersion) => (atoms::error(), atoms::bad_version()).encode(env),
        Err(Failure::BadNodeName) => (atoms::error(), atoms::bad_node_name()).encode(env),
        Err(Failure::BadTag(t)) => (atoms::error(), (atoms::bad_tag(), t)).encode(env),
    })
}

/// A walker over `bin` from `pos` with no limits and nothing collected.
impl<'b, L: FnMut(u8, &[u8]) -> Option<bool>> Walker<'b, L> {
    fn new(bin: &'b [u8], pos: usize, lookup: L) -> Self {
        Walker {
            bin,
            pos,
            max_new: usize::MAX,
            budget: None,
            visits: 0,
            seen: HashSet::default(),
            lookup,
            local_node: None,
            roots: None,
            scan: Scan::default(),
        }
    }
}

/// A lookup for walks that only find where terms are: every atom "exists".
fn any_atom(_tag: u8, _name: &[u8]) -> Option<bool> {
    Some(true)
}

/// Where the term (without a version byte) that starts at `pos` ends.
pub(crate) fn skip_term(bin: &[u8], pos: usize) -> Option<usize> {
    let mut walker = Walker::new(bin, pos, any_atom);
    walker.walk_term().ok().map(|()| walker.pos)
}

/// Atoms known to exist that one connection's packets name, looked up
/// without the shared set's locks: a direct-mapped cache whose slots hold
/// the names themselves (up to `NAME_MAX` bytes), so a hit reads one slot.
pub(crate) struct KnownAtoms {
    slots: Box<[KnownSlot; KnownAtoms::SLOTS]>,
}

/// A cached name: `len` bytes of `name`; an empty slot has `len` 0.
#[derive(Clone, Copy)]
struct KnownSlot {
    len: u8,
    name: [u8; KnownAtoms::NAME_MAX],
}

impl Default for KnownAtoms {
    fn default() -> Self {
        let empty = KnownSlot {
            len: 0,
            name: [0; Self::NAME_MAX],
        };
        KnownAtoms {
            slots: Box::new([empty; Self::SLOTS]),
        }
    }
}

impl KnownAtoms {
    const SLOTS: usize = 256;
    const NAME_MAX: usize = 31;

    /// Whether the atom named `name` under the encoding `tag` is known to exist.
    pub(crate) fn knows(&mut self, tag: u8, name: &[u8]) -> bool {
        latin1(tag, name).is_some_and(|text| self.contains(&text))
    }

    fn contains(&mut self, text: &[u8]) -> bool {
        if text.is_empty() || text.len() > Self::NAME_MAX {
            return KNOWN_ATOMS.contains(text);
        }
        let mut hasher = rustc_hash::FxHasher::default();
        std::hash::Hasher::write(&mut hasher, text);
        let slot = &mut self.slots[std::hash::Hasher::finish(&hasher) as usize % Self::SLOTS];
        if &slot.name[..slot.len as usize] == text {
            return true;
        }
        let known = KNOWN_ATOMS.contains(text);
        if known {
            slot.len = text.len() as u8;
            slot.name[..text.len()].copy_from_slice(text);
        }
        known
    }
}

/// What the carrier's driver needs of a payload it may deliver without
/// asking the filter: its size, funs and memory, when every atom in it is
/// one this node is known to have (no lookup: the driver has no runtime to
/// ask) and the walk fits `budget`. `None` sends the packet to the filter.
pub(crate) fn scan_known(
    bin: &[u8],
    budget: u64,
    known: &mut KnownAtoms,
) -> Option<(usize, u64, u64)> {
    let lookup = |tag, name: &[u8]| known.knows(tag, name).then_some(true);
    match scan(bin, 0, Some(budget), lookup).0 {
        Ok(s) if s.unchecked.is_empty() && s.new.is_empty() => Some((s.size, s.funs, s.memory)),
        _ => None,
    }
}

/// The first term of `bin` (a version byte, then the term: a packet's
/// control term), where its elements start and where it ends; into `spans`
/// (cleared first), where the pids and references of `node` in it sit.
/// `None` when it is not a whole term.
pub(crate) fn control_spans(
    bin: &[u8],
    node: &[u8],
    spans: &mut Vec<(usize, usize)>,
) -> Option<Control> {
    spans.clear();
    let mut walker = Walker::new(bin, 0, any_atom);
    walker.local_node = Some(node);
    walker.roots = Some(Control {
        starts: [0; 8],
        count: 0,
        end: 0,
    });
    walker.scan.locals = std::mem::take(spans);
    let whole = walker.walk_one().is_ok();
    *spans = std::mem::take(&mut walker.scan.locals);
    let roots = walker.roots.filter(|_| whole)?;
    Some(Control {
        end: walker.pos,
        ..roots
    })
}

/// Where the pids and references of the node named `node` sit in `bin`
/// past `from` (whole terms, one after another), added to `spans`; false
/// when that part of `bin` is not whole terms.
pub(crate) fn local_spans_from(
    bin: &[u8],
    from: usize,
    node: &[u8],
    spans: &mut Vec<(usize, usize)>,
) -> bool {
    let mut walker = Walker::new(bin, from, any_atom);
    walker.local_node = Some(node);
    walker.scan.locals = std::mem::take(spans);
    let whole = walker.walk_all().is_ok();
    *spans = std::mem::take(&mut walker.scan.locals);
    whole
}

/// A walk on a normal scheduler is charged to the caller's timeslice, like
/// any other work it does.
fn charge(env: Env, visits: u64, budget: Option<u64>) {
    if let Some(b) = budget {
        let percent = (visits.saturating_mul(100) / b).clamp(1, 100) as i32;
        rustler::schedule::consume_timeslice(env, percent);
    }
}

/// `etf_scan(Bin, MaxNewAtoms)`: `{ok, Size, New, Unchecked, Funs, Memory}`,
/// `{error, Why}`, or `dirty` when the term needs more than a short NIF call
/// (then call `etf_scan_dirty/2`).
#[rustler::nif]
fn etf_scan<'a>(env: Env<'a>, bin: Binary<'a>, max_new: u64) -> NifResult<Term<'a>> {
    run(env, bin, max_new, Some(SCHEDULER_BUDGET))
}

/// `etf_scan/2` without a budget, on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn etf_scan_dirty<'a>(env: Env<'a>, bin: Binary<'a>, max_new: u64) -> NifResult<Term<'a>> {
    run(env, bin, max_new, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan_with(bin: &[u8], known: &[&[u8]], budget: Option<u64>) -> Result<Scan, Failure> {
        scan(bin, 10, budget, |tag, name: &[u8]| {
            latin1(tag, name).map(|t| known.contains(&&*t))
        })
        .0
    }

    #[test]
    fn a_tuple_of_small_integers() {
        // {1, 2}
        let s = scan_with(&[131, 104, 2, 97, 1, 97, 2], &[], None).unwrap();
        assert_eq!((s.size, s.memory, s.funs), (7, 24, 0));
    }

    #[test]
    fn trailing_bytes_are_not_the_term() {
        let s = scan_with(&[131, 106, 1, 2, 3], &[], None).unwrap();
        assert_eq!(s.size, 2);
    }

    #[test]
    fn new_atoms_are_named_once_and_known_ones_not_at_all() {
        // [new, ok, new]
        let bin = [
            131, 108, 0, 0, 0, 3, 119, 3, b'n', b'e', b'w', 119, 2, b'o', b'k', 119, 3, b'n', b'e',
            b'w', 106,
        ];
        let s = scan_with(&bin, &[b"ok"], None).unwrap();
        assert_eq!(s.new, vec![b"new".to_vec()]);
    }

    #[test]
    fn utf8_names_outside_latin1_are_left_to_the_caller() {
        let bin = [131, 119, 3, 0xE2, 0x82, 0xAC];
        let s = scan_with(&bin, &[], None).unwrap();
        assert_eq!(s.unchecked, vec![vec![0xE2, 0x82, 0xAC]]);
        assert!(s.new.is_empty());
    }

    #[test]
    fn the_atom_budget_is_enforced() {
        let mut bin = vec![131, 108, 0, 0, 0, 11];
        for i in 0..11u8 {
            bin.extend_from_slice(&[119, 2, b'a', b'a' + i]);
        }
        bin.push(106);
        assert_eq!(scan_with(&bin, &[], None), Err(Failure::AtomBudget));
    }

    #[test]
    fn lying_lengths_truncate() {
        assert_eq!(
            scan_with(&[131, 108, 255, 255, 255, 255, 97, 1], &[], None),
            Err(Failure::Truncated)
        );
        assert_eq!(
            scan_with(&[131, 109, 0, 0, 1, 0, 1], &[], None),
            Err(Failure::Truncated)
        );
    }

    #[test]
    fn unknown_and_cache_tags_are_refused() {
        assert_eq!(
            scan_with(&[131, 82, 0], &[], None),
            Err(Failure::BadTag(82))
        );
        assert_eq!(scan_with(&[130, 106], &[], None), Err(Failure::BadVersion));
    }

    #[test]
    fn local_identifiers_are_found_in_every_term() {
        // {<a@b.1.2>, <c@d.1.2>} then #Ref<a@b.1>: NEWER_REFERENCE with one word
        let mut bin = vec![131, 104, 2];
        bin.extend_from_slice(&[
            88, 119, 3, b'a', b'@', b'b', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
        ]);
        bin.extend_from_slice(&[
            88, 119, 3, b'c', b'@', b'd', 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3,
        ]);
        let second = bin.len();
        bin.extend_from_slice(&[
            131, 90, 0, 1, 119, 3, b'a', b'@', b'b', 0, 0, 0, 4, 0, 0, 0, 5,
        ]);
        let mut found = Vec::new();
        let control = control_spans(&bin, b"a@b", &mut found).unwrap();
        assert_eq!(control.end, second);
        assert_eq!(&control.starts[..control.count], &[1, 3, 21]);
        assert!(local_spans_from(&bin, control.end, b"a@b", &mut found));
        assert_eq!(found, vec![(3, 21), (second + 1, bin.len())]);
    }

    #[test]
    fn elements_are_found_past_nested_terms() {
        // {[1, {2}], 3, {}}
        let bin = [
            131, 104, 3, 108, 0, 0, 0, 2, 97, 1, 104, 1, 97, 2, 106, 97, 3, 104, 0,
        ];
        let control = control_spans(&bin, b"a@b", &mut Vec::new()).unwrap();
        assert_eq!(&control.starts[..control.count], &[1, 3, 15, 17]);
        assert_eq!(control.end, bin.len());
        assert_eq!(control_spans(&bin[..10], b"a@b", &mut Vec::new()), None);
    }

    #[test]
    fn a_connection_knows_what_the_node_knows_and_nothing_else() {
        let long = [b'k'; 40];
        for name in [&b"cached_known"[..], &long[..]] {
            know(name);
        }
        let mut known = KnownAtoms::default();
        // Every slot filled with known names, evicting one another.
        let names: Vec<Vec<u8>> = (0..600)
            .map(|i| format!("known_{i}").into_bytes())
            .collect();
        names.iter().for_each(|n| know(n));
        for _ in 0..2 {
            assert!(names.iter().all(|n| known.knows(119, n)));
            assert!(known.knows(119, b"cached_known"));
            assert!(known.knows(119, &long));
            assert!(!known.knows(119, b"cached_unknown"));
            assert!(!known.knows(119, b""));
            assert!(!known.knows(119, &[b'k'; 41]));
        }
    }

    #[test]
    fn a_long_walk_asks_for_a_dirty_scheduler() {
        let mut bin = vec![131, 108, 0, 0, 0, 100];
        bin.extend(std::iter::repeat_n([97, 1], 100).flatten());
        bin.push(106);
        assert_eq!(scan_with(&bin, &[], Some(50)), Err(Failure::Budget));
        assert!(scan_with(&bin, &[], None).is_ok());
    }
}
