//! Packaging: the Packer template, the Vagrantfile, the systemd units, every
//! shell script and the CloudFormation template pass their tools' checks,
//! and the image boot test (tests/image/boot.sh) boots a provisioned Debian
//! under QEMU and reads a statsd counter and a syslog line back through the
//! forwarded ports. tests/run installs the tools.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::harness::{bin, free_port, repo_path};

fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").to_path_buf()
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (tests/run installs it)"))
}

fn said(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn packer_template_validates() {
    let zeros = "0".repeat(128);
    let out = run(Command::new("packer")
        .current_dir(repo_path("."))
        .args(["validate", "-var", &format!("binary={}", bin())])
        .args(["-var", &format!("debian_cloud_checksum=sha512:{zeros}")])
        .arg("packer/instantops.pkr.hcl"));
    assert!(out.status.success(), "packer validate:\n{}", said(&out));
    let fmt = run(Command::new("packer").current_dir(repo_path(".")).args(["fmt", "-check", "packer/instantops.pkr.hcl"]));
    assert!(fmt.status.success(), "packer fmt -check:\n{}", said(&fmt));
}

#[test]
fn vagrantfile_validates() {
    let home = tempfile::tempdir().unwrap();
    let out = run(Command::new("vagrant")
        .current_dir(repo_path("vagrant"))
        .env("VAGRANT_HOME", home.path())
        .env("VAGRANT_DOTFILE_PATH", home.path().join("dot"))
        .env("INSTANTOPS_BINARY", bin())
        .args(["validate", "--ignore-provider"]));
    assert!(out.status.success(), "vagrant validate:\n{}", said(&out));
}

#[test]
fn systemd_units_verify_clean() {
    // systemd-analyze wants ExecStart's binary to exist: the copies name the
    // built one and this checkout's script, and nothing else differs.
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(repo_path("packer/instantops.service")).unwrap().replace("/usr/local/bin/instantops", bin());
    let data = std::fs::read_to_string(repo_path("packer/instantops-data.service"))
        .unwrap()
        .replace("/usr/local/lib/instantops/prepare-data.sh", repo_path("packer/scripts/prepare-data.sh").to_str().unwrap());
    std::fs::write(dir.path().join("instantops.service"), unit).unwrap();
    std::fs::write(dir.path().join("instantops-data.service"), data).unwrap();
    let out =
        run(Command::new("systemd-analyze").current_dir(dir.path()).args(["verify", "./instantops.service", "./instantops-data.service"]));
    // Unknown keys are only warnings: any line naming our units fails.
    let ours: Vec<&str> = std::str::from_utf8(&out.stderr).unwrap().lines().filter(|l| l.contains("instantops")).collect();
    assert!(out.status.success() && ours.is_empty(), "systemd-analyze verify:\n{}", said(&out));
}

#[test]
fn every_shell_script_passes_shellcheck() {
    let mut scripts = vec![repo_path("tests/run"), repo_path(".ci/run")];
    for dir in ["packer/scripts", "tests/image", "benches"] {
        for entry in std::fs::read_dir(repo_path(dir)).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "sh") {
                scripts.push(entry.path());
            }
        }
    }
    assert!(scripts.len() >= 8, "{scripts:?}");
    let out = run(Command::new("shellcheck").args(&scripts));
    assert!(out.status.success(), "shellcheck:\n{}", said(&out));
}

#[test]
fn cloudformation_template_lints() {
    let venv = crate::harness::client_python().parent().unwrap().to_path_buf();
    let out = run(Command::new(venv.join("cfn-lint")).arg(repo_path("packer/cloudformation.yaml")));
    assert!(out.status.success(), "cfn-lint:\n{}", said(&out));
}

#[test]
fn the_image_boots_and_serves() {
    let (http, statsd, syslog) = (free_port(), free_port(), free_port());
    let out = run(Command::new("bash")
        .arg(repo_path("tests/image/boot.sh"))
        .env("BIN", bin())
        .env("CACHE", target_dir().join("image"))
        .env("QEMU_ROOT", std::env::var("IOPS_QEMU").map(PathBuf::from).unwrap_or_else(|_| target_dir().join("qemu/root")))
        .env("HTTP_PORT", http.to_string())
        .env("STATSD_PORT", statsd.to_string())
        .env("SYSLOG_PORT", syslog.to_string()));
    let text = said(&out);
    eprintln!("{text}");
    assert!(out.status.success(), "the image boot test failed:\n{text}");
    for step in ["instantops is up", "statsd counter read back", "syslog line read back", "powered off"] {
        assert!(text.contains(step), "no {step:?} in:\n{text}");
    }
}
