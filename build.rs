//! Records the git commit for `daedalus_build_info`.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=DAEDALUS_GIT_COMMIT");
    // Builds without `.git` (a Docker context) pass the commit in the environment.
    if let Ok(commit) = std::env::var("DAEDALUS_GIT_COMMIT") {
        println!("cargo:rustc-env=DAEDALUS_GIT_COMMIT={commit}");
        return;
    }
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=DAEDALUS_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
}
