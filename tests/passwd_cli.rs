//! `ringmq passwd` end to end: runs the built binary in a private directory, then reads the
//! file back with the library.

use ringmq::auth::passwd::{Hash, PasswordFile};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn ringmq_passwd(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq"))
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ringmq runs");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("stdin accepted");
    }
    child.wait_with_output().expect("ringmq exits")
}

fn ok(args: &[&str], stdin: &str) {
    let out = ringmq_passwd(args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn fails(args: &[&str], stdin: &str) -> String {
    let out = ringmq_passwd(args, stdin);
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn load(path: &Path) -> PasswordFile {
    PasswordFile::load(path).expect("ringmq passwd writes a valid file")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

#[test]
fn batch_mode_creates_adds_changes_and_deletes_users() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pwfile");
    let file = path_str(&path);

    ok(&["-c", "-b", file, "alice", "correct horse"], "");
    let text = std::fs::read_to_string(&path).expect("written");
    // mosquitto_passwd 2.0's line: $7$, 101 iterations, 12-byte salt, 64-byte hash.
    let (user, hash) = text.trim_end().split_once(':').expect("user:hash");
    let fields: Vec<&str> = hash.split('$').collect();
    assert_eq!(user, "alice");
    assert_eq!(&fields[..3], ["", "7", "101"]);
    assert_eq!((fields[3].len(), fields[4].len()), (16, 88));
    let mode = std::fs::metadata(&path)
        .expect("exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(load(&path).verify("alice", b"correct horse"));

    ok(&["-b", file, "bob", "-starts-with-dash"], "");
    let before_change = std::fs::read_to_string(&path).expect("written");
    ok(&["-b", file, "alice", "new"], "");
    let pw = load(&path);
    assert!(pw.verify("alice", b"new") && !pw.verify("alice", b"correct horse"));
    assert!(pw.verify("bob", b"-starts-with-dash"));
    // Bob's line is untouched by Alice's change.
    let after = std::fs::read_to_string(&path).expect("written");
    let bob = |t: &str| t.lines().find(|l| l.starts_with("bob:")).map(str::to_owned);
    assert_eq!(bob(&before_change), bob(&after));

    ok(&["-D", file, "alice"], "");
    let pw = load(&path);
    assert_eq!(pw.len(), 1);
    assert!(pw.get("alice").is_none());
    let err = fails(&["-D", file, "alice"], "");
    assert!(err.contains("user 'alice' not found"), "{err}");

    // -c starts over.
    ok(&["-c", "-b", file, "carol", "x"], "");
    assert_eq!(load(&path).usernames().collect::<Vec<_>>(), ["carol"]);
}

#[test]
fn the_password_comes_from_stdin_when_it_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pwfile");
    let file = path_str(&path);
    ok(&["-c", file, "alice"], "one\n");
    ok(&[file, "bob"], "two\ntwo\n");
    let pw = load(&path);
    assert!(pw.verify("alice", b"one") && pw.verify("bob", b"two"));
    let err = fails(&[file, "bob"], "two\nthree\n");
    assert!(err.contains("passwords do not match"), "{err}");
    let err = fails(&[file, "bob"], "");
    assert!(err.contains("empty password"), "{err}");
    assert!(load(&path).verify("bob", b"two"));
}

#[test]
fn other_hashes_and_iterations_on_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pwfile");
    let file = path_str(&path);
    ok(&["-c", "-H", "sha512", "-b", file, "six", "pw6"], "");
    ok(&["-I", "1000", "-b", file, "seven", "pw7"], "");
    ok(&["-H", "argon2id", "-b", file, "argon", "pwa"], "");
    let pw = load(&path);
    assert!(matches!(pw.get("six"), Some(Hash::Sha512(_))));
    assert!(matches!(
        pw.get("seven"),
        Some(Hash::Pbkdf2Sha512 { iterations, .. }) if iterations.get() == 1000
    ));
    assert!(matches!(pw.get("argon"), Some(Hash::Argon2id(_))));
    let text = std::fs::read_to_string(&path).expect("written");
    assert!(
        text.contains("argon:$argon2id$v=19$m=47104,t=1,p=1$"),
        "{text}"
    );
    assert!(pw.verify("six", b"pw6") && pw.verify("seven", b"pw7") && pw.verify("argon", b"pwa"));
}

#[test]
fn update_hashes_a_plain_text_file_and_keeps_its_mode() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pwfile");
    std::fs::write(&path, "# plain\nalice:one\nbob:two\n").expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    ok(&["-U", path_str(&path)], "");
    let pw = load(&path);
    assert!(pw.verify("alice", b"one") && pw.verify("bob", b"two"));
    let text = std::fs::read_to_string(&path).expect("written");
    assert!(text.starts_with("# plain\nalice:$7$101$"), "{text}");
    let mode = std::fs::metadata(&path)
        .expect("exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    let err = fails(&["-U", path_str(&path)], "");
    assert!(err.contains("already has a hash"), "{err}");
}

#[test]
fn bad_command_lines_and_files_are_refused_with_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pwfile");
    let file = path_str(&path);
    let err = fails(&["-c", "-D", file, "u"], "");
    assert!(err.contains("-c and -D cannot be used together"), "{err}");
    let err = fails(&["-b", file, "a:b", "pw"], "");
    assert!(err.contains("must not contain ':'"), "{err}");
    let err = fails(&["-b", file, "u", "pw"], "");
    assert!(err.contains("pwfile"), "a missing file is named: {err}");
    std::fs::write(&path, "alice:$7$1$x\n").expect("write");
    let before = std::fs::read(&path).expect("read");
    ok(&["-b", file, "bob", "pw"], "");
    assert!(std::fs::read(&path).expect("read").starts_with(&before));
    std::fs::write(&path, "ok:x\nno colon\n").expect("write");
    let err = fails(&["-b", file, "bob", "pw"], "");
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), b"ok:x\nno colon\n");
    // Nothing but the file is left behind in the directory.
    let entries = std::fs::read_dir(dir.path()).expect("list").count();
    assert_eq!(entries, 1);
}
