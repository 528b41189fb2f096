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
        for ev in buf.get(..n).unwrap_or_default().chunks_exact(EVENT_SIZE) {
            if is_power_press(ev) {
                pressed = true;
            }
        }
    }
    pressed
}

/// Whether one `struct input_event` is the power key going down.
fn is_power_press(ev: &[u8]) -> bool {
    let u16_at = |at: usize| {
        ev.get(at..at + 2)
            .and_then(|b| b.try_into().ok())
            .map(u16::from_ne_bytes)
    };
    let value = ev
        .get(20..24)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes);
    u16_at(16) == Some(EV_KEY) && u16_at(18) == Some(KEY_POWER) && value == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: u16, code: u16, value: i32) -> Vec<u8> {
        let mut ev = vec![0u8; 16];
        ev.extend_from_slice(&kind.to_ne_bytes());
        ev.extend_from_slice(&code.to_ne_bytes());
        ev.extend_from_slice(&value.to_ne_bytes());
        ev
    }

    #[test]
    fn only_the_power_key_going_down_is_a_press() {
        assert!(is_power_press(&event(EV_KEY, KEY_POWER, 1)));
        assert!(!is_power_press(&event(EV_KEY, KEY_POWER, 0)), "key up");
        assert!(!is_power_press(&event(EV_KEY, 115, 1)), "another key");
        assert!(!is_power_press(&event(0, KEY_POWER, 1)), "not a key event");
        assert!(!is_power_press(&[0u8; 10]), "short");
    }
}
