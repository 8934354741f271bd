//! The recording file format: the probe's `Update` stream, on disk.
//!
//! ```text
//! header:  b"TASKSCOPE-REC\0"  (14 bytes, magic)
//!          u16 little-endian    format version (currently 1)
//! body:    repeated { varint length, `taskscope.v1.Update` protobuf bytes }
//! ```
//!
//! The writer flushes after every batch so that a process killed at any moment (even with
//! SIGKILL) leaves a file whose complete messages are all readable; only the message being
//! written at that instant can be cut short. [`Reader`] therefore treats a short last
//! message as the normal end of a cut recording ([`ReadError::Truncated`], which callers may
//! report as a warning), and anything else that does not parse as a hard error with the
//! byte offset where it went wrong.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::v1::Update;

/// The bytes every recording starts with.
pub const MAGIC: &[u8; 14] = b"TASKSCOPE-REC\0";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 1;
/// File name extension of recordings (`<program>-<pid>.tsrec`).
pub const EXTENSION: &str = "tsrec";
/// Largest message a reader accepts; anything larger is corruption, not data.
pub const MAX_MESSAGE_LEN: u64 = 64 * 1024 * 1024;

const HEADER_LEN: u64 = MAGIC.len() as u64 + 2;

/// A message buffer larger than this is released after use rather than kept for the
/// next message, so one large message does not pin its size for the rest of the read.
const KEPT_BUFFER: usize = 1024 * 1024;

/// Why a recording could not be read (further).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be opened or read.
    #[error("cannot read recording {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The path names something other than a regular file (a FIFO, a device, a socket):
    /// reading it could block forever or never end.
    #[error(
        "{path} is {kind}, not a regular file; a recording must be a file written by an \
         app run with TASKSCOPE_RECORD=FILE (copy it to a file first)"
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead, e.g. "a FIFO".
        kind: &'static str,
    },
    /// The file does not start with the recording magic.
    #[error(
        "{path} is not a taskscope recording (no `TASKSCOPE-REC` header at byte 0); \
         recordings are written by apps run with TASKSCOPE_RECORD=FILE"
    )]
    NotARecording {
        /// The file.
        path: PathBuf,
    },
    /// The file was written by a newer (or unknown) format version.
    #[error(
        "{path} is a recording of format version {found}, this taskscope reads version {VERSION}; \
         use a taskscope at least as new as the probe that wrote it"
    )]
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// The version found in the header.
        found: u16,
    },
    /// A message could not be decoded: the file is damaged from this offset on.
    #[error("{path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Byte offset of the message that failed.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The file ends in the middle of a message: the writer was stopped while writing it.
    /// Every message before `offset` was read.
    #[error(
        "{path} ends in the middle of a message at byte {offset} (the recording was cut, \
         e.g. the process was killed); everything before it was read"
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Byte offset where the incomplete message starts.
        offset: u64,
    },
}

/// Reads a recording message by message.
///
/// Iterating yields every complete `Update`, then at most one error: after an error the
/// iterator is finished.
pub struct Reader<R = BufReader<File>> {
    source: R,
    path: PathBuf,
    offset: u64,
    done: bool,
    buf: Vec<u8>,
}

impl Reader {
    /// Opens a recording file and checks its header. Anything but a regular file is
    /// refused ([`ReadError::NotAFile`]) before a byte is read.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let path = path.as_ref().to_path_buf();
        let file = open_regular(&path)?;
        Self::new(BufReader::with_capacity(256 * 1024, file), path)
    }
}

/// Opens `path` for reading if it is a regular file. The open does not block (a FIFO
/// without a writer would block a plain `open` forever), and the check is made on the
/// opened file, so what is read is what was checked.
fn open_regular(path: &Path) -> Result<File, ReadError> {
    let io = |source| ReadError::Io {
        path: path.to_owned(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK only changes how FIFOs and devices open; a regular file reads the
        // same with it.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(io)?;
    let kind = file.metadata().map_err(io)?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(ReadError::NotAFile {
        path: path.to_owned(),
        kind: describe(kind),
    })
}

/// "a FIFO", "a directory", …: what a non-regular file is, for error messages.
fn describe(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        return "a directory";
    }
    "a special file"
}

impl<R: Read> Reader<R> {
    /// Reads the header from `source`; `path` names the source in errors.
    pub fn new(mut source: R, path: PathBuf) -> Result<Self, ReadError> {
        let mut header = [0u8; HEADER_LEN as usize];
        let read = read_full(&mut source, &mut header).map_err(|source| ReadError::Io {
            path: path.clone(),
            source,
        })?;
        if read < MAGIC.len() || &header[..MAGIC.len()] != MAGIC {
            return Err(ReadError::NotARecording { path });
        }
        if read < header.len() {
            return Err(ReadError::Truncated {
                path,
                offset: read as u64,
            });
        }
        let found = u16::from_le_bytes([header[MAGIC.len()], header[MAGIC.len() + 1]]);
        if found != VERSION {
            return Err(ReadError::UnsupportedVersion { path, found });
        }
        Ok(Self {
            source,
            path,
            offset: HEADER_LEN,
            done: false,
            buf: Vec::new(),
        })
    }

    /// Byte offset of the next message.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The same reader, at the same place, over its source wrapped by `wrap` (boxed, for
    /// one type over files and bytes).
    pub fn map_source<S>(self, wrap: impl FnOnce(R) -> S) -> Reader<S> {
        Reader {
            source: wrap(self.source),
            path: self.path,
            offset: self.offset,
            done: self.done,
            buf: self.buf,
        }
    }

    fn next_update(&mut self) -> Result<Option<Update>, ReadError> {
        let start = self.offset;
        let len = match read_varint(&mut self.source) {
            Ok(None) => return Ok(None),
            Ok(Some((len, _))) if len > MAX_MESSAGE_LEN => {
                return Err(self.corrupt(start, format!("message length {len} is implausible")));
            }
            Ok(Some((len, varint_len))) => {
                self.offset += varint_len;
                len
            }
            Err(VarintError::Eof) => return Err(self.truncated(start)),
            Err(VarintError::Overlong) => {
                return Err(self.corrupt(start, "malformed length prefix".into()));
            }
            Err(VarintError::Io(source)) => return Err(self.io(source)),
        };
        // Grown as bytes arrive, not sized from the prefix: a length that promises more
        // than the file holds costs what the file holds, not what it promised.
        self.buf.clear();
        if self.buf.capacity() > KEPT_BUFFER {
            self.buf = Vec::new();
        }
        let read = read_up_to(&mut self.source, len, &mut self.buf).map_err(|e| self.io(e))?;
        if read < len {
            return Err(self.truncated(start));
        }
        self.offset += len;
        Update::decode(self.buf.as_slice())
            .map(Some)
            .map_err(|e| self.corrupt(start, format!("undecodable message: {e}")))
    }

    fn corrupt(&self, offset: u64, reason: String) -> ReadError {
        ReadError::Corrupt {
            path: self.path.clone(),
            offset,
            reason,
        }
    }

    fn truncated(&self, offset: u64) -> ReadError {
        ReadError::Truncated {
            path: self.path.clone(),
            offset,
        }
    }

    fn io(&self, source: io::Error) -> ReadError {
        ReadError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl<R: Read + Seek> Reader<R> {
    /// Goes back (or forth) to a message read before: `offset` is a value [`Reader::offset`]
    /// returned. This is how a player re-reads a recording without holding it in memory.
    pub fn seek_to(&mut self, offset: u64) -> Result<(), ReadError> {
        self.source
            .seek(SeekFrom::Start(offset))
            .map_err(|e| self.io(e))?;
        self.offset = offset;
        self.done = false;
        Ok(())
    }
}

impl<R: Read> Iterator for Reader<R> {
    type Item = Result<Update, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_update() {
            Ok(Some(update)) => Some(Ok(update)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// A whole recording read into memory.
#[derive(Debug, Default)]
pub struct Recording {
    /// Every complete update, in order.
    pub updates: Vec<Update>,
    /// Set when the file was cut in the middle of a message (the updates before it are
    /// complete).
    pub truncated_at: Option<u64>,
}

/// Reads a whole recording. A cut last message is not an error (see
/// [`Recording::truncated_at`]); a foreign or damaged file is.
pub fn read_all(path: impl AsRef<Path>) -> Result<Recording, ReadError> {
    let mut recording = Recording::default();
    for item in Reader::open(path)? {
        match item {
            Ok(update) => recording.updates.push(update),
            Err(ReadError::Truncated { offset, .. }) => recording.truncated_at = Some(offset),
            Err(e) => return Err(e),
        }
    }
    Ok(recording)
}

/// Writes a recording. Every [`Writer::write`] call is flushed to the OS before it returns,
/// so a killed process loses at most the message being written.
pub struct Writer<W: Write = File> {
    sink: BufWriter<W>,
    scratch: Vec<u8>,
}

impl Writer<File> {
    /// Creates (or replaces) the file at `path` and writes the header.
    pub fn create(path: impl AsRef<Path>) -> io::Result<Self> {
        Self::new(File::create(path)?)
    }
}

impl<W: Write> Writer<W> {
    /// Writes the header to `sink`.
    pub fn new(sink: W) -> io::Result<Self> {
        let mut sink = BufWriter::with_capacity(256 * 1024, sink);
        sink.write_all(MAGIC)?;
        sink.write_all(&VERSION.to_le_bytes())?;
        sink.flush()?;
        Ok(Self {
            sink,
            scratch: Vec::new(),
        })
    }

    /// Appends a batch of updates and flushes them.
    pub fn write(&mut self, updates: &[Update]) -> io::Result<()> {
        for update in updates {
            self.scratch.clear();
            update
                .encode_length_delimited(&mut self.scratch)
                .expect("a Vec grows as needed");
            self.sink.write_all(&self.scratch)?;
        }
        self.sink.flush()
    }

    /// The underlying sink.
    pub fn into_inner(self) -> io::Result<W> {
        self.sink.into_inner().map_err(|e| e.into_error())
    }
}

/// Reads until `buf` is full or the source ends; returns how much was read.
fn read_full(source: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Appends up to `len` bytes of `source` to `buf`; returns how many there were.
fn read_up_to(source: &mut impl Read, len: u64, buf: &mut Vec<u8>) -> io::Result<u64> {
    let mut limited = source.take(len);
    limited.read_to_end(buf)?;
    Ok(len - limited.limit())
}

enum VarintError {
    /// The source ended inside the varint.
    Eof,
    /// More than 10 bytes.
    Overlong,
    Io(io::Error),
}

/// Reads a protobuf varint; `Ok(None)` at a clean end of input. Returns the value and its
/// encoded length.
fn read_varint(source: &mut impl Read) -> Result<Option<(u64, u64)>, VarintError> {
    let mut value = 0u64;
    for i in 0..10u64 {
        let mut byte = [0u8; 1];
        match read_full(source, &mut byte) {
            Ok(0) if i == 0 => return Ok(None),
            Ok(0) => return Err(VarintError::Eof),
            Ok(_) => {}
            Err(e) => return Err(VarintError::Io(e)),
        }
        value |= u64::from(byte[0] & 0x7f) << (7 * i);
        if byte[0] & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Err(VarintError::Overlong)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::ProcessInfo;

    fn update(now_ns: u64) -> Update {
        Update {
            now_ns,
            process: Some(ProcessInfo {
                pid: 42,
                program: "app".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn recording_bytes(updates: &[Update]) -> Vec<u8> {
        let mut writer = Writer::new(Vec::new()).unwrap();
        writer.write(updates).unwrap();
        writer.into_inner().unwrap()
    }

    fn read(bytes: &[u8]) -> Vec<Result<Update, ReadError>> {
        match Reader::new(bytes, PathBuf::from("test.tsrec")) {
            Ok(reader) => reader.collect(),
            Err(e) => vec![Err(e)],
        }
    }

    #[test]
    fn what_is_written_reads_back_in_order() {
        let updates: Vec<_> = (1..=3).map(update).collect();
        let read: Vec<_> = read(&recording_bytes(&updates))
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(read, updates);
    }

    #[test]
    fn a_cut_last_message_keeps_every_complete_one_and_says_where_it_was_cut() {
        let bytes = recording_bytes(&[update(1), update(2)]);
        let cut = &bytes[..bytes.len() - 3];
        let items = read(cut);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap().now_ns, 1);
        let second_start = HEADER_LEN + update(1).encoded_len() as u64 + 1;
        match &items[1] {
            Err(ReadError::Truncated { offset, .. }) => assert_eq!(*offset, second_start),
            other => panic!("expected truncation, got {other:?}"),
        }
    }

    #[test]
    fn a_foreign_file_is_named_as_such() {
        let items = read(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\0\0");
        assert!(matches!(items[0], Err(ReadError::NotARecording { .. })));
        let message = items[0].as_ref().unwrap_err().to_string();
        assert!(message.contains("not a taskscope recording"), "{message}");
    }

    #[test]
    fn only_a_regular_file_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        match Reader::open(dir.path()) {
            Err(error @ ReadError::NotAFile { .. }) => {
                assert!(
                    error
                        .to_string()
                        .contains("is a directory, not a regular file")
                );
            }
            other => panic!("a directory was opened: {:?}", other.err()),
        }
    }

    #[test]
    fn an_empty_file_is_not_a_recording() {
        assert!(matches!(read(b"")[0], Err(ReadError::NotARecording { .. })));
    }

    #[test]
    fn a_newer_version_is_refused_with_both_versions_named() {
        let mut bytes = recording_bytes(&[]);
        bytes[MAGIC.len()] = 9;
        let message = read(&bytes)[0].as_ref().unwrap_err().to_string();
        assert!(
            message.contains("version 9") && message.contains("version 1"),
            "{message}"
        );
    }

    #[test]
    fn garbage_after_the_header_is_corruption_at_its_offset() {
        let mut bytes = recording_bytes(&[update(1)]);
        let garbage_at = bytes.len() as u64;
        bytes.extend_from_slice(&[0x05, 0xff, 0xff, 0xff, 0xff, 0xff]);
        let items = read(&bytes);
        assert!(items[0].is_ok());
        match &items[1] {
            Err(ReadError::Corrupt { offset, .. }) => assert_eq!(*offset, garbage_at),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn an_implausible_length_is_corruption_not_an_allocation() {
        let mut bytes = recording_bytes(&[]);
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(matches!(read(&bytes)[0], Err(ReadError::Corrupt { .. })));
    }
}
