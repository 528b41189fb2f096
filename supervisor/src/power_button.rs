//! The power button as the kernel reports it: an input device named "Power
//! Button" (ACPI on x86_64, and on arm64 when booted through UEFI firmware),
//! read through evdev. A `KEY_POWER` press asks for a poweroff.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;

const EV_KEY: u16 = 0x01;
const KEY_POWER: u16 = 116;
/// `struct input_event` on 64-bit kernels: a 16-byte timeval, u16 type, u16 code, i32 value.
const EVENT_SIZE: usize = 24;

/// Opens every input device that calls itself a power button. Devices appear
/// asynchronously after `button`/`evdev` load, so the caller scans again a few
/// times during the first seconds of boot.
pub fn open_power_buttons(already: &[String]) -> Vec<(String, File)> {
    let mut found = Vec::new();
    let Ok(dir) = fs::read_dir("/sys/class/input") else {
        return found;
    };
    let mut names: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for ev in names.into_iter().filter(|n| n.starts_with("event")) {
        if already.contains(&ev) {
            continue;
        }
        let name =
            fs::read_to_string(format!("/sys/class/input/{ev}/device/name")).unwrap_or_default();
        if name.trim() != "Power Button" {
            continue;
        }
        if let Ok(f) = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open(format!("/dev/input/{ev}"))
        {
            found.push((ev, f));
        }
    }
    found
}

/// Reads pending events; true when the power key went down.
pub fn pressed(file: &mut File) -> bool {
    let mut buf = [0u8; EVENT_SIZE * 16];
    let mut pressed = false;
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        for ev in buf[..n].chunks_exact(EVENT_SIZE) {
            let kind = u16::from_ne_bytes([ev[16], ev[17]]);
            let code = u16::from_ne_bytes([ev[18], ev[19]]);
            let value = i32::from_ne_bytes([ev[20], ev[21], ev[22], ev[23]]);
            if kind == EV_KEY && code == KEY_POWER && value == 1 {
                pressed = true;
            }
        }
    }
    pressed
}
