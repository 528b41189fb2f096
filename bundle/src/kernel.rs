//! The files of the kernel image the outputs need (LinuxKit's `binary`,
//! `tar` and `ucode` name them), and the kernel modules the root ships:
//! the VM default set plus what the YAML names, closed over their
//! dependencies.

use config::Kernel;
use fstree::{Entry, Kind, Tree};
use initrd::modules;

/// Why the kernel image does not give what the description asks.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("this image has no /{0} file; it is not a kernel image (or set `binary`)")]
    NoKernel(String),
    #[error("the kernel image has no /{0} (`ucode`)")]
    NoUcode(String),
    #[error("the kernel image has no /{0} (`tar`)")]
    NoTar(String),
    #[error("reading kernel.tar")]
    ReadTar(#[source] fstree::TreeError),
    #[error("choosing kernel modules")]
    Modules(#[source] modules::ModulesError),
    #[error("kernel module {0:?} is neither a module nor built into this kernel")]
    UnknownModule(String),
}

impl KernelError {
    /// A mistake in the description (the rest are failures to read the image).
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, KernelError::ReadTar(_) | KernelError::Modules(_))
    }
}

/// The kernel image's files the outputs take.
#[derive(Debug, Clone)]
pub struct KernelFiles {
    pub kernel: Vec<u8>,
    /// A CPU microcode cpio, put in front of the initrd.
    pub ucode: Option<Vec<u8>>,
}

fn in_image(image: &Tree, name: &str) -> Option<Vec<u8>> {
    match image.get(name.trim_start_matches('/')) {
        Some(Entry {
            kind: Kind::File(d),
            ..
        }) => Some(d.clone()),
        _ => None,
    }
}

impl KernelFiles {
    /// Picks the files `kernel` names in the kernel image's root.
    pub fn pick(kernel: &Kernel, image: &Tree) -> Result<KernelFiles, KernelError> {
        let in_image = |name: &str| in_image(image, name);
        let binary = kernel.binary.as_deref().unwrap_or("kernel");
        let file = in_image(binary).ok_or_else(|| KernelError::NoKernel(binary.into()))?;
        let ucode = match kernel.ucode.as_deref() {
            None | Some("") => None,
            Some(u) => Some(in_image(u).ok_or_else(|| KernelError::NoUcode(u.into()))?),
        };
        Ok(KernelFiles {
            kernel: file,
            ucode,
        })
    }
}

/// The modules to ship, rooted at `/` (`lib/modules/VERSION/...`): the VM
/// default set plus what `kernel.modules` names, from the kernel image's
/// modules tarball (LinuxKit's `tar`: `kernel.tar` unless named, optional
/// unless named, `none` for none); nothing without one.
pub fn modules(kernel: &Kernel, image: &Tree) -> Result<Tree, KernelError> {
    let tar = match kernel.tar.as_deref() {
        Some("none") | Some("") => None,
        None => in_image(image, "kernel.tar"),
        Some(t) => Some(in_image(image, t).ok_or_else(|| KernelError::NoTar(t.into()))?),
    };
    let extra = kernel.modules.clone().unwrap_or_default();
    let mut all = Tree::new();
    if let Some(tar) = &tar {
        all.apply_tar(tar.as_slice())
            .map_err(KernelError::ReadTar)?;
    }
    if all.is_empty() {
        return Ok(Tree::new());
    }
    let mut wanted: Vec<String> = modules::default_vm_modules()
        .iter()
        .map(|s| s.to_string())
        .collect();
    wanted.extend(extra.iter().cloned());
    let sel = modules::select_with(&all, &wanted, true).map_err(KernelError::Modules)?;
    for m in extra {
        let skipped = sel
            .resolution
            .skipped
            .iter()
            .any(|s| modules::normalize_name(s) == modules::normalize_name(&m));
        if skipped {
            return Err(KernelError::UnknownModule(m));
        }
    }
    Ok(sel.tree)
}
