//! Loads the kernel modules the build put into the image, in the order the
//! build computed (`lib/modules/VERSION/hull-modules.json`, dependencies first).
//! On the Debian kernels every virtio driver is a module, so this runs before
//! anything looks for a disk, a console or an entropy source.

use std::ffi::CString;
use std::fs::File;

use contract::ModuleEntry;
use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};

use supervisor::say;

/// Why one module was not loaded (reported, and the boot goes on).
#[derive(Debug, thiserror::Error)]
enum LoadError {
    #[error("{0}")]
    Open(std::io::Error),
    #[error("{0}")]
    Init(Errno),
}

pub fn load_all() {
    let release = match nix::sys::utsname::uname() {
        Ok(u) => u.release().to_string_lossy().into_owned(),
        Err(_) => return,
    };
    let dir = format!("/lib/modules/{release}");
    let list: Vec<ModuleEntry> = match std::fs::read(format!("{dir}/{}", contract::MODULES_JSON)) {
        Ok(data) => match serde_json::from_slice(&data) {
            Ok(l) => l,
            Err(e) => {
                say!("{dir}/{}: {e}; no modules loaded", contract::MODULES_JSON);
                return;
            }
        },
        // An image built for a kernel with everything built in has no list.
        Err(_) => return,
    };
    let empty = CString::default();
    let mut loaded = 0;
    for m in &list {
        let path = format!("{dir}/{}", m.path);
        let result = File::open(&path).map_err(LoadError::Open).and_then(|f| {
            match finit_module(&f, &empty, ModuleInitFlags::empty()) {
                Ok(()) | Err(Errno::EEXIST) => Ok(()),
                Err(e) => Err(LoadError::Init(e)),
            }
        });
        match result {
            Ok(()) => loaded += 1,
            Err(e) => say!("module {}: {e}", m.name),
        }
    }
    say!("loaded {loaded} of {} kernel modules", list.len());
}
