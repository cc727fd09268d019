//! The extent table of a packed model image (written by `cargo axiom pack`):
//! where the globals and each layer live in the file, and their CRC32C.
//!
//! Keys (all offsets absolute from byte 0 of the file; sizes include the
//! zero padding to 4 KiB; CRC32C over exactly `size` bytes at `offset`):
//! `axiom.pack.version` (u32, 1), `axiom.globals.{offset,size}` (u64),
//! `axiom.globals.crc32c` (u32), `axiom.layer.count` (u32),
//! `axiom.layer.{offset,size}` (u64 arrays), `axiom.layer.crc32c` (u32 array).
//! See `docs/engine.md`, "The packed model image".
//!
//! [`PackedLayout::from_gguf`] validates the table against the file (it works
//! on a header-only [`Gguf`]): a corrupt or foreign image is an error naming
//! the problem, so the kernel never streams from a table it cannot trust.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::crc32c::crc32c;
use crate::gguf::Gguf;

/// Version of the layout this code reads.
pub const PACK_VERSION: u32 = 1;
/// Alignment of every extent (and of `general.alignment`).
pub const EXTENT_ALIGN: u64 = 4096;

/// Which extent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtentId {
    Globals,
    Layer(usize),
}

impl fmt::Display for ExtentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Globals => f.write_str("globals"),
            Self::Layer(i) => write!(f, "layer {i}"),
        }
    }
}

/// One contiguous byte range of the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Absolute file offset (a multiple of 4096).
    pub offset: u64,
    /// Bytes, padding included (a multiple of 4096).
    pub size: u64,
    pub crc32c: u32,
}

impl Extent {
    pub fn end(&self) -> u64 {
        self.offset + self.size
    }
}

/// Why an image's extent table was rejected, or an extent's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackedError {
    /// No `axiom.pack.version`: the file was not written by `pack`.
    NotPacked,
    UnsupportedVersion { version: u32 },
    /// A key missing or of the wrong type or length.
    BadKey { key: &'static str, reason: String },
    /// The extents do not tile the data section as `pack` lays it out.
    BadLayout { extent: ExtentId, reason: String },
    /// A tensor outside the extent its name assigns it to.
    TensorOutside { tensor: String, extent: ExtentId },
    /// Bytes read for an extent do not match its checksum.
    Checksum { extent: ExtentId, expected: u32, found: u32 },
}

impl fmt::Display for PackedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPacked => f.write_str(
                "not a packed AXIOM image (no axiom.pack.version key): pack the model with `cargo axiom pack IN.gguf OUT.gguf`",
            ),
            Self::UnsupportedVersion { version } => {
                write!(f, "packed image version {version} is not supported (this build reads version {PACK_VERSION}); repack the model")
            }
            Self::BadKey { key, reason } => write!(f, "packed image: metadata key {key}: {reason}"),
            Self::BadLayout { extent, reason } => write!(f, "packed image: {extent} extent: {reason}"),
            Self::TensorOutside { tensor, extent } => write!(f, "packed image: tensor {tensor} lies outside the {extent} extent"),
            Self::Checksum { extent, expected, found } => write!(
                f,
                "{extent}: CRC32C mismatch (stored {expected:#010x}, computed {found:#010x}): the image is corrupt"
            ),
        }
    }
}

impl core::error::Error for PackedError {}

/// The validated extent table of a packed image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedLayout {
    pub globals: Extent,
    pub layers: Vec<Extent>,
}

fn key_err(key: &'static str, reason: impl Into<String>) -> PackedError {
    PackedError::BadKey { key, reason: reason.into() }
}

fn get_u64(g: &Gguf<'_>, key: &'static str) -> Result<u64, PackedError> {
    g.get(key).ok_or_else(|| key_err(key, "missing"))?.as_u64().ok_or_else(|| key_err(key, "not an unsigned integer"))
}

fn get_array(g: &Gguf<'_>, key: &'static str, len: usize) -> Result<Vec<u64>, PackedError> {
    let a = g.get_array(key).ok_or_else(|| key_err(key, "missing or not an array"))?;
    if a.len() != len {
        return Err(key_err(key, format!("{} entries for {len} layers", a.len())));
    }
    a.iter().map(|v| v.as_u64().ok_or_else(|| key_err(key, "an entry is not an unsigned integer"))).collect()
}

impl PackedLayout {
    /// Reads and validates the extent table of `g` (a whole file or just its
    /// header): version, alignment, globals at the data section, layers
    /// following back to back to the end of the file, every tensor inside
    /// its extent (`blk.N.*` in layer N, the rest in the globals).
    pub fn from_gguf(g: &Gguf<'_>) -> Result<Self, PackedError> {
        let version = match g.get("axiom.pack.version") {
            None => return Err(PackedError::NotPacked),
            Some(v) => v.as_u32().ok_or_else(|| key_err("axiom.pack.version", "not a u32"))?,
        };
        if version != PACK_VERSION {
            return Err(PackedError::UnsupportedVersion { version });
        }
        if g.alignment() != EXTENT_ALIGN {
            return Err(key_err("general.alignment", format!("{} instead of {EXTENT_ALIGN}", g.alignment())));
        }
        let crc32 = |v: u64, key| u32::try_from(v).map_err(|_| key_err(key, "a checksum does not fit in 32 bits"));
        let globals = Extent {
            offset: get_u64(g, "axiom.globals.offset")?,
            size: get_u64(g, "axiom.globals.size")?,
            crc32c: crc32(get_u64(g, "axiom.globals.crc32c")?, "axiom.globals.crc32c")?,
        };
        let n = get_u64(g, "axiom.layer.count")?;
        let n = usize::try_from(n).ok().filter(|&n| n <= 1 << 16).ok_or_else(|| key_err("axiom.layer.count", "absurd"))?;
        let offsets = get_array(g, "axiom.layer.offset", n)?;
        let sizes = get_array(g, "axiom.layer.size", n)?;
        let crcs = get_array(g, "axiom.layer.crc32c", n)?;
        let mut layers = Vec::with_capacity(n);
        for i in 0..n {
            layers.push(Extent { offset: offsets[i], size: sizes[i], crc32c: crc32(crcs[i], "axiom.layer.crc32c")? });
        }
        let layout = PackedLayout { globals, layers };
        layout.check_tiling(g)?;
        layout.check_tensors(g)?;
        Ok(layout)
    }

    /// Where the image ends by its own extent table (the end of the last
    /// extent), unchecked; `None` without a readable table. A disk region
    /// (a partition) larger than its image is read up to here.
    pub fn declared_size(g: &Gguf<'_>) -> Option<u64> {
        let n = usize::try_from(g.get("axiom.layer.count")?.as_u64()?).ok()?;
        let (offset, size) = match n.checked_sub(1) {
            None => (g.get("axiom.globals.offset")?.as_u64()?, g.get("axiom.globals.size")?.as_u64()?),
            Some(last) => {
                let offsets = g.get_array("axiom.layer.offset")?;
                let sizes = g.get_array("axiom.layer.size")?;
                (offsets.get(last)?.as_u64()?, sizes.get(last)?.as_u64()?)
            }
        };
        offset.checked_add(size)
    }

    /// The extent `id`, if it exists.
    pub fn extent(&self, id: ExtentId) -> Option<&Extent> {
        match id {
            ExtentId::Globals => Some(&self.globals),
            ExtentId::Layer(i) => self.layers.get(i),
        }
    }

    /// Checks bytes read for extent `id` against its stored CRC32C.
    pub fn verify(&self, id: ExtentId, bytes: &[u8]) -> Result<(), PackedError> {
        let e = self.extent(id).ok_or_else(|| PackedError::BadLayout { extent: id, reason: "no such extent".into() })?;
        if bytes.len() as u64 != e.size {
            return Err(PackedError::BadLayout { extent: id, reason: format!("{} bytes given, extent has {}", bytes.len(), e.size) });
        }
        let found = crc32c(bytes);
        if found != e.crc32c {
            return Err(PackedError::Checksum { extent: id, expected: e.crc32c, found });
        }
        Ok(())
    }

    /// Size of the largest layer extent (the size of a kernel weight slot).
    pub fn max_layer_size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).max().unwrap_or(0)
    }

    fn check_tiling(&self, g: &Gguf<'_>) -> Result<(), PackedError> {
        let bad = |extent, reason: String| Err(PackedError::BadLayout { extent, reason });
        if self.globals.offset != g.data_offset() {
            return bad(ExtentId::Globals, format!("starts at {} but the data section starts at {}", self.globals.offset, g.data_offset()));
        }
        let mut end = self.globals.offset;
        let all = core::iter::once((ExtentId::Globals, &self.globals))
            .chain(self.layers.iter().enumerate().map(|(i, e)| (ExtentId::Layer(i), e)));
        for (id, e) in all {
            if e.offset % EXTENT_ALIGN != 0 || e.size % EXTENT_ALIGN != 0 {
                return bad(id, format!("offset {} / size {} not multiples of {EXTENT_ALIGN}", e.offset, e.size));
            }
            if e.offset != end {
                return bad(id, format!("starts at {} but the previous extent ends at {end}", e.offset));
            }
            if matches!(id, ExtentId::Layer(_)) && e.size == 0 {
                return bad(id, "is empty".into());
            }
            end = e.offset.checked_add(e.size).ok_or(PackedError::BadLayout { extent: id, reason: "size overflows".into() })?;
        }
        if end != g.file_size() {
            let last = self.layers.len().checked_sub(1).map_or(ExtentId::Globals, ExtentId::Layer);
            return bad(last, format!("the extents end at {end} but the file is {} bytes", g.file_size()));
        }
        Ok(())
    }

    fn check_tensors(&self, g: &Gguf<'_>) -> Result<(), PackedError> {
        for t in g.tensors() {
            let id = match t.name.strip_prefix("blk.").and_then(|r| r.split_once('.')).and_then(|(n, _)| n.parse::<usize>().ok()) {
                Some(i) => ExtentId::Layer(i),
                None => ExtentId::Globals,
            };
            let r = g.tensor_range(t);
            let inside = self.extent(id).is_some_and(|e| e.offset <= r.start && r.end <= e.end());
            if !inside {
                return Err(PackedError::TensorOutside { tensor: t.name.into(), extent: id });
            }
        }
        Ok(())
    }
}
