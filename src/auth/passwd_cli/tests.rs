//! Tests of `ringmq passwd`: argument rules, edits of a file, the hashes it writes.

use super::*;
use clap::Parser;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: PasswdArgs,
}

fn args(line: &[&str]) -> PasswdArgs {
    let argv = std::iter::once("passwd").chain(line.iter().copied());
    Cli::try_parse_from(argv).expect("valid command line").args
}

fn cheap(password: &str, salt: u8) -> Hash {
    let one = NonZeroU32::MIN;
    Hash::pbkdf2_sha512(password.as_bytes(), &[salt; 12], one).expect("valid salt")
}

fn set(user: &str, hash: &Hash) -> Edit {
    Edit::Set {
        username: user.into(),
        hash: hash.clone(),
    }
}

#[test]
fn set_replaces_the_users_line_and_keeps_every_other_byte() {
    let old = cheap("old", 1);
    let new = cheap("new", 2);
    let text = format!("# users\r\nalice:{old}\n\nbob:{old}\r\n");
    let out = apply(text.as_bytes(), &set("alice", &new)).expect("applies");
    assert_eq!(
        String::from_utf8(out).expect("utf-8"),
        format!("# users\r\nalice:{new}\n\nbob:{old}\r\n")
    );
}

#[test]
fn set_appends_a_new_user_even_after_a_last_line_without_newline() {
    let h = cheap("pw", 1);
    let out = apply(format!("a:{h}").as_bytes(), &set("b", &h)).expect("applies");
    assert_eq!(out, format!("a:{h}\nb:{h}\n").into_bytes());
    let out = apply(b"", &set("b", &h)).expect("applies");
    assert_eq!(out, format!("b:{h}\n").into_bytes());
}

#[test]
fn set_keeps_one_line_for_a_user_listed_twice() {
    let (old, new) = (cheap("old", 1), cheap("new", 2));
    let text = format!("a:{old}\nb:{old}\na:{old}\n");
    let out = apply(text.as_bytes(), &set("a", &new)).expect("applies");
    assert_eq!(out, format!("a:{new}\nb:{old}\n").into_bytes());
}

#[test]
fn delete_removes_the_user_or_says_it_is_not_there() {
    let h = cheap("pw", 1);
    let text = format!("a:{h}\n# c\nb:{h}\n");
    let delete = |user: &str| Edit::Delete {
        username: user.into(),
    };
    let out = apply(text.as_bytes(), &delete("a")).expect("applies");
    assert_eq!(out, format!("# c\nb:{h}\n").into_bytes());
    let e = apply(text.as_bytes(), &delete("zed")).expect_err("unknown user");
    assert_eq!(e.to_string(), "user 'zed' not found in the password file");
}

#[test]
fn a_corrupt_line_stops_the_edit_with_its_number() {
    let h = cheap("pw", 1);
    let e = apply(format!("a:{h}\ngarbage\n").as_bytes(), &set("b", &h)).expect_err("bad");
    assert_eq!(e.to_string(), "line 2: no ':' between user name and hash");
}

#[test]
fn update_hashes_plain_text_lines_and_keeps_comments() {
    let out =
        hash_plain_text(b"# plain\nalice:one\n\nbob : two\n", |p| Ok(cheap(p, 3))).expect("hashes");
    let file = passwd::PasswordFile::parse(&out).expect("valid file");
    assert!(file.verify("alice", b"one") && file.verify("bob", b"two"));
    assert!(out.starts_with(b"# plain\nalice:$7$1$"));
    let hashed = format!("alice:{}\n", cheap("x", 1));
    let e = hash_plain_text(hashed.as_bytes(), |p| Ok(cheap(p, 3))).expect_err("hashed");
    assert_eq!(e.to_string(), "line 1: user 'alice' already has a hash");
}

#[test]
fn new_hashes_are_what_mosquitto_passwd_writes() {
    let default = args(&["-b", "f", "u", "p"]);
    assert_eq!(default.hash, HashKind::Sha512Pbkdf2);
    assert_eq!(default.iterations.get(), 101);
    let h = new_hash(default.hash, default.iterations, "p").expect("hash");
    let text = h.to_string();
    let fields: Vec<&str> = text.split('$').collect();
    // "", "7", iterations, 16 base64 characters of salt (12 bytes), 88 of hash (64).
    assert_eq!(fields.len(), 5, "{text}");
    assert_eq!((fields[1], fields[2]), ("7", "101"));
    assert_eq!((fields[3].len(), fields[4].len()), (16, 88));
    assert!(h.verify(b"p"));
    let h = new_hash(HashKind::Sha512, default.iterations, "p").expect("hash");
    assert!(h.to_string().starts_with("$6$") && h.verify(b"p"));
    // Two salts are never the same.
    let again = new_hash(default.hash, default.iterations, "p").expect("hash");
    assert_ne!(again.to_string(), text);
}

#[test]
fn option_combinations_are_checked_as_mosquitto_passwd_does() {
    let refused = [
        (
            vec!["-c", "-D", "f", "u"],
            "-c and -D cannot be used together",
        ),
        (vec!["-c", "-U", "f"], "-c and -U cannot be used together"),
        (vec!["-D", "-U", "f"], "-D and -U cannot be used together"),
        (
            vec!["-b", "-D", "f", "u"],
            "-b and -D cannot be used together",
        ),
        (vec!["f"], "password file or user name missing"),
        (vec!["-b", "f", "u"], "-b needs a password"),
        (
            vec!["f", "u", "p"],
            "a password on the command line needs -b",
        ),
        (vec!["-U", "f", "u"], "-U takes the password file only"),
        (vec!["f", "a:b"], "user name must not contain ':'"),
        (
            vec!["f", " a"],
            "user name must not start or end with blanks",
        ),
        (vec!["f", "#a"], "user name must not start with '#'"),
        (
            vec!["f", "a\tb"],
            "user name must not contain control characters",
        ),
    ];
    for (line, message) in refused {
        let e = plan(&args(&line)).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some(message), "{line:?}");
    }
    assert!(matches!(
        plan(&args(&["-D", "f", "u"])),
        Ok(Plan::Delete { .. })
    ));
    assert!(matches!(
        plan(&args(&["-c", "f", "u"])),
        Ok(Plan::Create { .. })
    ));
    assert!(matches!(plan(&args(&["-U", "f"])), Ok(Plan::Update)));
    let a = args(&["-H", "argon2id", "-I", "7", "-b", "f", "u", "p"]);
    assert_eq!((a.hash, a.iterations.get()), (HashKind::Argon2id, 7));
    assert!(matches!(plan(&a), Ok(Plan::Set { .. })));
}
