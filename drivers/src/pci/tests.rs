extern crate std;

use super::*;
use crate::hw::{ConfigPorts, Registers};
use core::cell::RefCell;
use std::collections::BTreeMap;
use std::string::ToString;
use std::vec;

/// A configuration space with BARs that answer size probes like hardware.
struct FakeFunction {
    regs: [u32; 64],
    /// Per BAR dword: bits that are writable (size mask), 0 = not implemented.
    bar_masks: [u32; 6],
}

#[derive(Default)]
struct FakeBus {
    functions: RefCell<BTreeMap<(u8, u8, u8), FakeFunction>>,
    writes: RefCell<vec::Vec<(Bdf, u16, u32)>>,
}

impl FakeBus {
    fn add(&self, bus: u8, dev: u8, func: u8, vendor: u16, class: (u8, u8, u8), header: u8) -> (u8, u8, u8) {
        let mut regs = [0u32; 64];
        regs[0] = 0x1234 << 16 | vendor as u32;
        regs[2] = (class.0 as u32) << 24 | (class.1 as u32) << 16 | (class.2 as u32) << 8 | 0x02;
        regs[3] = (header as u32) << 16;
        self.functions.borrow_mut().insert((bus, dev, func), FakeFunction { regs, bar_masks: [0; 6] });
        (bus, dev, func)
    }

    fn set_bar(&self, key: (u8, u8, u8), index: usize, value: u32, mask: u32) {
        let mut f = self.functions.borrow_mut();
        let f = f.get_mut(&key).unwrap();
        f.regs[4 + index] = value;
        f.bar_masks[index] = mask;
    }

    fn reg(&self, key: (u8, u8, u8), index: usize) -> u32 {
        self.functions.borrow()[&key].regs[index]
    }
}

impl ConfigAccess for FakeBus {
    fn segment(&self) -> u16 {
        0
    }
    fn bus_range(&self) -> (u8, u8) {
        (0, 3)
    }
    fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        match self.functions.borrow().get(&(bdf.bus, bdf.device, bdf.function)) {
            Some(f) => f.regs[offset as usize / 4],
            None => !0,
        }
    }
    fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        self.writes.borrow_mut().push((bdf, offset, value));
        let mut fns = self.functions.borrow_mut();
        let Some(f) = fns.get_mut(&(bdf.bus, bdf.device, bdf.function)) else { return };
        let i = offset as usize / 4;
        if (4..10).contains(&i) {
            let mask = f.bar_masks[i - 4];
            let low_bits = f.regs[i] & !mask & 0xF;
            f.regs[i] = (value & mask) | low_bits;
        } else if i == 1 {
            f.regs[1] = (f.regs[1] & 0xFFFF_0000) | (value & 0xFFFF);
        } else {
            f.regs[i] = value;
        }
    }
}

#[test]
fn enumeration_finds_nvme_on_any_bus_and_function() {
    let bus = FakeBus::default();
    bus.add(0, 0, 0, 0x8086, (0x06, 0x00, 0x00), 0x00);
    bus.add(0, 3, 0, 0x1AF4, (0x02, 0x00, 0x00), 0x80); // multifunction
    bus.add(0, 3, 2, 0x1B36, CLASS_NVME, 0x00);
    bus.add(0, 4, 1, 0x1B36, CLASS_NVME, 0x00); // function 1 of a non-present function 0: invisible
    bus.add(2, 0, 0, 0x1B36, CLASS_NVME, 0x00);
    bus.add(2, 1, 0, 0x1B36, (0x01, 0x08, 0x01), 0x00); // NVMHCI-like, not NVMe
    let all = enumerate(&bus);
    assert_eq!(all.len(), 5);
    let nvme: vec::Vec<_> = find_nvme(&bus).iter().map(|f| f.bdf.to_string()).collect();
    assert_eq!(nvme, ["0000:00:03.2", "0000:02:00.0"]);
}

#[test]
fn bar_sizing_32_and_64_bit_and_restores_state() {
    let bus = FakeBus::default();
    let k = bus.add(0, 4, 0, 0x1B36, CLASS_NVME, 0);
    let bdf = Bdf { segment: 0, bus: 0, device: 4, function: 0 };
    // BAR0: 64-bit memory at 0x1_2345_4000, 16 KiB; BAR2: 32-bit prefetchable 1 MiB; BAR4: I/O 256 ports.
    bus.set_bar(k, 0, 0x2345_4000 | 0b100, 0xFFFF_C000);
    bus.set_bar(k, 1, 0x1, 0xFFFF_FFFF);
    bus.set_bar(k, 2, 0xFE00_0000 | 0b1000, 0xFFF0_0000);
    bus.set_bar(k, 4, 0xC001, 0xFFFF_FF00);
    {
        let mut f = bus.functions.borrow_mut();
        f.get_mut(&k).unwrap().regs[1] = 0x0010_0007;
    }
    assert_eq!(read_bar(&bus, bdf, 0), Ok(Bar::Memory { address: 0x1_2345_4000, size: 0x4000, is_64bit: true, prefetchable: false }));
    assert_eq!(read_bar(&bus, bdf, 2), Ok(Bar::Memory { address: 0xFE00_0000, size: 0x10_0000, is_64bit: false, prefetchable: true }));
    assert_eq!(read_bar(&bus, bdf, 4), Ok(Bar::Io { port: 0xC000, size: 0x100 }));
    assert_eq!(read_bar(&bus, bdf, 5), Err(BarError::NotImplemented { bdf, index: 5 }));
    // Registers are restored after probing and decoding was off during it.
    assert_eq!(bus.reg(k, 4), 0x2345_4004);
    assert_eq!(bus.reg(k, 5), 0x1);
    assert_eq!(bus.reg(k, 1) & 0xFFFF, 0x0007);
    let writes = bus.writes.borrow();
    let probe = writes.iter().position(|w| w.1 == 0x10 && w.2 == !0).unwrap();
    let disable = writes[..probe].iter().rposition(|w| w.1 == cfg::COMMAND).unwrap();
    assert_eq!(writes[disable].2 & 0x3, 0, "memory/IO decoding must be off while sizing");
}

#[test]
fn unassigned_and_malformed_bars_are_reported() {
    let bus = FakeBus::default();
    let k = bus.add(0, 1, 0, 0x1B36, CLASS_NVME, 0);
    let bdf = Bdf { segment: 0, bus: 0, device: 1, function: 0 };
    bus.set_bar(k, 0, 0b100, 0xFFFF_C000);
    bus.set_bar(k, 1, 0, 0xFFFF_FFFF);
    bus.set_bar(k, 2, 0b110, 0xFFFF_0000);
    bus.set_bar(k, 5, 0b100, 0xFFFF_0000);
    assert_eq!(read_bar(&bus, bdf, 0), Err(BarError::Unassigned { bdf, index: 0 }));
    assert!(matches!(read_bar(&bus, bdf, 2), Err(BarError::Malformed { .. })));
    assert!(matches!(read_bar(&bus, bdf, 5), Err(BarError::Malformed { .. })), "a 64-bit BAR cannot start at index 5");
    assert!(read_bar(&bus, bdf, 0).unwrap_err().to_string().contains("not assigned"));
}

#[test]
fn enable_sets_memory_bus_master_and_intx_disable() {
    let bus = FakeBus::default();
    let k = bus.add(0, 1, 0, 0x1B36, CLASS_NVME, 0);
    {
        let mut f = bus.functions.borrow_mut();
        f.get_mut(&k).unwrap().regs[1] = 0xFFFF_0001; // status bits set (W1C): must not be written back as ones
    }
    let bdf = Bdf { segment: 0, bus: 0, device: 1, function: 0 };
    let cmd = enable_polled_dma(&bus, bdf);
    assert_eq!(cmd, 0x0407);
    let last = bus.writes.borrow().last().copied().unwrap();
    assert_eq!(last.2 >> 16, 0, "status half must be written as zeros");
}

struct FakePorts {
    address: RefCell<u32>,
    bus: FakeBus,
}

impl FakePorts {
    fn target(&self) -> (Bdf, u16) {
        let a = *self.address.borrow();
        (Bdf { segment: 0, bus: (a >> 16) as u8, device: ((a >> 11) & 0x1F) as u8, function: ((a >> 8) & 7) as u8 }, (a & 0xFC) as u16)
    }
}

impl ConfigPorts for FakePorts {
    fn read_address(&self) -> u32 {
        *self.address.borrow()
    }
    fn write_address(&self, value: u32) {
        *self.address.borrow_mut() = value;
    }
    fn read_data(&self) -> u32 {
        let (bdf, offset) = self.target();
        self.bus.read32(bdf, offset)
    }
    fn write_data(&self, value: u32) {
        let (bdf, offset) = self.target();
        self.bus.write32(bdf, offset, value)
    }
}

#[test]
fn port_io_mechanism_encodes_addresses() {
    let bdf = Bdf { segment: 0, bus: 0x12, device: 0x1F, function: 7 };
    assert_eq!(PortConfig::<FakePorts>::address(bdf, 0x3C), 0x8012_FF3C);
    let ports = FakePorts { address: RefCell::new(0), bus: FakeBus::default() };
    ports.bus.add(0, 5, 0, 0x1B36, CLASS_NVME, 0);
    let cfg = PortConfig::new(ports);
    assert!(cfg.present());
    let found: vec::Vec<_> = find_nvme(&cfg).into_iter().map(|f| (f.bdf.device, f.vendor_id, f.device_id)).collect();
    assert_eq!(found, [(5, 0x1B36, 0x1234)]);
}

struct VecRegs(RefCell<vec::Vec<u32>>);
impl Registers for VecRegs {
    fn read32(&self, offset: usize) -> u32 {
        self.0.borrow()[offset / 4]
    }
    fn write32(&self, offset: usize, value: u32) {
        self.0.borrow_mut()[offset / 4] = value
    }
}

#[test]
fn ecam_offsets_follow_bus_device_function() {
    let window = EcamWindow { base: 0, segment: 0, start_bus: 1, end_bus: 2 };
    let regs = VecRegs(RefCell::new(vec![!0u32; (2 << 20) / 4]));
    let ecam = EcamConfig::new(&regs, window);
    assert_eq!(window.window_bytes(), 2 << 20);
    let bdf = Bdf { segment: 0, bus: 2, device: 3, function: 1 };
    assert_eq!(ecam.offset(bdf, 0x100), 1 << 20 | 3 << 15 | 1 << 12 | 0x100);
    let bdf = Bdf { function: 0, ..bdf };
    regs.0.borrow_mut()[ecam.offset(bdf, 0) / 4] = 0x5845_1B36;
    regs.0.borrow_mut()[ecam.offset(bdf, 8) / 4] = 0x0108_0200;
    regs.0.borrow_mut()[ecam.offset(bdf, 0xC) / 4] = 0;
    let found = find_nvme(&ecam);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].bdf, bdf);
    assert_eq!(found[0].device_id, 0x5845);
}
