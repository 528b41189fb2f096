//! Sets `cfg(vm_tests)` when `HULL_VM_TESTS=1`: without it every VM test is
//! ignored, and says why (`#[cfg_attr(not(vm_tests), ignore = "...")]`), so
//! plain `cargo test` never reports a VM test as passed without running it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(vm_tests)");
    println!("cargo::rerun-if-env-changed=HULL_VM_TESTS");
    if std::env::var("HULL_VM_TESTS").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=vm_tests");
    }
}
