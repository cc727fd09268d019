# AXIOM application-processor start-up code.
#
# The BSP copies the bytes between ap_trampoline_start and ap_trampoline_end
# to LOAD (0x8000, below 1 MiB, page aligned), fills the patch area, and sends
# INIT-SIPI-SIPI with vector LOAD >> 12. The AP starts in real mode at
# CS:IP = 0x0800:0000 and goes 16 -> 32 -> 64-bit, then jumps to the patched
# entry with RSP = patched stack top and EDI = patched CPU index.
#
# Everything is addressed as LOAD + offset, so the code is position-fixed at
# LOAD; the offsets below are mirrored by the Rust constants in lib.rs (a host
# test checks the assembled bytes against them).

.set LOAD,            0x8000
.set PATCH,           0x200
.set P_MAGIC,         PATCH + 0x00
.set P_CR3,           PATCH + 0x08
.set P_STACK,         PATCH + 0x10
.set P_ENTRY,         PATCH + 0x18
.set P_CPU,           PATCH + 0x20
.set P_PROGRESS,      PATCH + 0x28

.section .ap_trampoline, "a"
.global ap_trampoline_start
.global ap_trampoline_end

.code16
ap_trampoline_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    movb $1, P_PROGRESS                         # reached real mode
    lgdtl gdt_ptr - ap_trampoline_start
    mov %cr0, %eax
    or $1, %eax                                 # PE
    mov %eax, %cr0
    ljmpl $0x08, $(LOAD + (pm32 - ap_trampoline_start))

.code32
pm32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    movb $2, LOAD + P_PROGRESS                  # reached protected mode
    mov %cr4, %eax
    or $((1 << 5) | (1 << 9) | (1 << 10)), %eax # PAE | OSFXSR | OSXMMEXCPT
    mov %eax, %cr4
    mov LOAD + P_CR3, %eax                      # kernel PML4 (below 4 GiB)
    mov %eax, %cr3
    mov $0xC0000080, %ecx                       # EFER.LME
    rdmsr
    or $(1 << 8), %eax
    wrmsr
    mov %cr0, %eax
    and $~((1 << 2) | (1 << 3)), %eax           # clear EM, TS
    or $((1 << 31) | (1 << 16) | (1 << 1) | 1), %eax   # PG | WP | MP | PE
    mov %eax, %cr0
    ljmp $0x18, $(LOAD + (lm64 - ap_trampoline_start))

.code64
lm64:
    mov $0x20, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %eax, %eax
    mov %ax, %fs
    mov %ax, %gs
    movb $3, LOAD + P_PROGRESS                  # reached long mode
    mov LOAD + P_STACK, %rsp
    mov LOAD + P_CPU, %edi
    mov LOAD + P_ENTRY, %rax
    jmp *%rax

.balign 16
gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF                    # 0x08: 32-bit code
    .quad 0x00CF92000000FFFF                    # 0x10: 32-bit data
    .quad 0x00AF9A000000FFFF                    # 0x18: 64-bit code
    .quad 0x00CF92000000FFFF                    # 0x20: data
gdt_end:
gdt_ptr:
    .short gdt_end - gdt - 1
    .long LOAD + (gdt - ap_trampoline_start)

.org PATCH
    .ascii "AXTRAMP1"                           # P_MAGIC
    .quad 0                                     # P_CR3
    .quad 0                                     # P_STACK
    .quad 0                                     # P_ENTRY
    .quad 0                                     # P_CPU
    .quad 0                                     # P_PROGRESS
ap_trampoline_end:
