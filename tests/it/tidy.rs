//! Invariants of the source tree that no compiler checks (STYLE.md):
//! each engine crate is named only in the folder that owns it, every module
//! says what it owns, no `unwrap()` outside tests, logic files stay small.

use std::path::{Path, PathBuf};

use crate::harness::repo_path;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (relative path, the file's text before its `#[cfg(test)]` module).
fn sources() -> Vec<(String, String)> {
    let root = repo_path("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("read source");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default().to_string();
            (path.strip_prefix(&root).expect("under src").to_string_lossy().into_owned(), code)
        })
        .collect()
}

#[test]
fn engines_are_named_only_where_they_belong() {
    let owners = [("rocksdb", "tsdb/"), ("tantivy", "logs/"), ("axum", "http/")];
    for (file, code) in sources() {
        for (engine, folder) in owners {
            let named = code.lines().any(|l| {
                let l = l.trim_start();
                !l.starts_with("//") && (l.contains(&format!("{engine}::")) || l.contains(&format!("use {engine}")))
            });
            assert!(!named || file.starts_with(folder), "{file} names {engine}, which belongs in src/{folder}");
        }
    }
}

#[test]
fn every_module_opens_with_its_contract() {
    for (file, code) in sources() {
        assert!(code.starts_with("//!"), "src/{file} must open with a //! comment saying what it owns");
    }
}

#[test]
fn no_unwrap_outside_tests() {
    for (file, code) in sources() {
        for (i, line) in code.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            assert!(!line.contains(".unwrap()"), "src/{file}:{}: use expect(\"why\") or handle the error", i + 1);
        }
    }
}

#[test]
fn logic_files_stay_small() {
    // STYLE.md asks for ~800 lines; tests at the bottom don't count.
    for (file, code) in sources() {
        let lines = code.lines().count();
        assert!(lines <= 900, "src/{file} has {lines} lines of logic: split it by concept");
    }
}
