//! Where the model image is: a GPT partition (`axiom-model`, or AXIOM's
//! partition type GUID, on any NVMe namespace; `model=part:NAME` names
//! another), or a namespace and byte offset (`model=ns:N,offset:BYTES`).
//! The GPT is read and checked by `axiom_proto::gpt` (header and entry array
//! CRC32s, bounds); a disk with no GPT at all holds the image at its start.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use axiom_drivers::nvme::Namespace;
use axiom_proto::cmdline::{ModelLocation, PartSelect};
use axiom_proto::gpt::{self, GptError, GptHeader, Partition};

use crate::storage::{NvmeQueuePair, Storage};

/// The bytes of a namespace that hold the model image.
pub struct ModelPlace {
    pub ns: Namespace,
    /// Byte offset of the image in the namespace.
    pub offset: u64,
    /// Bytes from `offset` that belong to the image's place (the partition,
    /// or the rest of the namespace).
    pub len: u64,
    /// The partition, if the image is in one.
    pub partition: Option<Partition>,
}

impl ModelPlace {
    /// For messages: "partition 'axiom-model' (...) of namespace 1" or
    /// "namespace 1 from byte 0".
    pub fn describe(&self) -> String {
        match &self.partition {
            Some(p) => format!("partition {p} of namespace {}", self.ns.nsid),
            None => format!("namespace {} from byte {}", self.ns.nsid, self.offset),
        }
    }

    /// The partition's name, if in one.
    pub fn partition_name(&self) -> Option<String> {
        self.partition.as_ref().map(|p| p.name_chars().collect())
    }
}

/// What one namespace's partition table says.
enum Table {
    None,
    Partitions(Vec<Partition>),
}

/// Reads and checks the GPT of `ns`.
fn read_table(qp: &mut NvmeQueuePair, ns: &Namespace) -> Result<Table, String> {
    let block = ns.block_size as usize;
    if ns.blocks < 3 {
        return Ok(Table::None);
    }
    let mut buf = vec![0u8; block];
    qp.read(ns, gpt::HEADER_LBA, &mut buf).map_err(|e| format!("reading LBA 1 of namespace {}: {e}", ns.nsid))?;
    let header = match GptHeader::parse(&buf, ns.blocks) {
        Ok(h) => h,
        Err(GptError::NoSignature) => return Ok(Table::None),
        Err(e) => return Err(format!("namespace {}: {e}", ns.nsid)),
    };
    let mut entries = vec![0u8; header.entries_bytes().div_ceil(block) * block];
    qp.read(ns, header.entries_lba, &mut entries).map_err(|e| format!("reading the GPT entries of namespace {}: {e}", ns.nsid))?;
    let parts = header.partitions(&entries).map_err(|e| format!("namespace {}: {e}", ns.nsid))?;
    Ok(Table::Partitions(parts.collect()))
}

/// Finds the image as `loc` says.
pub fn find(storage: &mut Storage, qp: &mut NvmeQueuePair, loc: &ModelLocation) -> Result<ModelPlace, String> {
    let wanted = match loc.part {
        PartSelect::Raw => {
            let ns = match loc.nsid {
                None => storage.namespace,
                Some(nsid) => storage.controller.namespace(nsid).map_err(|e| format!("model=ns:{nsid}: {e}"))?,
            };
            let len = ns.bytes().saturating_sub(loc.offset);
            return Ok(ModelPlace { ns, offset: loc.offset, len, partition: None });
        }
        PartSelect::Search => None,
        PartSelect::Named(name) => Some(name),
    };
    let nsids = match loc.nsid {
        Some(n) => vec![n],
        None => storage.controller.active_namespaces().map_err(|e| format!("listing the NVMe namespaces: {e}"))?,
    };
    let matches = |p: &Partition| match &wanted {
        Some(name) => p.has_name(name.as_str()),
        None => p.has_name(gpt::MODEL_PARTITION) || p.type_guid == gpt::MODEL_TYPE,
    };
    let mut seen: Vec<String> = Vec::new();
    let mut broken: Vec<String> = Vec::new();
    let mut tables = 0;
    for nsid in nsids {
        let ns = storage.controller.namespace(nsid).map_err(|e| format!("NVMe namespace {nsid}: {e}"))?;
        match read_table(qp, &ns) {
            Ok(Table::None) => seen.push(format!("namespace {nsid}: no GPT")),
            Ok(Table::Partitions(parts)) => {
                tables += 1;
                if let Some(p) = parts.iter().find(|p| matches(p)) {
                    let block = ns.block_size as u64;
                    return Ok(ModelPlace { ns, offset: p.first_lba * block, len: p.blocks() * block, partition: Some(*p) });
                }
                let names: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
                seen.push(format!("namespace {nsid}: GPT with {}", if names.is_empty() { String::from("no partitions") } else { names.join(", ") }));
            }
            Err(e) => broken.push(e),
        }
    }
    // A disk without any partition table holds the image at its start.
    if wanted.is_none() && tables == 0 && broken.is_empty() {
        let ns = storage.namespace;
        return Ok(ModelPlace { ns, offset: 0, len: ns.bytes(), partition: None });
    }
    let what = match &wanted {
        Some(name) => format!("no GPT partition named '{}'", name.as_str()),
        None => format!("no GPT partition named '{}' or of type {}", gpt::MODEL_PARTITION, gpt::MODEL_TYPE),
    };
    let mut msg = format!("{what} holds the model image");
    if !broken.is_empty() {
        msg.push_str(&format!("; unusable partition table: {}", broken.join("; ")));
    }
    if !seen.is_empty() {
        msg.push_str(&format!("; {}", seen.join("; ")));
    }
    msg.push_str(" (write the image into a partition: cargo axiom disk, docs/bare-metal.md; or give model=part:NAME or model=ns:N,offset:BYTES)");
    Err(msg)
}
