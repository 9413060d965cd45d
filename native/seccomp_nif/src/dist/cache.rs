//! A connection's atom cache (`DFLAG_DIST_HDR_ATOM_CACHE`). Each packet
//! starts with a distribution header that lists the atoms its terms name
//! by index (`ATOM_CACHE_REF`), new ones with their text; the receiving
//! runtime keeps them in 2048 slots, and later packets name them by slot
//! alone. The driver keeps the same slots, one set per direction, updated
//! from every packet in the order the runtime gets it, and rewrites each
//! packet into the form a connection without the cache uses (`112`, then
//! version-tagged terms, every atom as text), which is the only form the
//! filter and the capability checks read.
//!
//! The header is checked as the runtime checks it, and more strictly (a
//! header it would refuse closes the connection here first). A packet the
//! filter refuses still reaches the runtime as its header and a message to
//! no process (`neutral`), so the runtime's slots never differ from these.

use crate::etf;

const SLOTS: usize = 2048;
const VERSION: u8 = 131;
const DIST_HEADER: u8 = 68;
const PASS_THROUGH: u8 = 112;
/// The most characters an atom has.
const ATOM_CHARS: usize = 255;

/// Why a header or packet cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub enum Bad {
    /// The bytes end inside the header.
    Truncated,
    /// Not a header the runtime would take, or terms it could not decode.
    Corrupt,
    /// With every atom as text, the packet would be larger than allowed
    /// (a short reference may stand for a long name, many times over), or
    /// there is no memory for it.
    TooLarge,
}

/// One direction's slots: the text of the atom each holds.
pub struct AtomCache {
    slots: Vec<Option<Box<[u8]>>>,
}

impl Default for AtomCache {
    fn default() -> Self {
        AtomCache {
            slots: vec![None; SLOTS],
        }
    }
}

/// A packet's header, read against the slots as they were before it.
pub struct Header {
    /// Where the terms start.
    pub body: usize,
    entries: Vec<Entry>,
}

/// The `ATOM_CACHE_REF` index `i` names the atom of `entries[i]`.
struct Entry {
    slot: usize,
    /// Where the text lies in the packet: of this entry, which sets the
    /// slot, or of an earlier entry of the packet that set it; `None`: the
    /// slot's text from before.
    text: Option<(usize, usize)>,
    sets: bool,
}

impl Header {
    /// Whether the packet puts atoms into slots (the runtime then creates them).
    pub fn sets_slots(&self) -> bool {
        self.entries.iter().any(|e| e.sets)
    }

    /// The texts of the atoms the packet puts into slots.
    pub fn new_names<'a>(&'a self, packet: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(|e| e.sets)
            .filter_map(|e| e.text.map(|(from, to)| &packet[from..to]))
    }
}

impl AtomCache {
    /// The header at the start of `packet`.
    pub fn read(&self, packet: &[u8]) -> Result<Header, Bad> {
        match packet {
            [VERSION, DIST_HEADER, ..] => {}
            [] | [VERSION] => return Err(Bad::Truncated),
            _ => return Err(Bad::Corrupt),
        }
        let count = *packet.get(2).ok_or(Bad::Truncated)? as usize;
        let mut at = 3;
        if count == 0 {
            return Ok(Header {
                body: at,
                entries: Vec::new(),
            });
        }
        let flag_bytes = count / 2 + 1;
        let flags = packet.get(at..at + flag_bytes).ok_or(Bad::Truncated)?;
        at += flag_bytes;
        let nibble = |i: usize| (flags[i / 2] >> (4 * (i % 2))) & 0x0F;
        let long_atoms = nibble(count) & 1 != 0;
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for i in 0..count {
            let flag = nibble(i);
            let slot =
                usize::from(flag & 7) << 8 | usize::from(*packet.get(at).ok_or(Bad::Truncated)?);
            at += 1;
            let sets = flag & 8 != 0;
            let text = if sets {
                let (len, from) = if long_atoms {
                    let b = packet.get(at..at + 2).ok_or(Bad::Truncated)?;
                    (usize::from(u16::from_be_bytes([b[0], b[1]])), at + 2)
                } else {
                    (usize::from(*packet.get(at).ok_or(Bad::Truncated)?), at + 1)
                };
                let name = packet.get(from..from + len).ok_or(Bad::Truncated)?;
                if !atom_text(name) {
                    return Err(Bad::Corrupt);
                }
                at = from + len;
                Some((from, at))
            } else {
                // Set earlier in this packet, or before it.
                match entries.iter().rev().find(|e| e.slot == slot && e.sets) {
                    Some(earlier) => earlier.text,
                    None if self.slots[slot].is_some() => None,
                    None => return Err(Bad::Corrupt),
                }
            };
            entries.push(Entry { slot, text, sets });
        }
        Ok(Header { body: at, entries })
    }

    /// Put the atoms of a packet read with `read` into their slots.
    pub fn commit(&mut self, packet: &[u8], header: &Header) {
        for e in header.entries.iter().filter(|e| e.sets) {
            if let Some((from, to)) = e.text {
                self.slots[e.slot] = Some(packet[from..to].into());
            }
        }
    }

    /// The text of the atom `ATOM_CACHE_REF` index `index` names (before `commit`).
    fn name<'a>(&'a self, packet: &'a [u8], header: &Header, index: u8) -> Option<&'a [u8]> {
        let entry = header.entries.get(usize::from(index))?;
        match entry.text {
            Some((from, to)) => Some(&packet[from..to]),
            None => self.slots[entry.slot].as_deref(),
        }
    }

    /// Whether the atom `index` names is `name`.
    pub fn names(&self, packet: &[u8], header: &Header, index: u8, name: &[u8]) -> bool {
        self.name(packet, header, index) == Some(name)
    }

    /// The indexes of the packet's entries that name `name` (before `commit`).
    pub fn indexes_naming(&self, packet: &[u8], header: &Header, name: &[u8]) -> Vec<u8> {
        (0..header.entries.len())
            .filter(|&i| self.names(packet, header, i as u8, name))
            .map(|i| i as u8)
            .collect()
    }

    /// `packet` (read with `read`, before `commit`) in the form without the
    /// atom cache, into `out`: its control term and the payload if it has
    /// one, and nothing after. Only the control term when `control_only`.
    /// At most `limit` bytes. `refs` is room for the walk.
    pub fn plain(
        &self,
        packet: &[u8],
        header: &Header,
        control_only: bool,
        limit: usize,
        out: &mut Vec<u8>,
        refs: &mut Vec<usize>,
    ) -> Result<(), Bad> {
        out.clear();
        out.push(PASS_THROUGH);
        let mut at = header.body;
        for term in 0..2 {
            if term == 1 && (control_only || at == packet.len()) {
                break;
            }
            let end = etf::cache_refs(packet, at, refs).ok_or(Bad::Corrupt)?;
            let name = |r: usize| self.name(packet, header, packet[r + 1]).ok_or(Bad::Corrupt);
            let mut size = 1 + end - at;
            for &r in refs.iter() {
                size += atom_len(name(r)?) - 2;
            }
            if out.len() + size > limit || out.try_reserve(size).is_err() {
                return Err(Bad::TooLarge);
            }
            out.push(VERSION);
            for &r in refs.iter() {
                out.extend_from_slice(&packet[at..r]);
                push_atom(out, name(r)?);
                at = r + 2;
            }
            out.extend_from_slice(&packet[at..end]);
            at = end;
        }
        if !control_only && at != packet.len() {
            return Err(Bad::Corrupt);
        }
        Ok(())
    }
}

/// The bytes an atom of this name takes as text.
fn atom_len(name: &[u8]) -> usize {
    name.len() + if name.len() <= 255 { 2 } else { 3 }
}

/// An atom's text as the runtime takes it from a header: UTF-8 of at most
/// 255 characters.
fn atom_text(name: &[u8]) -> bool {
    std::str::from_utf8(name).is_ok_and(|s| s.chars().count() <= ATOM_CHARS)
}

fn push_atom(out: &mut Vec<u8>, name: &[u8]) {
    match u8::try_from(name.len()) {
        Ok(len) => out.extend_from_slice(&[119, len]),
        Err(_) => {
            out.push(118);
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(name);
}

/// `packet`'s header (read with `read`) followed by a message the runtime
/// delivers to no process: a `SEND_SENDER` from and to a pid of the peer
/// node `peer`, which the runtime looks up among its own and drops. The
/// runtime takes the header's atoms into its slots, as the sender expects.
pub fn neutral(packet: &[u8], header: &Header, peer: &[u8]) -> Vec<u8> {
    let mut pid = vec![88];
    push_atom(&mut pid, peer);
    pid.extend_from_slice(&[0; 12]);
    let mut out = Vec::with_capacity(header.body + 6 + 2 * pid.len());
    out.extend_from_slice(&packet[..header.body]);
    out.extend_from_slice(&[104, 3, 97, 22]);
    out.extend_from_slice(&pid);
    out.extend_from_slice(&pid);
    out.push(106);
    out
}

/// A packet in the form without the atom cache (`112`, version-tagged
/// control term and payload) in the form with it: a header naming no atom,
/// then the terms without their version bytes. `None` if it is not whole terms.
pub fn with_header(plain: &[u8]) -> Option<Vec<u8>> {
    let terms = plain.strip_prefix(&[PASS_THROUGH])?;
    let mut out = vec![VERSION, DIST_HEADER, 0];
    let mut at = 0;
    while at < terms.len() {
        if terms[at] != VERSION {
            return None;
        }
        let end = etf::skip_term(terms, at + 1)?;
        out.extend_from_slice(&terms[at + 1..end]);
        at = end;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header setting or naming the given slots (`Some(text)`: sets it).
    fn header(entries: &[(usize, Option<&[u8]>)], long: bool) -> Vec<u8> {
        let n = entries.len();
        let mut flags = vec![0u8; n / 2 + 1];
        let mut set = |i: usize, v: u8| flags[i / 2] |= v << (4 * (i % 2));
        for (i, (slot, text)) in entries.iter().enumerate() {
            set(i, (slot >> 8) as u8 | if text.is_some() { 8 } else { 0 });
        }
        if long {
            set(n, 1);
        }
        let mut out = vec![VERSION, DIST_HEADER, n as u8];
        if n > 0 {
            out.extend(flags);
        }
        for (slot, text) in entries {
            out.push(*slot as u8);
            if let Some(t) = text {
                if long {
                    out.extend_from_slice(&(t.len() as u16).to_be_bytes());
                } else {
                    out.push(t.len() as u8);
                }
                out.extend_from_slice(t);
            }
        }
        out
    }

    fn plain_of(cache: &AtomCache, packet: &[u8]) -> Result<Vec<u8>, Bad> {
        let h = cache.read(packet)?;
        let mut out = Vec::new();
        cache.plain(packet, &h, false, usize::MAX, &mut out, &mut Vec::new())?;
        Ok(out)
    }

    #[test]
    fn references_become_atoms_and_slots_persist() {
        let mut cache = AtomCache::default();
        // {msg, ref0} then payload ref1
        let mut p = header(
            &[(5, Some(b"hello")), (0x701, Some(b"w\xC3\xB6rld"))],
            false,
        );
        let body = [104, 2, 82, 0, 82, 1, 82, 1];
        p.extend_from_slice(&body);
        let h = cache.read(&p).unwrap();
        assert!(h.sets_slots());
        let mut out = Vec::new();
        cache
            .plain(&p, &h, false, 4096, &mut out, &mut Vec::new())
            .unwrap();
        let mut want = vec![112, 131, 104, 2, 119, 5];
        want.extend_from_slice(b"hello");
        want.extend_from_slice(&[119, 6]);
        want.extend_from_slice(b"w\xC3\xB6rld");
        want.extend_from_slice(&[131, 119, 6]);
        want.extend_from_slice(b"w\xC3\xB6rld");
        assert_eq!(out, want);
        cache.commit(&p, &h);
        // A later packet names the slots alone, in the other order.
        let mut q = header(&[(0x701, None), (5, None)], false);
        q.extend_from_slice(&[82, 1, 82, 0]);
        let mut want = vec![112, 131, 119, 5];
        want.extend_from_slice(b"hello");
        want.extend_from_slice(&[131, 119, 6]);
        want.extend_from_slice(b"w\xC3\xB6rld");
        assert_eq!(plain_of(&cache, &q).unwrap(), want);
    }

    #[test]
    fn an_entry_names_what_the_slot_held_when_it_was_read() {
        let mut cache = AtomCache::default();
        let mut p = header(&[(9, Some(b"old"))], false);
        p.extend_from_slice(&[82, 0]);
        let h = cache.read(&p).unwrap();
        cache.commit(&p, &h);
        // Named before it is set again in the same packet, then after.
        let mut q = header(&[(9, None), (9, Some(b"new")), (9, None)], false);
        q.extend_from_slice(&[104, 2, 82, 0, 82, 2]);
        let out = plain_of(&cache, &q).unwrap();
        assert_eq!(
            out,
            [112, 131, 104, 2, 119, 3, b'o', b'l', b'd', 119, 3, b'n', b'e', b'w']
        );
        let h = cache.read(&q).unwrap();
        cache.commit(&q, &h);
        let mut r = header(&[(9, None)], false);
        r.push(82);
        r.push(0);
        assert_eq!(
            plain_of(&cache, &r).unwrap(),
            [112, 131, 119, 3, b'n', b'e', b'w']
        );
    }

    #[test]
    fn long_atoms_and_pid_nodes() {
        let cache = AtomCache::default();
        let long = "ä".repeat(200);
        let mut p = header(&[(1, Some(long.as_bytes())), (2, Some(b"n@h"))], true);
        // A pid whose node is a reference, and the long atom.
        p.extend_from_slice(&[104, 2, 88, 82, 1]);
        p.extend_from_slice(&[0; 12]);
        p.extend_from_slice(&[82, 0]);
        let out = plain_of(&cache, &p).unwrap();
        let mut want = vec![112, 131, 104, 2, 88, 119, 3, b'n', b'@', b'h'];
        want.extend_from_slice(&[0; 12]);
        want.extend_from_slice(&[118, 1, 144]);
        want.extend_from_slice(long.as_bytes());
        assert_eq!(out, want);
    }

    #[test]
    fn headers_the_runtime_refuses_are_refused() {
        let cache = AtomCache::default();
        // A slot never set; a text that is not UTF-8; too many characters;
        // a reference past the header's entries; a version byte after it;
        // bytes after the payload; the form without the cache.
        let mut unset = header(&[(3, None)], false);
        unset.extend_from_slice(&[82, 0]);
        let mut latin1 = header(&[(3, Some(b"\xE4"))], false);
        latin1.extend_from_slice(&[82, 0]);
        let many = "a".repeat(256);
        let mut long = header(&[(3, Some(many.as_bytes()))], true);
        long.extend_from_slice(&[82, 0]);
        let mut past = header(&[(3, Some(b"a"))], false);
        past.extend_from_slice(&[82, 1]);
        let mut version = header(&[], false);
        version.extend_from_slice(&[131, 106]);
        let mut after = header(&[], false);
        after.extend_from_slice(&[106, 106, 106]);
        for p in [
            unset,
            latin1,
            long,
            past,
            version,
            after,
            vec![112, 131, 106],
        ] {
            assert_eq!(plain_of(&cache, &p), Err(Bad::Corrupt), "{p:?}");
        }
        let cut = header(&[(3, Some(b"abc"))], false);
        assert_eq!(
            cache.read(&cut[..cut.len() - 1]).err(),
            Some(Bad::Truncated)
        );
    }

    #[test]
    fn references_to_long_names_are_bounded() {
        let cache = AtomCache::default();
        let long = "x".repeat(255);
        let mut p = header(&[(1, Some(long.as_bytes()))], false);
        // A list of 1000 references to the long name: 2 KB that read as 257 KB.
        p.extend_from_slice(&[108, 0, 0, 3, 232]);
        for _ in 0..1000 {
            p.extend_from_slice(&[82, 0]);
        }
        p.push(106);
        let h = cache.read(&p).unwrap();
        let mut out = Vec::new();
        let plain =
            |limit, out: &mut Vec<u8>| cache.plain(&p, &h, false, limit, out, &mut Vec::new());
        assert_eq!(plain(100_000, &mut out), Err(Bad::TooLarge));
        assert_eq!(plain(1 + 1 + 5 + 1000 * 257 + 1, &mut out), Ok(()));
        assert_eq!(out.len(), 1 + 1 + 5 + 1000 * 257 + 1);
    }

    #[test]
    fn plain_packets_gain_an_empty_header() {
        let plain = [112, 131, 104, 1, 97, 1, 131, 106];
        assert_eq!(
            with_header(&plain).unwrap(),
            [131, 68, 0, 104, 1, 97, 1, 106]
        );
        assert_eq!(with_header(&[112, 131, 104]), None);
        let packet = with_header(&plain).unwrap();
        let cache = AtomCache::default();
        assert_eq!(plain_of(&cache, &packet).unwrap(), plain);
    }

    #[test]
    fn a_neutral_packet_keeps_the_header() {
        let mut p = header(&[(4, Some(b"x"))], false);
        let body_at = p.len();
        p.extend_from_slice(&[82, 0]);
        let cache = AtomCache::default();
        let h = cache.read(&p).unwrap();
        let n = neutral(&p, &h, b"peer@h");
        assert_eq!(&n[..body_at], &p[..body_at]);
        let hn = cache.read(&n).unwrap();
        let mut out = Vec::new();
        cache
            .plain(&n, &hn, false, usize::MAX, &mut out, &mut Vec::new())
            .unwrap();
        assert_eq!(&out[..6], [112, 131, 104, 3, 97, 22]);
    }

    #[test]
    fn any_bytes_are_read_or_refused_without_a_panic() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cache = AtomCache::default();
        let mut valid = header(&[(5, Some(b"abc")), (700, Some(b"d")), (5, None)], false);
        valid.extend_from_slice(&[104, 3, 82, 0, 82, 1, 88, 82, 2]);
        valid.extend_from_slice(&[0; 12]);
        valid.extend_from_slice(&[82, 1]);
        let (mut read, mut plain) = (0, 0);
        for round in 0..100_000 {
            let mut p = if round % 2 == 0 {
                valid.clone()
            } else {
                let mut p = vec![131, 68];
                p.extend((0..next() % 40).map(|_| next() as u8));
                p
            };
            for _ in 0..next() % 4 {
                let at = (next() as usize) % p.len();
                p[at] = next() as u8;
            }
            p.truncate(p.len() - (next() as usize % 3).min(p.len()));
            if let Ok(h) = cache.read(&p) {
                read += 1;
                let mut out = Vec::new();
                if cache
                    .plain(&p, &h, false, 4096, &mut out, &mut Vec::new())
                    .is_ok()
                {
                    plain += 1;
                    assert_eq!(out[..2], [112, 131]);
                }
                cache.indexes_naming(&p, &h, b"abc");
                neutral(&p, &h, b"peer@h");
                cache.commit(&p, &h);
            }
        }
        assert!(read > 1000 && plain > 1000, "{read} {plain}");
    }
}
