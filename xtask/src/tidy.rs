//! Repository hygiene as tests: every Rust file opens with a `//!` line, and
//! no library crate reaches for `anyhow` or hides a `todo!`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() {
            if name != "target" && !name.to_string_lossy().starts_with('.') {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_opens_with_a_module_doc() {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    assert!(files.len() > 10, "found the workspace's files");
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap_or_default();
            !text.trim_start().starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! opening line: {missing:?}"
    );
}

#[test]
fn libraries_use_thiserror_not_anyhow() {
    for krate in [
        "faro-core",
        "faro-filter",
        "faro-watch",
        "faro-dispatch",
        "faro-sim",
    ] {
        let manifest =
            std::fs::read_to_string(root().join(krate).join("Cargo.toml")).expect("crate manifest");
        let deps = manifest
            .split("[dev-dependencies]")
            .next()
            .unwrap_or_default();
        assert!(!deps.contains("anyhow"), "{krate} depends on anyhow");
    }
}

#[test]
fn no_stubs_left_in_source() {
    let mut files = Vec::new();
    rust_files(&root(), &mut files);
    let todo = ["todo", "!("].concat();
    let unimplemented = ["unimplemented", "!("].concat();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            !text.contains(&todo) && !text.contains(&unimplemented),
            "{} contains a stub macro",
            f.display()
        );
    }
}
