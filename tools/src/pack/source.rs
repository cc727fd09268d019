//! Reading a GGUF file without mapping it: the header is read into memory
//! (growing the prefix while the parser asks for more, as the kernel does
//! from NVMe), tensor data is read on demand.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use axiom_engine::gguf::{Gguf, GgufError};

/// An open GGUF file whose header is in memory.
pub struct GgufFile {
    /// For error messages.
    path: PathBuf,
    file: File,
    header: Vec<u8>,
    size: u64,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().with_context(|| format!("cannot stat {}", path.display()))?.len();
        let mut header = Vec::new();
        let mut want: u64 = 1 << 20;
        loop {
            let want_now = want.min(size);
            if want_now > header.len() as u64 {
                let old = header.len();
                header.resize(want_now as usize, 0);
                file.seek(SeekFrom::Start(old as u64))?;
                file.read_exact(&mut header[old..]).with_context(|| format!("cannot read {}", path.display()))?;
            }
            match Gguf::parse_header(&header, size) {
                Ok(_) => break,
                Err(GgufError::NeedMore { bytes }) if bytes > size => {
                    bail!("{}: truncated GGUF file: its header needs {bytes} bytes but the file has {size}", path.display())
                }
                Err(GgufError::NeedMore { bytes }) if bytes > header.len() as u64 => want = bytes,
                Err(e) => bail!("{}: {e}", path.display()),
            }
        }
        Ok(Self { path: path.to_path_buf(), file, header, size })
    }

    /// The parsed header (cheap: re-parses the in-memory prefix).
    pub fn gguf(&self) -> Gguf<'_> {
        Gguf::parse_header(&self.header, self.size).expect("header parsed when the file was opened")
    }

    /// Reads `buf.len()` bytes at absolute file offset `at`.
    pub fn read_at(&self, at: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, at)
            .with_context(|| format!("cannot read {} bytes at offset {at} of {}", buf.len(), self.path.display()))
    }
}
