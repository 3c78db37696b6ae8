//! A Mosquitto password file: `username:hash` lines, parsed into a map (errors name the file
//! and the line), and verification against it.

use super::{Hash, HashError, MAX_FIELD_LEN};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed password file: user name -> hash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    users: HashMap<Box<str>, Hash>,
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    /// Not valid UTF-8 (MQTT user names are UTF-8 strings).
    NotUtf8,
    /// Not blank, not a `#` comment, and no `:`.
    NoColon,
    EmptyUsername,
    /// Longer than Mosquitto's 65535-byte limit on user names and hashes.
    TooLong,
    /// `username:` with nothing after the colon (Mosquitto refuses plain-text passwords too,
    /// and so does ringmq: only hashes).
    EmptyHash {
        username: String,
    },
    Hash {
        username: String,
        error: HashError,
    },
    /// The user already had a line (Mosquitto refuses the file too).
    Duplicate {
        username: String,
    },
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotUtf8 => f.write_str("not valid UTF-8"),
            Self::NoColon => f.write_str("no ':' between user name and hash"),
            Self::EmptyUsername => f.write_str("empty user name"),
            Self::TooLong => write!(f, "field longer than {MAX_FIELD_LEN} bytes"),
            Self::EmptyHash { username } => write!(f, "user '{username}' has no hash"),
            Self::Hash { username, error } => write!(f, "user '{username}': {error}"),
            Self::Duplicate { username } => write!(f, "user '{username}' listed twice"),
        }
    }
}

/// A line of a password file that cannot be used, by 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub error: LineError,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

impl std::error::Error for ParseError {}

/// Why a password file could not be loaded; names the file.
#[derive(Debug)]
pub enum LoadError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    Parse {
        path: PathBuf,
        error: ParseError,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => {
                write!(f, "password file {}: {error}", path.display())
            }
            Self::Parse { path, error } => {
                write!(f, "password file {}, {error}", path.display())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// One line of a password file, split but not yet decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// Blank or a `#` comment: kept as it is when the file is rewritten.
    Other,
    Entry {
        username: &'a str,
        hash: &'a str,
    },
}

/// Splits one line (without its `\n`) the way Mosquitto does: the user name is everything
/// before the first `:`, the hash everything after it, both trimmed of blanks.
pub(crate) fn split_line(raw: &[u8]) -> Result<Line<'_>, LineError> {
    let text = std::str::from_utf8(raw).map_err(|_| LineError::NotUtf8)?;
    let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if text.is_empty() || text.starts_with('#') {
        return Ok(Line::Other);
    }
    let (username, hash) = text.split_once(':').ok_or(LineError::NoColon)?;
    let username = username.trim_matches(|c: char| c.is_ascii_whitespace());
    let hash = hash.trim_matches(|c: char| c.is_ascii_whitespace());
    if username.is_empty() {
        return Err(LineError::EmptyUsername);
    }
    if username.len() > MAX_FIELD_LEN || hash.len() > MAX_FIELD_LEN {
        return Err(LineError::TooLong);
    }
    Ok(Line::Entry { username, hash })
}

/// The lines of `text` without their `\n` (a `\r` before it is trimmed as a blank).
pub(crate) fn lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    text.split(|&b| b == b'\n')
        .filter(move |_| !text.is_empty())
}

impl PasswordFile {
    /// Parses a whole file. Blank lines and lines starting with `#` are skipped.
    pub fn parse(text: &[u8]) -> Result<Self, ParseError> {
        let mut users = HashMap::new();
        for (index, raw) in lines(text).enumerate() {
            let at = |error| ParseError {
                line: index + 1,
                error,
            };
            let (username, hash) = match split_line(raw).map_err(at)? {
                Line::Other => continue,
                Line::Entry { username, hash } => (username, hash),
            };
            if hash.is_empty() {
                return Err(at(LineError::EmptyHash {
                    username: username.to_owned(),
                }));
            }
            let hash = Hash::parse(hash).map_err(|error| {
                at(LineError::Hash {
                    username: username.to_owned(),
                    error,
                })
            })?;
            if users.insert(Box::from(username), hash).is_some() {
                return Err(at(LineError::Duplicate {
                    username: username.to_owned(),
                }));
            }
        }
        Ok(Self { users })
    }

    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = std::fs::read(path).map_err(|error| LoadError::Read {
            path: path.to_owned(),
            error,
        })?;
        Self::parse(&text).map_err(|error| LoadError::Parse {
            path: path.to_owned(),
            error,
        })
    }

    pub fn get(&self, username: &str) -> Option<&Hash> {
        self.users.get(username)
    }

    /// Whether `username` is listed and `password` matches its hash. Slow by design (see the
    /// module doc). An unknown user answers at once: user names are not secret here, as in
    /// Mosquitto.
    pub fn verify(&self, username: &str, password: &[u8]) -> bool {
        self.get(username).is_some_and(|hash| hash.verify(password))
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn usernames(&self) -> impl Iterator<Item = &str> {
        self.users.keys().map(|u| &**u)
    }
}
