//! The part of `erl_driver.h` the carrier's driver uses. The runtime that
//! loads the library provides these symbols.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_uint, c_ulong, c_void};

pub type ErlDrvPort = *mut c_void;
pub type ErlDrvData = *mut c_void;
pub type ErlDrvEvent = *mut c_void;
pub type ErlDrvTermData = usize;
pub type ErlDrvSizeT = usize;
pub type ErlDrvSSizeT = isize;

#[repr(C)]
pub struct SysIOVec {
    pub iov_base: *mut c_char,
    pub iov_len: usize,
}

#[repr(C)]
pub struct ErlIOVec {
    pub vsize: c_int,
    pub size: ErlDrvSizeT,
    pub iov: *mut SysIOVec,
    pub binv: *mut *mut c_void,
}

#[repr(C)]
pub struct ErlDrvEntry {
    pub init: Option<extern "C" fn() -> c_int>,
    pub start: Option<extern "C" fn(ErlDrvPort, *mut c_char) -> ErlDrvData>,
    pub stop: Option<extern "C" fn(ErlDrvData)>,
    pub output: Option<extern "C" fn(ErlDrvData, *mut c_char, ErlDrvSizeT)>,
    pub ready_input: Option<extern "C" fn(ErlDrvData, ErlDrvEvent)>,
    pub ready_output: Option<extern "C" fn(ErlDrvData, ErlDrvEvent)>,
    pub driver_name: *const c_char,
    pub finish: Option<extern "C" fn()>,
    pub handle: *mut c_void,
    pub control: Option<
        extern "C" fn(
            ErlDrvData,
            c_uint,
            *mut c_char,
            ErlDrvSizeT,
            *mut *mut c_char,
            ErlDrvSizeT,
        ) -> ErlDrvSSizeT,
    >,
    pub timeout: Option<extern "C" fn(ErlDrvData)>,
    pub outputv: Option<extern "C" fn(ErlDrvData, *mut ErlIOVec)>,
    pub ready_async: Option<extern "C" fn(ErlDrvData, *mut c_void)>,
    pub flush: Option<extern "C" fn(ErlDrvData)>,
    pub call: *mut c_void,
    pub unused_event_callback: *mut c_void,
    pub extended_marker: c_int,
    pub major_version: c_int,
    pub minor_version: c_int,
    pub driver_flags: c_int,
    pub handle2: *mut c_void,
    pub process_exit: *mut c_void,
    pub stop_select: Option<extern "C" fn(ErlDrvEvent, *mut c_void)>,
    pub emergency_close: *mut c_void,
}

// The runtime reads the entry; nothing writes it after `driver_init`.
unsafe impl Sync for ErlDrvEntry {}

pub const ERL_DRV_EXTENDED_MARKER: c_int = 0xfeeeeeed_u32 as c_int;
pub const ERL_DRV_EXTENDED_MAJOR_VERSION: c_int = 3;
pub const ERL_DRV_EXTENDED_MINOR_VERSION: c_int = 3;
pub const ERL_DRV_FLAG_USE_PORT_LOCKING: c_int = 1;
pub const ERL_DRV_FLAG_SOFT_BUSY: c_int = 2;

pub const ERL_DRV_READ: c_int = 1;
pub const ERL_DRV_WRITE: c_int = 2;
pub const ERL_DRV_USE: c_int = 4;

pub const PORT_CONTROL_FLAG_BINARY: c_int = 1;

pub const ERL_DRV_ATOM: ErlDrvTermData = 2;
pub const ERL_DRV_PORT: ErlDrvTermData = 4;
pub const ERL_DRV_TUPLE: ErlDrvTermData = 7;
pub const ERL_DRV_UINT: ErlDrvTermData = 13;
pub const ERL_DRV_BUF2BINARY: ErlDrvTermData = 14;

pub const ERL_DRV_ERROR_BADARG: ErlDrvData = -3_isize as ErlDrvData;

extern "C" {
    pub fn driver_select(port: ErlDrvPort, event: ErlDrvEvent, mode: c_int, on: c_int) -> c_int;
    pub fn driver_output(port: ErlDrvPort, buf: *const c_char, len: ErlDrvSizeT) -> c_int;
    pub fn driver_set_timer(port: ErlDrvPort, time: c_ulong) -> c_int;
    pub fn driver_failure_atom(port: ErlDrvPort, string: *const c_char) -> c_int;
    pub fn driver_failure_posix(port: ErlDrvPort, error: c_int) -> c_int;
    pub fn set_busy_port(port: ErlDrvPort, on: c_int);
    pub fn set_port_control_flags(port: ErlDrvPort, flags: c_int);
    pub fn driver_enq(port: ErlDrvPort, buf: *const c_char, len: ErlDrvSizeT) -> c_int;
    pub fn driver_enqv(port: ErlDrvPort, ev: *mut ErlIOVec, skip: ErlDrvSizeT) -> c_int;
    pub fn driver_deq(port: ErlDrvPort, size: ErlDrvSizeT) -> ErlDrvSizeT;
    pub fn driver_sizeq(port: ErlDrvPort) -> ErlDrvSizeT;
    pub fn driver_peekq(port: ErlDrvPort, vlen: *mut c_int) -> *mut SysIOVec;
    pub fn driver_mk_atom(name: *const c_char) -> ErlDrvTermData;
    pub fn driver_mk_port(port: ErlDrvPort) -> ErlDrvTermData;
    pub fn erl_drv_output_term(
        port: ErlDrvTermData,
        data: *const ErlDrvTermData,
        len: c_int,
    ) -> c_int;
}
