//! A shard's open log on monoio file IO (io_uring, or plain syscalls on the legacy driver):
//! append a batch at the end, sync it, and replace the whole file by a snapshot
//! (compaction). The only code that writes a log while the broker serves.
//!
//! Buffers go in by value and come back, as monoio's IO does, so a shard reuses them.
//! Opening, the rename and the directory handle go through `std::fs` (a metadata operation
//! each, at start and once per compaction); the data and every sync through monoio.

use super::frame::HEADER;
use super::recovery::log_path;
use monoio::fs::File;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};

/// One shard's log, open for appending.
#[derive(Debug)]
pub struct LogFile {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    /// Bytes in the file: where the next batch goes.
    len: u64,
}

impl LogFile {
    /// Opens (or creates, with its header) the log of `shard` in `dir`, after recovery cut
    /// any torn tail. Must run on the shard's runtime.
    pub async fn open(dir: &Path, shard: usize) -> io::Result<Self> {
        let path = log_path(dir, shard);
        let std_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let len = std_file.metadata()?.len();
        let mut log = Self {
            file: File::from_std(std_file)?,
            path,
            dir: dir.to_path_buf(),
            len,
        };
        if len == 0 {
            let (written, _) = log.append(HEADER.to_vec()).await;
            written?;
        }
        Ok(log)
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `batch` at the end with one write (more only if the kernel takes part of it);
    /// gives the buffer back. After an error the log's end is unknown: the caller replaces
    /// the log (`replace`) before appending again.
    pub async fn append(&mut self, batch: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let len = batch.len() as u64;
        let (result, batch) = self.file.write_all_at(batch, self.len).await;
        if result.is_ok() {
            self.len += len;
        }
        (result, batch)
    }

    /// `fdatasync`: what was appended is on disk.
    pub async fn sync(&self) -> io::Result<()> {
        self.file.sync_data().await
    }

    /// Replaces the log by `snapshot` (a whole log, header first): written to a new file
    /// beside it, synced, renamed over it, and the directory synced, so that a crash at any
    /// point leaves either the old log or the new one. Gives the buffer back.
    pub async fn replace(&mut self, snapshot: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        let tmp = self.path.with_extension("log.tmp");
        let file = match std::fs::File::create(&tmp).and_then(File::from_std) {
            Ok(file) => file,
            Err(e) => return (Err(e), snapshot),
        };
        let len = snapshot.len() as u64;
        let (written, snapshot) = file.write_all_at(snapshot, 0).await;
        let result = match written {
            Ok(()) => self.install(file, &tmp).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => self.len = len,
            Err(_) => {
                let _ = std::fs::remove_file(&tmp);
            }
        }
        (result, snapshot)
    }

    async fn install(&mut self, file: File, tmp: &Path) -> io::Result<()> {
        file.sync_all().await?;
        std::fs::rename(tmp, &self.path)?;
        let dir = File::from_std(std::fs::File::open(&self.dir)?)?;
        dir.sync_all().await?;
        // The old file is dropped (closed) here; its inode goes with its last descriptor.
        self.file = file;
        Ok(())
    }
}
