//! The carrier's TCP connections after the handshake: a port driver that is
//! the connection's distribution controller, so the runtime hands it
//! outgoing packets directly and it hands the runtime incoming ones.
//!
//! Every incoming packet is either one `fast::accepts` proves the filter
//! would accept (delivered at once), or it goes to the connection's receiver
//! process (the port's connected process) as `{Port, packet, Bin}` and waits
//! for its verdict; packets behind it wait too, so order is kept. Outgoing
//! packets are recorded in the connection's capabilities before they are
//! written. Frames are `<<Length:32, Packet/binary>>`; a frame over the
//! rules' `max_message_bytes` is read and thrown away, and its first bytes
//! go to the receiver as `{Port, too_large, Length, Head}`, which waits for
//! a verdict (always no) like a packet.
//!
//! Port control commands (binary results): see the `CMD_` constants.

use std::collections::VecDeque;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_uint, c_ulong, c_void};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::ffi::*;
use super::{caps, fast, Shared};
use crate::etf;

const CMD_ACCEPT: c_uint = 1;
const CMD_DROP: c_uint = 2;
const CMD_INJECT: c_uint = 3;
const CMD_TICK: c_uint = 4;
const CMD_GETSTAT: c_uint = 5;
const CMD_ENABLE: c_uint = 6;
const CMD_BACKED_UP: c_uint = 7;

/// Bytes read from the socket per wake-up before others get a turn.
const READ_SLICE: usize = 1 << 20;
const READ_CHUNK: usize = 64 * 1024;
/// Bytes of packets held behind one the receiver judges before reading stops.
const HOLD_LIMIT: usize = 8 << 20;
/// Of a discarded frame, the bytes kept to find its sender.
const HEAD_BYTES: usize = 64 * 1024;
/// Output that waits this long with no byte of it written or acknowledged:
/// the peer is not reading.
const STALLED: std::time::Duration = std::time::Duration::from_millis(20);
/// Queued output that makes the port busy (senders wait), and where it stops.
const HIGH_WATERMARK: usize = 1 << 20;
const LOW_WATERMARK: usize = 512 * 1024;
/// A packet at least this large has its caps read without joining it whole
/// unless it names this node past its control term.
const JOIN_BYTES: usize = 64 * 1024;
/// A packet up to this size is joined before it is searched for this node's name.
const SMALL_BYTES: usize = 4096;
const IOV_MAX: usize = 1024;

pub static NAME: &CStr = c"libseccomp_nif";

/// A packet just read (in the read buffer), or one held behind another.
enum Incoming<'a> {
    Read(&'a [u8]),
    Held(Vec<u8>),
}

impl Incoming<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Incoming::Read(b) => b,
            Incoming::Held(v) => v,
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            Incoming::Read(b) => b.to_vec(),
            Incoming::Held(v) => v,
        }
    }
}

struct Skip {
    len: usize,
    need: usize,
    head: Vec<u8>,
}

/// What the receiver judges: a packet (delivered if it says yes), or the
/// first bytes of a frame read and thrown away (nothing to deliver).
enum Judged {
    Packet(Vec<u8>),
    Discarded,
}

/// Packets and discarded frames behind the one the receiver judges.
enum Held {
    Packet(Vec<u8>),
    Discarded(usize, Vec<u8>),
}

impl Held {
    fn len(&self) -> usize {
        match self {
            Held::Packet(p) => p.len(),
            Held::Discarded(_, head) => head.len(),
        }
    }
}

struct Conn {
    port: ErlDrvPort,
    port_term: ErlDrvTermData,
    atoms: [ErlDrvTermData; 3],
    fd: c_int,
    shared: Arc<Shared>,
    send_timeout_ms: u64,
    reading: bool,
    paused: bool,
    /// Whether the runtime polls the socket (then it closes it).
    selected: bool,
    /// The port is closing: nothing more is read or delivered.
    failed: bool,
    /// Atoms this connection's packets name that are known to exist.
    known: etf::KnownAtoms,
    /// Room to join an outgoing packet's first bytes in, and to list its segments.
    scratch: Vec<u8>,
    iov: Vec<libc::iovec>,
    inbuf: Vec<u8>,
    skip: Option<Skip>,
    waiting: Option<Judged>,
    held: VecDeque<Held>,
    held_bytes: usize,
    busy: bool,
    writing: bool,
    last_progress: Instant,
    /// The socket's bytes the peer had not acknowledged when last asked.
    unacked: c_int,
    recv_cnt: u64,
    send_cnt: u64,
}

pub fn entry() -> *mut ErlDrvEntry {
    static mut ENTRY: ErlDrvEntry = ErlDrvEntry {
        init: None,
        start: Some(start),
        stop: Some(stop),
        output: None,
        ready_input: Some(ready_input),
        ready_output: Some(ready_output),
        driver_name: NAME.as_ptr(),
        finish: None,
        handle: std::ptr::null_mut(),
        control: Some(control),
        timeout: Some(timeout),
        outputv: Some(outputv),
        ready_async: None,
        flush: None,
        call: std::ptr::null_mut(),
        unused_event_callback: std::ptr::null_mut(),
        extended_marker: ERL_DRV_EXTENDED_MARKER,
        major_version: ERL_DRV_EXTENDED_MAJOR_VERSION,
        minor_version: ERL_DRV_EXTENDED_MINOR_VERSION,
        driver_flags: ERL_DRV_FLAG_USE_PORT_LOCKING | ERL_DRV_FLAG_SOFT_BUSY,
        handle2: std::ptr::null_mut(),
        process_exit: std::ptr::null_mut(),
        stop_select: Some(stop_select),
        emergency_close: std::ptr::null_mut(),
    };
    // The runtime owns the entry from here on (it writes its handles).
    std::ptr::addr_of_mut!(ENTRY)
}

fn event(fd: c_int) -> ErlDrvEvent {
    fd as isize as ErlDrvEvent
}

/// `open_port({spawn_driver, "libseccomp_nif Id Fd SendTimeoutMs"}, [binary])`:
/// `Id` names the connection state `dist_conn_new/2` made, `Fd` a connected
/// socket (duplicated here: its owner keeps its own).
extern "C" fn start(port: ErlDrvPort, command: *mut c_char) -> ErlDrvData {
    let command = unsafe { CStr::from_ptr(command) }.to_string_lossy();
    let args: Vec<u64> = command
        .split_whitespace()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [id, fd, send_timeout_ms] = args[..] else {
        return ERL_DRV_ERROR_BADARG;
    };
    let Some(shared) = super::claim(id) else {
        return ERL_DRV_ERROR_BADARG;
    };
    let fd = unsafe { libc::dup(fd as c_int) };
    if fd < 0 {
        return ERL_DRV_ERROR_BADARG;
    }
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        set_port_control_flags(port, PORT_CONTROL_FLAG_BINARY);
    }
    let atoms = unsafe {
        [
            driver_mk_atom(c"packet".as_ptr()),
            driver_mk_atom(c"too_large".as_ptr()),
            driver_mk_atom(c"caps_full".as_ptr()),
        ]
    };
    let conn = Box::new(Conn {
        port,
        port_term: unsafe { driver_mk_port(port) },
        atoms,
        fd,
        shared,
        send_timeout_ms,
        reading: false,
        paused: false,
        selected: false,
        failed: false,
        known: etf::KnownAtoms::default(),
        scratch: Vec::new(),
        iov: Vec::new(),
        inbuf: Vec::new(),
        skip: None,
        waiting: None,
        held: VecDeque::new(),
        held_bytes: 0,
        busy: false,
        writing: false,
        last_progress: Instant::now(),
        unacked: 0,
        recv_cnt: 0,
        send_cnt: 0,
    });
    Box::into_raw(conn) as ErlDrvData
}

fn conn<'a>(data: ErlDrvData) -> &'a mut Conn {
    unsafe { &mut *(data as *mut Conn) }
}

extern "C" fn stop(data: ErlDrvData) {
    let conn = unsafe { Box::from_raw(data as *mut Conn) };
    if conn.selected {
        // The runtime closes it through `stop_select` once it is safe.
        unsafe {
            driver_select(
                conn.port,
                event(conn.fd),
                ERL_DRV_READ | ERL_DRV_WRITE | ERL_DRV_USE,
                0,
            )
        };
    } else {
        unsafe { libc::close(conn.fd) };
    }
}

extern "C" fn stop_select(event: ErlDrvEvent, _reserved: *mut c_void) {
    unsafe { libc::close(event as isize as c_int) };
}

/// The bytes written to the socket that its peer has not acknowledged.
#[cfg(target_os = "linux")]
fn unacknowledged(fd: c_int) -> Option<c_int> {
    let mut unacked: c_int = 0;
    // SIOCOUTQ: the same request number as TIOCOUTQ.
    (unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut unacked) } == 0).then_some(unacked)
}

#[cfg(not(target_os = "linux"))]
fn unacknowledged(_fd: c_int) -> Option<c_int> {
    None
}

fn errno() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

// --- Input ------------------------------------------------------------------------------

extern "C" fn ready_input(data: ErlDrvData, _event: ErlDrvEvent) {
    let c = conn(data);
    if !c.reading || c.paused || c.failed {
        return;
    }
    let mut read = 0;
    while read < READ_SLICE && !c.paused {
        if c.inbuf.try_reserve(READ_CHUNK).is_err() {
            c.fail(c"out_of_memory");
            return;
        }
        let spare = c.inbuf.capacity() - c.inbuf.len();
        let n = unsafe {
            libc::recv(
                c.fd,
                c.inbuf.as_mut_ptr().add(c.inbuf.len()) as *mut c_void,
                spare,
                0,
            )
        };
        if n > 0 {
            unsafe { c.inbuf.set_len(c.inbuf.len() + n as usize) };
            read += n as usize;
            c.frames();
            if (n as usize) < spare {
                // A short read drained the socket: the runtime says when there is more.
                return;
            }
        } else if n == 0 {
            // Not `driver_failure_eof`: its exit is `normal`, which would
            // leave the connection's processes (and the socket they own) alive.
            c.fail(c"connection_closed");
            return;
        } else {
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return,
                e => {
                    c.fail_posix(e);
                    return;
                }
            }
        }
    }
}

impl Conn {
    /// Hands on every whole frame in `inbuf`.
    fn frames(&mut self) {
        let buf = std::mem::take(&mut self.inbuf);
        let mut at = 0;
        let max = self.shared.max_bytes();
        while !self.paused && !self.failed {
            let avail = buf.len() - at;
            if let Some(skip) = &mut self.skip {
                let take = skip.need.min(avail);
                let keep = take.min(HEAD_BYTES - skip.head.len().min(HEAD_BYTES));
                skip.head.extend_from_slice(&buf[at..at + keep]);
                skip.need -= take;
                at += take;
                if skip.need > 0 {
                    break;
                }
                let skip = self.skip.take().expect("skipping");
                self.too_large(skip.len, skip.head);
                continue;
            }
            if avail < 4 {
                break;
            }
            let len = u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]]) as usize;
            if len as u64 > max {
                self.skip = Some(Skip {
                    len,
                    need: len,
                    head: Vec::new(),
                });
                at += 4;
                continue;
            }
            if avail < 4 + len {
                break;
            }
            self.packet(Incoming::Read(&buf[at + 4..at + 4 + len]));
            at += 4 + len;
        }
        let mut buf = buf;
        buf.drain(..at);
        if let Some(frame) = buf.get(..4) {
            // Room for more of the frame that has begun, growing with what
            // has come of it: a length the peer only claims reserves no more
            // than the bytes it sent (and a chunk).
            let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as u64;
            if self.skip.is_none() && len <= max {
                let missing = (4 + len as usize).saturating_sub(buf.len());
                if buf
                    .try_reserve(missing.min(buf.len().max(READ_CHUNK)))
                    .is_err()
                {
                    self.fail(c"out_of_memory");
                }
            }
        }
        self.inbuf = buf;
    }

    /// One incoming packet: counted, and the local identifiers it names
    /// noted, when it is read (`Incoming::Held`: again, behind another).
    fn packet(&mut self, packet: Incoming) {
        let bytes = packet.bytes();
        if bytes.is_empty() {
            self.recv_cnt += 1;
            return;
        }
        let read = matches!(packet, Incoming::Read(_));
        let shared = Arc::clone(&self.shared);
        let mut caps = shared.caps.lock().expect("caps");
        if read {
            self.recv_cnt += 1;
            if !caps.named_by_peer(bytes, &shared.node, &shared.node_finder) {
                drop(caps);
                self.fail(c"too_many_unshown_identifiers");
                return;
            }
        }
        if self.waiting.is_some() {
            drop(caps);
            self.hold(Held::Packet(packet.into_vec()));
            return;
        }
        // While the peer does not read what this node sends, its spawn
        // requests go to the filter, which starts nothing for it (see
        // `backed_up`).
        let fast = if fast::spawn_request_packet(bytes) && self.backed_up() {
            None
        } else {
            fast::accepts(bytes, &shared, &mut caps, &mut self.known)
        };
        drop(caps);
        if let Some(kind) = fast {
            self.shared.accepted[kind as usize].fetch_add(1, Ordering::Relaxed);
            unsafe { driver_output(self.port, bytes.as_ptr() as *const c_char, bytes.len()) };
        } else {
            self.send_term(&[
                ERL_DRV_PORT,
                self.port_term,
                ERL_DRV_ATOM,
                self.atoms[0],
                ERL_DRV_BUF2BINARY,
                bytes.as_ptr() as ErlDrvTermData,
                bytes.len(),
                ERL_DRV_TUPLE,
                3,
            ]);
            self.waiting = Some(Judged::Packet(packet.into_vec()));
        }
    }

    /// Whether output to the peer has waited, with no byte of it written
    /// or acknowledged, for `STALLED`: the peer is not reading what it is
    /// sent, and gets no new process started for it (each would wait on
    /// the connection to answer it, holding memory). The peer's kernel
    /// acknowledges what arrives for as long as its receive buffer has
    /// room, so a peer that reads, however slowly or in bursts, keeps
    /// making progress; one that reads nothing stops within its buffer.
    fn backed_up(&mut self) -> bool {
        if unsafe { driver_sizeq(self.port) } == 0 {
            return false;
        }
        self.note_acknowledged();
        self.last_progress.elapsed() >= STALLED
    }

    /// Progress when the peer acknowledged bytes since the last call.
    fn note_acknowledged(&mut self) {
        if let Some(unacked) = unacknowledged(self.fd) {
            if unacked < self.unacked {
                self.last_progress = Instant::now();
            }
            self.unacked = unacked;
        }
    }

    fn hold(&mut self, held: Held) {
        self.held_bytes += held.len();
        self.held.push_back(held);
        if self.held_bytes > HOLD_LIMIT {
            self.pause(true);
        }
    }

    /// A frame over `max_message_bytes`, read and thrown away: its first
    /// bytes go to the receiver (to tell its sender), in order, and what
    /// comes behind waits for its verdict (no) as behind a packet's, so a
    /// peer's discarded frames never pile up in the receiver's mailbox.
    fn too_large(&mut self, len: usize, head: Vec<u8>) {
        self.recv_cnt += 1;
        if self.waiting.is_some() {
            self.hold(Held::Discarded(len, head));
        } else {
            self.tell_too_large(len, &head);
        }
    }

    fn tell_too_large(&mut self, len: usize, head: &[u8]) {
        self.waiting = Some(Judged::Discarded);
        self.send_term(&[
            ERL_DRV_PORT,
            self.port_term,
            ERL_DRV_ATOM,
            self.atoms[1],
            ERL_DRV_UINT,
            len,
            ERL_DRV_BUF2BINARY,
            head.as_ptr() as ErlDrvTermData,
            head.len(),
            ERL_DRV_TUPLE,
            4,
        ]);
    }

    fn send_term(&self, spec: &[ErlDrvTermData]) {
        unsafe { erl_drv_output_term(self.port_term, spec.as_ptr(), spec.len() as c_int) };
    }

    /// Close the port (and with it the connection and the processes linked to it).
    fn fail(&mut self, why: &CStr) {
        if !self.failed {
            self.failed = true;
            unsafe { driver_failure_atom(self.port, why.as_ptr()) };
        }
    }

    fn fail_posix(&mut self, errno: c_int) {
        if !self.failed {
            self.failed = true;
            unsafe { driver_failure_posix(self.port, errno) };
        }
    }

    fn pause(&mut self, on: bool) {
        self.paused = on;
        self.select(ERL_DRV_READ, !on);
    }

    /// Select the socket for reading or writing (`ERL_DRV_USE` only when
    /// turning on: with it, turning off would close the socket).
    fn select(&mut self, mode: c_int, on: bool) {
        let mode = if on { mode | ERL_DRV_USE } else { mode };
        self.selected |= on;
        unsafe { driver_select(self.port, event(self.fd), mode, on as c_int) };
    }

    /// The receiver's verdict on the packet it had: deliver it or not, then
    /// go on with the packets held behind it.
    fn resume(&mut self, accept: bool) {
        if let Some(Judged::Packet(p)) = self.waiting.take() {
            if accept {
                unsafe { driver_output(self.port, p.as_ptr() as *const c_char, p.len()) };
            }
        }
        while self.waiting.is_none() && !self.failed {
            let Some(held) = self.held.pop_front() else {
                break;
            };
            self.held_bytes -= held.len();
            match held {
                Held::Packet(p) => self.packet(Incoming::Held(p)),
                Held::Discarded(len, head) => self.tell_too_large(len, &head),
            }
        }
        if self.paused && self.held_bytes <= HOLD_LIMIT / 2 {
            self.pause(false);
            self.frames();
        }
    }
}

// --- Output -----------------------------------------------------------------------------

fn iovecs(ev: &ErlIOVec) -> &[SysIOVec] {
    if ev.iov.is_null() || ev.vsize <= 0 {
        return &[];
    }
    unsafe { std::slice::from_raw_parts(ev.iov, ev.vsize as usize) }
}

fn bytes(v: &SysIOVec) -> &[u8] {
    if v.iov_len == 0 {
        return &[];
    }
    unsafe { std::slice::from_raw_parts(v.iov_base as *const u8, v.iov_len) }
}

extern "C" fn outputv(data: ErlDrvData, ev: *mut ErlIOVec) {
    let c = conn(data);
    let (size, segments) = {
        let ev = unsafe { &*ev };
        c.show(ev);
        (ev.size, iovecs(ev))
    };
    c.send_cnt += 1;
    c.write_packet(
        size,
        |c, skip| unsafe { driver_enqv(c.port, ev, skip) },
        segments,
    );
}

impl Conn {
    /// Record what an outgoing packet shows the peer, before the peer can
    /// answer it. A packet that does not name this node shows nothing; of
    /// a large one, the payload is read only if it names this node.
    fn show(&mut self, ev: &ErlIOVec) {
        let segments = iovecs(ev);
        let shared = Arc::clone(&self.shared);
        let node = shared.node.as_slice();
        let finder = &shared.node_finder;
        let buf = &mut self.scratch;
        buf.clear();
        let payload_mentions = if ev.size <= SMALL_BYTES {
            // Joined first: one search, no bytes carried across segments.
            gather(segments, buf, SMALL_BYTES);
            if finder.find(buf).is_none() {
                return;
            }
            true
        } else {
            if !mentions(segments, finder, 0) {
                return;
            }
            gather(segments, buf, JOIN_BYTES);
            let payload_mentions = ev.size <= JOIN_BYTES
                || caps::control_len(buf).is_none_or(|end| mentions(segments, finder, end));
            if payload_mentions && ev.size > JOIN_BYTES {
                buf.clear();
                gather(segments, buf, usize::MAX);
            }
            payload_mentions
        };
        let full = shared
            .caps
            .lock()
            .expect("caps")
            .show(buf, node, payload_mentions);
        if full {
            self.send_term(&[
                ERL_DRV_PORT,
                self.port_term,
                ERL_DRV_ATOM,
                self.atoms[2],
                ERL_DRV_TUPLE,
                2,
            ]);
        }
    }

    /// Write a frame of `size` bytes in `segments` after its header, queueing
    /// what the socket does not take now (`enqueue(skip)` queues the
    /// segments past their first `skip` bytes).
    fn write_packet(
        &mut self,
        size: usize,
        enqueue: impl FnOnce(&mut Conn, usize) -> c_int,
        segments: &[SysIOVec],
    ) {
        let header = (size as u32).to_be_bytes();
        if unsafe { driver_sizeq(self.port) } > 0 {
            unsafe { driver_enq(self.port, header.as_ptr() as *const c_char, 4) };
            enqueue(self, 0);
        } else {
            let mut iov = std::mem::take(&mut self.iov);
            iov.clear();
            iov.push(libc::iovec {
                iov_base: header.as_ptr() as *mut c_void,
                iov_len: 4,
            });
            for s in segments.iter().filter(|s| s.iov_len > 0).take(IOV_MAX - 1) {
                iov.push(libc::iovec {
                    iov_base: s.iov_base as *mut c_void,
                    iov_len: s.iov_len,
                });
            }
            let n = unsafe { libc::writev(self.fd, iov.as_ptr(), iov.len() as c_int) };
            iov.clear();
            self.iov = iov;
            let written = if n >= 0 {
                n as usize
            } else {
                match errno() {
                    libc::EAGAIN | libc::EINTR => 0,
                    e => {
                        self.fail_posix(e);
                        return;
                    }
                }
            };
            if written == 4 + size {
                return;
            }
            if written < 4 {
                unsafe {
                    driver_enq(
                        self.port,
                        header[written..].as_ptr() as *const c_char,
                        4 - written,
                    )
                };
                enqueue(self, 0);
            } else {
                enqueue(self, written - 4);
            }
            self.last_progress = Instant::now();
            self.wait_writable(true);
            self.arm_send_timer();
        }
        if !self.busy && unsafe { driver_sizeq(self.port) } > HIGH_WATERMARK {
            self.busy = true;
            unsafe { set_busy_port(self.port, 1) };
        }
    }

    fn write_bytes(&mut self, packet: &[u8]) {
        let segment = SysIOVec {
            iov_base: packet.as_ptr() as *mut c_char,
            iov_len: packet.len(),
        };
        self.write_packet(
            packet.len(),
            |c, skip| unsafe {
                driver_enq(
                    c.port,
                    packet[skip..].as_ptr() as *const c_char,
                    packet.len() - skip,
                )
            },
            &[segment],
        );
    }

    fn wait_writable(&mut self, on: bool) {
        if self.writing != on {
            self.writing = on;
            self.select(ERL_DRV_WRITE, on);
        }
    }

    fn arm_send_timer(&mut self) {
        if unsafe { driver_sizeq(self.port) } > 0 {
            let left = self
                .send_timeout_ms
                .saturating_sub(self.last_progress.elapsed().as_millis() as u64);
            unsafe { driver_set_timer(self.port, left as c_ulong) };
        }
    }
}

/// The first `limit` bytes of `segments`, into `buf`.
fn gather(segments: &[SysIOVec], buf: &mut Vec<u8>, limit: usize) {
    for s in segments {
        let b = bytes(s);
        let room = limit - buf.len();
        buf.extend_from_slice(&b[..b.len().min(room)]);
        if buf.len() == limit {
            break;
        }
    }
}

/// Whether this node's name occurs in the bytes of `segments` past their
/// first `from`, across the segments' borders too.
fn mentions(segments: &[SysIOVec], finder: &memchr::memmem::Finder, from: usize) -> bool {
    let keep = finder.needle().len().saturating_sub(1);
    // The last `keep` bytes before the segment at hand.
    let mut carry: Vec<u8> = Vec::with_capacity(2 * keep);
    let mut skip = from;
    for s in segments {
        let whole = bytes(s);
        let b = &whole[skip.min(whole.len())..];
        skip -= skip.min(whole.len());
        if b.is_empty() {
            continue;
        }
        let before = carry.len();
        carry.extend_from_slice(&b[..b.len().min(keep)]);
        if finder.find(&carry).is_some() || finder.find(b).is_some() {
            return true;
        }
        carry.truncate(before);
        carry.extend_from_slice(&b[b.len().saturating_sub(keep)..]);
        let excess = carry.len().saturating_sub(keep);
        carry.drain(..excess);
    }
    false
}

extern "C" fn ready_output(data: ErlDrvData, _event: ErlDrvEvent) {
    let c = conn(data);
    loop {
        let mut vlen: c_int = 0;
        let iov = unsafe { driver_peekq(c.port, &mut vlen) };
        if iov.is_null() || vlen <= 0 {
            break;
        }
        let count = (vlen as usize).min(IOV_MAX);
        let n = unsafe { libc::writev(c.fd, iov as *const libc::iovec, count as c_int) };
        if n > 0 {
            unsafe { driver_deq(c.port, n as usize) };
            c.last_progress = Instant::now();
            c.note_acknowledged();
        } else if n < 0 {
            match errno() {
                libc::EINTR => continue,
                libc::EAGAIN => break,
                e => {
                    c.fail_posix(e);
                    return;
                }
            }
        }
    }
    let queued = unsafe { driver_sizeq(c.port) };
    if queued == 0 {
        c.wait_writable(false);
    }
    if c.busy && queued < LOW_WATERMARK {
        c.busy = false;
        unsafe { set_busy_port(c.port, 0) };
    }
}

/// A send that may have waited too long.
extern "C" fn timeout(data: ErlDrvData) {
    let c = conn(data);
    if unsafe { driver_sizeq(c.port) } > 0 {
        if c.last_progress.elapsed().as_millis() as u64 >= c.send_timeout_ms {
            c.fail(c"send_timeout");
            return;
        }
        c.arm_send_timer();
    }
}

// --- Control ----------------------------------------------------------------------------

extern "C" fn control(
    data: ErlDrvData,
    command: c_uint,
    buf: *mut c_char,
    len: ErlDrvSizeT,
    rbuf: *mut *mut c_char,
    rlen: ErlDrvSizeT,
) -> ErlDrvSSizeT {
    let c = conn(data);
    let input: &[u8] = if len == 0 {
        &[]
    } else {
        unsafe { std::slice::from_raw_parts(buf as *const u8, len) }
    };
    match command {
        // The runtime runs control callbacks with the calling process
        // unlocked, as it does port tasks: packets may be delivered here.
        CMD_ACCEPT | CMD_DROP if c.waiting.is_some() => {
            c.resume(command == CMD_ACCEPT);
            0
        }
        // An answer to a refused request, sent only when the connection
        // takes it: a peer that reads nothing makes nothing pile up here.
        CMD_INJECT => {
            if unsafe { driver_sizeq(c.port) } <= HIGH_WATERMARK {
                c.write_bytes(input);
            }
            0
        }
        CMD_TICK => {
            c.write_bytes(&[]);
            0
        }
        CMD_GETSTAT if rlen >= 24 => {
            let queued = unsafe { driver_sizeq(c.port) } as u64;
            let mut out = [0u8; 24];
            out[..8].copy_from_slice(&c.recv_cnt.to_be_bytes());
            out[8..16].copy_from_slice(&c.send_cnt.to_be_bytes());
            out[16..].copy_from_slice(&queued.to_be_bytes());
            unsafe { std::ptr::copy_nonoverlapping(out.as_ptr(), *rbuf as *mut u8, 24) };
            24
        }
        CMD_BACKED_UP if rlen >= 1 => {
            unsafe { **rbuf = c.backed_up() as c_char };
            1
        }
        CMD_ENABLE if !c.reading => {
            c.reading = true;
            c.inbuf.extend_from_slice(input);
            c.select(ERL_DRV_READ, true);
            c.frames();
            0
        }
        _ => -1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(parts: &[&[u8]]) -> Vec<SysIOVec> {
        parts
            .iter()
            .map(|p| SysIOVec {
                iov_base: p.as_ptr() as *mut c_char,
                iov_len: p.len(),
            })
            .collect()
    }

    #[test]
    fn a_name_is_found_across_any_segments() {
        let finder = memchr::memmem::Finder::new(b"node@host");
        for split in [
            &[&b"xx node@host yy"[..]][..],
            &[b"xx no", b"de@h", b"ost"],
            &[b"n", b"o", b"d", b"e@host"],
            &[b"", b"node@", b"", b"host"],
        ] {
            assert!(mentions(&segments(split), &finder, 0), "{split:?}");
        }
        assert!(!mentions(&segments(&[b"node@hos", b"t x"]), &finder, 1));
        assert!(!mentions(&segments(&[b"node@", b"other"]), &finder, 0));
    }
}
