#!/usr/bin/env python3
"""Runs the freestanding AVX-512 check image on an emulated CPU (Bochs's CPU
model via the `bochscpu` Python package) and reports its result.

The image (src/main.rs) compares the engine's AVX-512 and AVX-512 VNNI kernels
with the scalar reference, bit for bit, then halts. This script maps its ELF
segments and a stack into guest memory with identity page tables, enters
64-bit ring 0 with SSE/AVX/AVX-512 state enabled (CR4.OSXSAVE, XCR0 = 0xE7),
runs to the HLT and reads the `EK_REPORT` symbol.
Exit status: 0 when the AVX-512 path ran and every compared output matched
(VNNI is checked too when the emulated CPU offers it), 1 otherwise.
"""

import struct
import sys

import bochscpu
import bochscpu.cpu
import bochscpu.memory

PAGE = bochscpu.memory.page_size()


def elf_segments_and_symbol(path, symbol):
    data = open(path, "rb").read()
    assert data[:4] == b"\x7fELF" and data[4] == 2, "not an ELF64 file"
    e_entry, e_phoff, e_shoff = struct.unpack_from("<QQQ", data, 0x18)
    e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHHHH", data, 0x36)
    segs = []
    for i in range(e_phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, p_memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", data, e_phoff + i * e_phentsize)
        if p_type == 1:  # PT_LOAD
            segs.append((p_vaddr, data[p_offset:p_offset + p_filesz], p_memsz))
    sym_addr = None
    for i in range(e_shnum):
        sh = struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + i * e_shentsize)
        if sh[1] == 2:  # SHT_SYMTAB
            symtab_off, symtab_size, strtab_idx, entsize = sh[4], sh[5], sh[6], sh[9]
            strsh = struct.unpack_from("<IIQQQQIIQQ", data, e_shoff + strtab_idx * e_shentsize)
            stroff = strsh[4]
            for j in range(symtab_size // entsize):
                st_name, _info, _other, _shndx, st_value, _size = struct.unpack_from(
                    "<IBBHQQ", data, symtab_off + j * entsize)
                end = data.index(b"\0", stroff + st_name)
                if data[stroff + st_name:end].decode() == symbol:
                    sym_addr = st_value
    return e_entry, segs, sym_addr


def main():
    image = sys.argv[1]
    entry, segs, report_addr = elf_segments_and_symbol(image, "EK_REPORT")
    assert report_addr, "EK_REPORT symbol not found"

    sess = bochscpu.Session()

    def missing_page(gpa):
        raise Exception(f"guest touched unmapped physical page {gpa:#x}")

    sess.missing_page_handler = missing_page

    pt = bochscpu.memory.PageMapLevel4Table()
    mapped = {}

    def map_range(start, size):
        for page in range(start & ~(PAGE - 1), start + size, PAGE):
            if page not in mapped:
                hva = bochscpu.memory.allocate_host_page()
                bochscpu.memory.page_insert(page, hva)
                pt.insert(page, page, 1)  # identity, writable
                mapped[page] = hva

    for vaddr, _bytes, memsz in segs:
        map_range(vaddr, memsz)
    stack_top = 0x7000_0000
    map_range(stack_top - (1 << 20), 1 << 20)
    pml4 = 0x6000_0000
    for hva, gpa in pt.commit(pml4):
        bochscpu.memory.page_insert(gpa, hva)
    for vaddr, data, memsz in segs:
        # One page at a time: a write must not cross host pages.
        at = vaddr
        while at < vaddr + len(data):
            end = min((at & ~(PAGE - 1)) + PAGE, vaddr + len(data))
            bochscpu.memory.phy_write(at, list(data[at - vaddr:end - vaddr]))
            at = end

    state = bochscpu.State()
    bochscpu.cpu.set_long_mode(state)
    cr4 = bochscpu.cpu.ControlRegister()
    cr4.PAE = True
    cr4.OSFXSR = True
    cr4.OSXMMEXCPT = True
    cr4.OSXSAVE = True
    state.cr4 = int(cr4)
    state.xcr0 = 0xE7  # x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
    state.mxcsr = 0x1F80
    state.cr3 = pml4
    state.rsp = stack_top - 64 - 8  # as after a call: 16-byte aligned + return address
    state.rip = entry
    state.rflags = 0x2
    cs = bochscpu.Segment()
    cs.present = True
    cs.selector = 0x08
    cs.base = 0
    cs.limit = 0xFFFF_FFFF
    cs.attr = 0x209B  # 64-bit code, ring 0
    state.cs = cs
    ds = bochscpu.Segment()
    ds.present = True
    ds.selector = 0x10
    ds.base = 0
    ds.limit = 0xFFFF_FFFF
    ds.attr = 0xC93  # data, ring 0
    state.ds = ds
    state.ss = ds
    state.es = ds
    state.fs = ds
    state.gs = ds
    sess.cpu.state = state

    outcome = {}

    def on_hlt(s, cpu_id):
        outcome["halt"] = True
        s.stop()

    def on_exception(s, cpu_id, vector, error_code):
        outcome["exception"] = (vector, error_code, s.cpu.rip)
        s.stop()

    hook = bochscpu.Hook()
    hook.hlt = on_hlt
    hook.exception = on_exception
    sess.run([hook])

    raw = bytes(bochscpu.memory.phy_read(report_addr, 9 * 8))
    magic, av0, av1, c0, c1, m0, m1, case, cpuid7 = struct.unpack("<9Q", raw)
    print(f"avx512-check: emulated CPUID.7.0 EBX={cpuid7 & 0xffffffff:#010x} ECX={cpuid7 >> 32:#010x}")
    if "exception" in outcome:
        v, e, rip = outcome["exception"]
        print(f"avx512-check: guest exception {v} (error {e}) at rip {rip:#x}, last case {case:#x}")
        return 1
    if magic != 0x600D:
        print(f"avx512-check: guest did not finish (magic {magic:#x}, last case {case:#x})")
        return 1
    ok = bool(av0) and c0 > 0 and m0 == 0
    for name, av, c, m in (("avx512", av0, c0, m0), ("avx512vnni", av1, c1, m1)):
        if not av:
            print(f"avx512-check: {name}: skipped: the emulated CPU's CPUID does not offer it")
        else:
            print(f"avx512-check: {name}: {c} outputs compared with scalar, {m} differ")
            ok = ok and m == 0 and c > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
