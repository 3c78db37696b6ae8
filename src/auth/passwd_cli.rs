//! `ringmq passwd`: adds, changes and deletes users in a Mosquitto password file, with the
//! options and output of mosquitto_passwd 2.0 (`$7$`, 101 iterations, 12-byte salt unless
//! `-H`/`-I` say otherwise).
//!
//! ```text
//! ringmq passwd [-H hash] [-I iterations] [-c] FILE USER       prompt for the password
//! ringmq passwd [-H hash] [-I iterations] [-c] -b FILE USER PASS
//! ringmq passwd -D FILE USER
//! ringmq passwd -U FILE                                      hash a plain-text file
//! ```
//!
//! The edit itself ([`apply`]) is a pure function over the file's bytes: other lines,
//! comments and blank lines are kept byte for byte. [`run`] is the shell around it: it reads
//! the password (twice, without echo, on a terminal; from standard input otherwise), draws
//! the salt and replaces the file atomically, keeping its mode and owner (new files: 0600).

use super::passwd::{self, Hash, HashError, LineError, SALT_LEN_2_0, SALT_LEN_2_1};
use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mosquitto_passwd 2.0's count, unless `-I` says otherwise.
const DEFAULT_ITERATIONS: NonZeroU32 = match NonZeroU32::new(passwd::ITERATIONS_2_0) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

/// The hash `-H` picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HashKind {
    /// `$7$`: PBKDF2-HMAC-SHA512 (the default, as in mosquitto_passwd).
    #[value(name = "sha512-pbkdf2")]
    Sha512Pbkdf2,
    /// `$6$`: salted SHA-512 (Mosquitto 1.6 and earlier; not recommended).
    Sha512,
    /// `$argon2id$` with Mosquitto 2.1's parameters (t=1, m=47104 KiB, p=1).
    Argon2id,
}

/// The command line of `ringmq passwd`, as mosquitto_passwd's.
#[derive(Debug, Clone, clap::Args)]
pub struct PasswdArgs {
    /// Create a new password file, overwriting an existing one.
    #[arg(short = 'c')]
    pub create: bool,
    /// Batch mode: the password is given on the command line.
    #[arg(short = 'b')]
    pub batch: bool,
    /// Delete the user instead of setting its password.
    #[arg(short = 'D')]
    pub delete: bool,
    /// Replace the plain-text passwords of FILE by their hashes.
    #[arg(short = 'U')]
    pub update: bool,
    /// The hash to write.
    #[arg(short = 'H', value_enum, default_value = "sha512-pbkdf2")]
    pub hash: HashKind,
    /// PBKDF2 iterations for sha512-pbkdf2.
    #[arg(short = 'I', default_value_t = DEFAULT_ITERATIONS)]
    pub iterations: NonZeroU32,
    /// The password file.
    pub file: PathBuf,
    /// The user to add, change or delete.
    pub username: Option<String>,
    /// The password (with -b only); it may start with '-'.
    #[arg(allow_hyphen_values = true)]
    pub password: Option<String>,
}

/// What to do to the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Give `username` this hash: its line is replaced, or a line is appended.
    Set { username: String, hash: Hash },
    /// Remove every line of `username`; an error if there is none.
    Delete { username: String },
}

/// Why `ringmq passwd` stopped.
#[derive(Debug)]
pub enum CliError {
    /// The options do not fit together; the message says how.
    Usage(&'static str),
    /// mosquitto_passwd's rules for user names.
    BadUsername(&'static str),
    PasswordTooLong,
    EmptyPassword,
    PasswordsDiffer,
    UserNotFound {
        username: String,
    },
    /// A line of the existing file, by 1-based number.
    Line {
        line: usize,
        error: LineError,
    },
    /// `-U` met a line that already holds a hash (hashing it again would lock the user out).
    AlreadyHashed {
        line: usize,
        username: String,
    },
    Hash(HashError),
    Random(getrandom::Error),
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(why) => f.write_str(why),
            Self::BadUsername(why) => write!(f, "user name {why}"),
            Self::PasswordTooLong => f.write_str("password must be less than 65536 bytes long"),
            Self::EmptyPassword => f.write_str("empty password"),
            Self::PasswordsDiffer => f.write_str("passwords do not match"),
            Self::UserNotFound { username } => {
                write!(f, "user '{username}' not found in the password file")
            }
            Self::Line { line, error } => write!(f, "line {line}: {error}"),
            Self::AlreadyHashed { line, username } => {
                write!(f, "line {line}: user '{username}' already has a hash")
            }
            Self::Hash(e) => write!(f, "{e}"),
            Self::Random(e) => write!(f, "no random salt: {e}"),
            Self::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for CliError {}

/// mosquitto_passwd's rules (at most 65535 bytes, no control characters, no `:`), and what
/// the file format needs to read the name back unchanged: no blank at either end (the reader
/// trims them) and no leading `#` (a comment).
pub fn check_username(username: &str) -> Result<(), CliError> {
    let why = if username.is_empty() {
        "must not be empty"
    } else if username.len() > passwd::MAX_FIELD_LEN {
        "must be less than 65536 bytes long"
    } else if username.chars().any(char::is_control) {
        "must not contain control characters"
    } else if username.contains(':') {
        "must not contain ':'"
    } else if username.trim_matches(|c: char| c.is_ascii_whitespace()) != username {
        "must not start or end with blanks"
    } else if username.starts_with('#') {
        "must not start with '#'"
    } else {
        return Ok(());
    };
    Err(CliError::BadUsername(why))
}

/// The new file: `text` with `edit` applied. Every other line is kept as it was.
pub fn apply(text: &[u8], edit: &Edit) -> Result<Vec<u8>, CliError> {
    let target = match edit {
        Edit::Set { username, .. } | Edit::Delete { username } => username.as_str(),
    };
    let mut out = Vec::with_capacity(text.len() + 256);
    let mut found = false;
    for (index, raw) in passwd::lines(text).enumerate() {
        let line = passwd::split_line(raw).map_err(|error| CliError::Line {
            line: index + 1,
            error,
        })?;
        let is_target = matches!(line, passwd::Line::Entry { username, .. } if username == target);
        if !is_target {
            out.extend_from_slice(raw);
            out.push(b'\n');
            continue;
        }
        // Later lines of the same user (which the broker refuses) are dropped.
        if let (Edit::Set { username, hash }, false) = (edit, found) {
            out.extend_from_slice(format!("{username}:{hash}\n").as_bytes());
        }
        found = true;
    }
    match edit {
        Edit::Set { username, hash } if !found => {
            out.extend_from_slice(format!("{username}:{hash}\n").as_bytes());
        }
        Edit::Delete { username } if !found => {
            return Err(CliError::UserNotFound {
                username: username.clone(),
            });
        }
        _ => {}
    }
    Ok(out)
}

/// `-U`: every `user:password` line becomes `user:hash`, hashed by `hash_of`.
pub fn hash_plain_text(
    text: &[u8],
    mut hash_of: impl FnMut(&str) -> Result<Hash, CliError>,
) -> Result<Vec<u8>, CliError> {
    let mut out = Vec::with_capacity(text.len() * 4);
    for (index, raw) in passwd::lines(text).enumerate() {
        let at = |error| CliError::Line {
            line: index + 1,
            error,
        };
        match passwd::split_line(raw).map_err(at)? {
            passwd::Line::Other => out.extend_from_slice(raw),
            passwd::Line::Entry { username, hash: "" } => {
                return Err(at(LineError::EmptyHash {
                    username: username.to_owned(),
                }));
            }
            passwd::Line::Entry { username, hash } => {
                if Hash::parse(hash).is_ok() {
                    return Err(CliError::AlreadyHashed {
                        line: index + 1,
                        username: username.to_owned(),
                    });
                }
                out.extend_from_slice(format!("{username}:{}", hash_of(hash)?).as_bytes());
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

/// A hash of `password` of the kind `-H` asked for, with a fresh salt.
pub fn new_hash(kind: HashKind, iterations: NonZeroU32, password: &str) -> Result<Hash, CliError> {
    if password.len() > passwd::MAX_FIELD_LEN {
        return Err(CliError::PasswordTooLong);
    }
    let mut salt = [0u8; SALT_LEN_2_1];
    getrandom::fill(&mut salt).map_err(CliError::Random)?;
    let short = salt.get(..SALT_LEN_2_0).unwrap_or(&salt);
    match kind {
        HashKind::Sha512Pbkdf2 => Hash::pbkdf2_sha512(password.as_bytes(), short, iterations),
        HashKind::Sha512 => Hash::sha512(password.as_bytes(), short),
        HashKind::Argon2id => Hash::argon2id(password.as_bytes(), &salt),
    }
    .map_err(CliError::Hash)
}

/// What the command line asks for, checked as mosquitto_passwd checks it.
enum Plan {
    Create { username: String },
    Set { username: String },
    Delete { username: String },
    Update,
}

fn plan(args: &PasswdArgs) -> Result<Plan, CliError> {
    let (c, d, u, b) = (args.create, args.delete, args.update, args.batch);
    if c && d {
        return Err(CliError::Usage("-c and -D cannot be used together"));
    }
    if c && u {
        return Err(CliError::Usage("-c and -U cannot be used together"));
    }
    if d && u {
        return Err(CliError::Usage("-D and -U cannot be used together"));
    }
    if b && d {
        return Err(CliError::Usage("-b and -D cannot be used together"));
    }
    let plan = match (&args.username, &args.password) {
        (None, None) if u => Plan::Update,
        _ if u => return Err(CliError::Usage("-U takes the password file only")),
        (None, _) => return Err(CliError::Usage("password file or user name missing")),
        (Some(_), None) if b => return Err(CliError::Usage("-b needs a password")),
        (Some(_), Some(_)) if !b => {
            return Err(CliError::Usage("a password on the command line needs -b"));
        }
        (Some(user), _) if d => Plan::Delete {
            username: user.clone(),
        },
        (Some(user), _) if c => Plan::Create {
            username: user.clone(),
        },
        (Some(user), _) => Plan::Set {
            username: user.clone(),
        },
    };
    if let Plan::Create { username } | Plan::Set { username } | Plan::Delete { username } = &plan {
        check_username(username)?;
    }
    Ok(plan)
}

/// Runs `ringmq passwd`; errors go to standard error, prefixed `ringmq passwd:`.
pub fn run(args: &PasswdArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ringmq passwd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(args: &PasswdArgs) -> Result<(), CliError> {
    let plan = plan(args)?;
    let path = resolve(&args.file);
    let password = || match &args.password {
        Some(p) => Ok(p.clone()),
        None => read_password(),
    };
    let hash = |password: &str| new_hash(args.hash, args.iterations, password);
    let contents = match plan {
        Plan::Create { username } => {
            let hash = hash(&password()?)?;
            apply(b"", &Edit::Set { username, hash })?
        }
        Plan::Set { username } => {
            let old = read(&path)?;
            let hash = hash(&password()?)?;
            apply(&old, &Edit::Set { username, hash })?
        }
        Plan::Delete { username } => apply(&read(&path)?, &Edit::Delete { username })?,
        Plan::Update => hash_plain_text(&read(&path)?, hash)?,
    };
    replace(&path, &contents).map_err(|error| CliError::Io { path, error })
}

/// Edits go to the file a symlink points at, not over the link.
fn resolve(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|error| CliError::Io {
        path: path.to_owned(),
        error,
    })
}

/// Writes `contents` to a temporary file beside `path` and renames it over `path`, so a
/// crash leaves the old file or the new one, never half of one. The temporary file takes
/// the old file's mode and owner, so a broker that could read it still can.
fn replace(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let mut tag = [0u8; 6];
    getrandom::fill(&mut tag).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let temp = dir.join(format!(".{name}.{tag}.tmp"));
    let old = std::fs::metadata(path).ok();
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        if let Some(old) = &old {
            file.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o7777))?;
            let owner = (old.uid(), old.gid());
            let ours = file.metadata().map(|m| (m.uid(), m.gid()))?;
            if owner != ours {
                std::os::unix::fs::fchown(&file, Some(owner.0), Some(owner.1))?;
            }
        }
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The password, as mosquitto_passwd reads it: on a terminal, prompted for twice without
/// echo; otherwise the first line of standard input (a second line, if any, must repeat it).
fn read_password() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    let io = |error| CliError::Io {
        path: PathBuf::from("<stdin>"),
        error,
    };
    let (first, second) = if stdin.is_terminal() {
        let _echo = EchoOff::new();
        let first = prompt("Password: ")?;
        let second = prompt("Reenter password: ")?;
        (first, Some(second))
    } else {
        let mut lines = stdin.lock().lines();
        let first = lines.next().transpose().map_err(io)?.unwrap_or_default();
        let second = lines.next().transpose().map_err(io)?;
        (first, second)
    };
    let first = first.trim_end_matches('\r').to_owned();
    if first.is_empty() {
        return Err(CliError::EmptyPassword);
    }
    match second {
        Some(second) if second.trim_end_matches('\r') != first => Err(CliError::PasswordsDiffer),
        _ => Ok(first),
    }
}

fn prompt(text: &str) -> Result<String, CliError> {
    let io = |error| CliError::Io {
        path: PathBuf::from("<terminal>"),
        error,
    };
    let mut stderr = std::io::stderr();
    stderr.write_all(text.as_bytes()).map_err(io)?;
    stderr.flush().map_err(io)?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(io)?;
    // The user's Enter was not echoed either.
    let _ = stderr.write_all(b"\n");
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Terminal echo off on standard input while it lives.
struct EchoOff {
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> Self {
        // SAFETY: termios is plain data that tcgetattr fills in completely on success; fd 0
        // stays open for the life of the process.
        let saved = unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            (libc::tcgetattr(libc::STDIN_FILENO, &mut t) == 0).then_some(t)
        };
        if let Some(mut quiet) = saved {
            quiet.c_lflag &= !libc::ECHO;
            // SAFETY: `quiet` is a valid termios from tcgetattr, changed in one flag.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) };
        }
        Self { saved }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            // SAFETY: restores the termios tcgetattr returned for the same descriptor.
            unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved) };
        }
    }
}

#[cfg(test)]
mod tests;
