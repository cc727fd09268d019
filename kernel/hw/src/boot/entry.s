# AXIOM boot entry: Multiboot1/2 headers, 32-bit protected mode -> long mode,
# SSE/AVX enable, then `kmain(magic, info)`.
# Assembled by rustc's global_asm! (AT&T syntax); linked at 1 MiB, phys == virt.

# ---------------------------------------------------------------------------
# Multiboot headers: first bytes of .text (see linker.ld).
# ---------------------------------------------------------------------------
.section .multiboot_header, "a"
.balign 4
mb1_header:
    .long 0x1BADB002                            # magic
    .long 0x00010003                            # page-align modules | memory info | a.out kludge
    .long 0x100000000 - (0x1BADB002 + 0x00010003)
    .long mb1_header                            # header_addr
    .long __kernel_start                        # load_addr
    .long __kernel_load_end                     # load_end_addr
    .long __bss_end                             # bss_end_addr
    .long _start32                              # entry_addr

.balign 8
mb2_header:
    .long 0xE85250D6                            # magic
    .long 0                                     # architecture: i386 protected mode
    .long mb2_header_end - mb2_header
    .long 0x100000000 - (0xE85250D6 + (mb2_header_end - mb2_header))
    # information request: memory map, command line, ACPI RSDPs, framebuffer (optional)
    .balign 8
mb2_info_request:
    .short 1
    .short 1                                    # optional: GRUB may ignore what it lacks
    .long mb2_info_request_end - mb2_info_request
    .long 1, 6, 8, 14, 15
mb2_info_request_end:
    # framebuffer: ask for 1024x768x32 (optional: GRUB picks the closest
    # mode it has, or leaves text mode); the console draws on it (display.rs)
    .balign 8
    .short 5
    .short 1
    .long 20
    .long 1024, 768, 32
    .balign 8
    .short 0                                    # end tag
    .short 0
    .long 8
mb2_header_end:

# ---------------------------------------------------------------------------
# 32-bit entry (Multiboot: EAX = magic, EBX = info, flat segments, paging off).
# ---------------------------------------------------------------------------
.section .text.boot32, "ax"
.code32
.global _start32
_start32:
    cli
    cld
    mov %eax, %ebp                              # Multiboot magic
    mov %ebx, %esi                              # Multiboot info (physical)

    # Zero .bss ourselves: not every loader promises it (stack and page tables live there).
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    mov $boot_stack_top, %esp

    # Long mode available? (CPUID 0x80000001 EDX bit 29)
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb .Lno_long_mode
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx
    jz .Lno_long_mode

    # Boot page tables: identity map of the first 4 GiB with 2 MiB pages.
    # (Rust replaces them with a precise map of RAM and uncached MMIO.)
    mov $boot_pdpt, %eax
    or $0x3, %eax
    mov %eax, boot_pml4
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $12, %eax
    add $boot_pd, %eax
    or $0x3, %eax
    mov %eax, boot_pdpt(,%ecx,8)
    inc %ecx
    cmp $4, %ecx
    jb 1b
    xor %ecx, %ecx
2:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax                              # present | writable | 2 MiB page
    mov %eax, boot_pd(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jb 2b

    # CR4: PAE | OSFXSR | OSXMMEXCPT
    mov %cr4, %eax
    or $((1 << 5) | (1 << 9) | (1 << 10)), %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    # EFER.LME
    mov $0xC0000080, %ecx
    rdmsr
    or $(1 << 8), %eax
    wrmsr
    # CR0: PG | WP | MP | PE, clear EM and TS
    mov %cr0, %eax
    and $~((1 << 2) | (1 << 3)), %eax
    or $((1 << 31) | (1 << 16) | (1 << 1) | 1), %eax
    mov %eax, %cr0

    lgdt boot_gdt_ptr
    ljmp $0x08, $.Lstart64

.Lno_long_mode:
    mov $no_long_mode_msg, %esi
3:  movb (%esi), %al
    test %al, %al
    jz 5f
    mov $0x3FD, %dx                             # COM1 line status
4:  inb %dx, %al
    test $0x20, %al
    jz 4b
    movb (%esi), %al
    mov $0x3F8, %dx
    outb %al, %dx
    inc %esi
    jmp 3b
5:  cli
    hlt
    jmp 5b

# ---------------------------------------------------------------------------
# 64-bit: segments, stack, SIMD state, Rust.
# ---------------------------------------------------------------------------
.code64
.Lstart64:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    mov $boot_stack_top, %rsp
    mov %ebp, %edi                              # arg 0: magic (zero-extended)
    mov %esi, %esi                              # arg 1: info address (zero-extended)
    push %rdi
    push %rsi
    call axiom_enable_simd
    pop %rsi
    pop %rdi
    call kmain
6:  cli
    hlt
    jmp 6b

# AP entry, reached from ap-trampoline in long mode with RSP = its stack and
# EDI = its CPU index: enable SIMD state, then `axiom_hw_ap_entry(cpu_index)`.
.global axiom_ap_start64
axiom_ap_start64:
    push %rdi
    push %rdi                                   # keep RSP 16-byte aligned at the call
    call axiom_enable_simd
    pop %rdi
    pop %rdi
    call axiom_hw_ap_entry
7:  cli
    hlt
    jmp 7b

# Enable x87/SSE/AVX(/AVX-512) state on this CPU. Must run before any Rust code:
# the prebuilt `core` is compiled for the SSE2 ABI. Clobbers RAX, RCX, RDX, R8-R9.
.global axiom_enable_simd
axiom_enable_simd:
    push %rbx
    fninit
    mov $1, %eax
    cpuid
    test $(1 << 26), %ecx                       # XSAVE supported?
    jz 9f
    mov %ecx, %r8d                              # CPUID.1:ECX (bit 28 = AVX)
    mov %cr4, %rax
    or $(1 << 18), %rax                         # CR4.OSXSAVE
    mov %rax, %cr4
    mov $0xD, %eax
    xor %ecx, %ecx
    cpuid                                       # EAX = XCR0 bits the CPU supports
    mov %eax, %r9d
    mov $0x3, %eax                              # x87 | SSE
    test $(1 << 28), %r8d
    jz 8f
    test $0x4, %r9d
    jz 8f
    or $0x4, %eax                               # AVX (YMM upper halves)
    mov %r9d, %edx
    and $0xE0, %edx
    cmp $0xE0, %edx                             # opmask | ZMM_Hi256 | Hi16_ZMM all supported?
    jne 8f
    or $0xE0, %eax
8:  xor %edx, %edx
    xor %ecx, %ecx
    xsetbv
9:  pop %rbx
    ret

# ---------------------------------------------------------------------------
# Data: boot GDT, boot page tables, boot stack.
# ---------------------------------------------------------------------------
.section .rodata
.balign 16
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF                    # 0x08: 64-bit code
    .quad 0x00CF92000000FFFF                    # 0x10: data
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt
no_long_mode_msg:
    .asciz "AXIOM: this CPU has no 64-bit long mode; cannot boot.\r\n"

.section .bss
.balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4
.balign 16
.global boot_stack_bottom
boot_stack_bottom:
    .skip 512 * 1024
.global boot_stack_top
boot_stack_top:
