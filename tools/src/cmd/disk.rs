//! `axiom disk`: a GPT disk image holding the packed model in a partition
//! named `axiom-model` (AXIOM's partition type GUID), behind a data
//! partition that takes the rest of the disk (to show the kernel leaves
//! everything but its partition alone). The file is sparse: only the
//! partition tables and the image take space.
//!
//! Layout, in 512-byte blocks: protective MBR (LBA 0), primary GPT header
//! (1) and entry array (2..34), `axiom-data` from 1 MiB, `axiom-model` at
//! the end (1 MiB-aligned, the packed image rounded up to whole MiB), the
//! backup entry array and header in the last 33 blocks.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use axiom_proto::cmdline::parse_size;
use axiom_proto::gpt::{self, GptHeader, Guid, Partition, ENTRY_SIZE};

use super::run::resolve_disk;

#[derive(clap::Args)]
pub struct Args {
    /// GGUF model to pack (cached like `axiom run` does), or a packed image (`axiom pack`'s output).
    #[arg(long)]
    model: PathBuf,
    /// The disk image to write (replaced if it exists).
    out: PathBuf,
    /// Disk size (K/M/G suffixes).
    #[arg(long, default_value = "8G")]
    size: String,
    /// Name of the model's partition.
    #[arg(long, default_value = gpt::MODEL_PARTITION)]
    name: String,
}

pub const BLOCK: u64 = 512;
/// Partitions start on 1 MiB boundaries, as every partitioning tool does.
const ALIGN: u64 = (1 << 20) / BLOCK;
const ENTRIES: u32 = 128;
const ENTRY_BLOCKS: u64 = ENTRIES as u64 * ENTRY_SIZE as u64 / BLOCK;

pub fn main(args: Args) -> Result<i32> {
    let size = parse_size(&args.size).with_context(|| format!("--size {}: not a size (e.g. 8G, 512M)", args.size))?;
    if Partition::encode_name(&args.name).is_none() || args.name.is_empty() {
        bail!("--name {:?}: a partition name has 1 to 36 characters", args.name);
    }
    let image = packed_image(&args.model)?;
    let layout = write_disk(&image, &args.out, size, &args.name)?;
    println!("{}: {} GPT disk (sparse), 512-byte blocks", args.out.display(), human(size));
    println!("  partition 1: {}", layout.data);
    println!("  partition 2: {} holds {} ({} MiB)", layout.model, image.display(), (layout.model.blocks() * BLOCK) >> 20);
    Ok(0)
}

fn human(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else {
        format!("{} MiB", bytes >> 20)
    }
}

/// A packed image as it is, else the cached packed image of the GGUF model.
fn packed_image(model: &Path) -> Result<PathBuf> {
    if !model.is_file() {
        bail!("--model {}: no such file", model.display());
    }
    let file = File::open(model).with_context(|| format!("opening {}", model.display()))?;
    // SAFETY: read-only map of a file this process does not write.
    let bytes = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("mapping {}", model.display()))?;
    let packed = axiom_engine::gguf::Gguf::parse(&bytes).ok().is_some_and(|g| axiom_engine::image::PackedLayout::from_gguf(&g).is_ok());
    drop(bytes);
    if packed {
        return Ok(model.to_path_buf());
    }
    Ok(resolve_disk(Some(model), None, true)?.expect("a model gives a disk"))
}

/// The partitions `write_disk` made.
#[derive(Clone, Copy, Debug)]
pub struct DiskLayout {
    pub data: Partition,
    pub model: Partition,
}

/// A GUID from the clock and the process id (unique enough for the disk and
/// partition ids of one machine; a version-4 GUID layout).
fn new_guid(salt: u64) -> Guid {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0) as u64;
    let mut x = t ^ (std::process::id() as u64) << 32 ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut g = [0u8; 16];
    for chunk in g.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    g[7] = (g[7] & 0x0f) | 0x40;
    g[8] = (g[8] & 0x3f) | 0x80;
    Guid(g)
}

/// Writes the disk image `out` of `size` bytes with `image` in the model
/// partition `name`.
pub fn write_disk(image: &Path, out: &Path, size: u64, name: &str) -> Result<DiskLayout> {
    let image_len = std::fs::metadata(image).with_context(|| format!("{}", image.display()))?.len();
    let blocks = size / BLOCK;
    let last_usable = blocks.saturating_sub(2 + ENTRY_BLOCKS);
    let model_blocks = (image_len.div_ceil(BLOCK)).div_ceil(ALIGN) * ALIGN;
    // The model at the end, the data partition before it (at least 1 MiB).
    let model_first = (last_usable + 1).saturating_sub(model_blocks) / ALIGN * ALIGN;
    if !size.is_multiple_of(BLOCK) {
        bail!("--size {size}: not a multiple of {BLOCK}-byte blocks");
    }
    if model_first < 2 * ALIGN {
        let need = (2 * ALIGN + model_blocks + 1 + ENTRY_BLOCKS) * BLOCK;
        bail!("--size {size}: too small for a {image_len}-byte image and a data partition (at least {} MiB)", need.div_ceil(1 << 20));
    }
    let data = Partition {
        index: 0,
        type_guid: gpt::LINUX_DATA_TYPE,
        unique_guid: new_guid(1),
        first_lba: ALIGN,
        last_lba: model_first - 1,
        attributes: 0,
        name: Partition::encode_name("axiom-data").expect("short name"),
    };
    let model = Partition {
        index: 1,
        type_guid: gpt::MODEL_TYPE,
        unique_guid: new_guid(2),
        first_lba: model_first,
        last_lba: model_first + model_blocks - 1,
        attributes: 0,
        name: Partition::encode_name(name).context("partition name")?,
    };
    let mut entries = vec![0u8; ENTRIES as usize * ENTRY_SIZE];
    for p in [&data, &model] {
        entries[p.index as usize * ENTRY_SIZE..][..ENTRY_SIZE].copy_from_slice(&p.to_bytes());
    }
    let primary = GptHeader {
        my_lba: 1,
        alternate_lba: blocks - 1,
        first_usable_lba: 2 + ENTRY_BLOCKS,
        last_usable_lba: last_usable,
        disk_guid: new_guid(3),
        entries_lba: 2,
        num_entries: ENTRIES,
        entry_size: ENTRY_SIZE as u32,
        entries_crc: gpt::crc32(&entries),
    };
    let backup = GptHeader { my_lba: blocks - 1, alternate_lba: 1, entries_lba: blocks - 1 - ENTRY_BLOCKS, ..primary };

    let _ = std::fs::remove_file(out);
    let mut f = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    f.set_len(size)?;
    let at = |f: &mut File, lba: u64, bytes: &[u8]| -> Result<()> {
        f.seek(SeekFrom::Start(lba * BLOCK))?;
        f.write_all(bytes).with_context(|| format!("writing {}", out.display()))
    };
    at(&mut f, 0, &gpt::protective_mbr(blocks))?;
    at(&mut f, 1, &gpt::header_block(&primary, BLOCK as usize))?;
    at(&mut f, 2, &entries)?;
    at(&mut f, backup.entries_lba, &entries)?;
    at(&mut f, blocks - 1, &gpt::header_block(&backup, BLOCK as usize))?;
    f.seek(SeekFrom::Start(model.first_lba * BLOCK))?;
    let mut src = File::open(image).with_context(|| format!("opening {}", image.display()))?;
    std::io::copy(&mut src, &mut f).with_context(|| format!("copying {} into {}", image.display(), out.display()))?;
    f.sync_all()?;
    Ok(DiskLayout { data, model })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_disk_reads_back_with_both_partitions_and_the_image_in_place() {
        let dir = std::env::temp_dir().join(format!("axiom-disk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let image = dir.join("image.bin");
        let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&image, &payload).unwrap();
        let out = dir.join("disk.img");
        let layout = write_disk(&image, &out, 16 << 20, "axiom-model").unwrap();
        let d = std::fs::read(&out).unwrap();
        assert_eq!(d.len(), 16 << 20);
        assert_eq!(&d[510..512], &[0x55, 0xAA]);
        assert_eq!(d[446 + 4], 0xEE, "protective MBR");
        let blocks = d.len() as u64 / BLOCK;
        for header_lba in [1, blocks - 1] {
            let at = (header_lba * BLOCK) as usize;
            let h = if header_lba == 1 {
                GptHeader::parse(&d[at..at + 512], blocks).unwrap()
            } else {
                // The backup's fields mirror the primary's (its CRC checked by hand).
                let mut copy = d[at..at + 512].to_vec();
                copy[16..20].fill(0);
                assert_eq!(gpt::crc32(&copy[..92]), u32::from_le_bytes(d[at + 16..at + 20].try_into().unwrap()));
                assert_eq!(u64::from_le_bytes(d[at + 24..at + 32].try_into().unwrap()), blocks - 1);
                continue;
            };
            let e = (h.entries_lba * BLOCK) as usize;
            let parts: Vec<Partition> = h.partitions(&d[e..e + h.entries_bytes()]).unwrap().collect();
            assert_eq!(parts.len(), 2);
            assert!(parts[0].has_name("axiom-data") && parts[1].has_name("axiom-model"));
            assert_eq!(parts[1].type_guid, gpt::MODEL_TYPE);
            assert_eq!(parts[1], layout.model);
            assert!(parts[0].last_lba < parts[1].first_lba && parts[1].first_lba.is_multiple_of(ALIGN));
            assert!(parts[1].last_lba <= h.last_usable_lba);
            let start = (parts[1].first_lba * BLOCK) as usize;
            assert_eq!(&d[start..start + payload.len()], &payload[..], "the image at the partition's start");
            assert!(parts[1].blocks() * BLOCK >= payload.len() as u64);
        }
        let e = write_disk(&image, &out, 4 << 20, "axiom-model").unwrap_err().to_string();
        assert!(e.contains("too small"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
