# Interrupt entry stubs: one 16-byte stub per vector. Every stub pushes a dummy
# error code where the CPU pushes none, then the vector, and jumps to the
# common path, which saves the general registers and calls
# `axiom_trap(&mut TrapFrame)` (Rust). Two vectors never reach Rust:
#   WAKE (0xF0): the barrier/launch wake-up IPI: EOI and return. It may
#     interrupt vector code, and no Rust runs that could clobber SIMD state.
#   SPURIOUS (0xFF): return without EOI, as the SDM requires.

.set WAKE_VECTOR, 0xF0
.set SPURIOUS_VECTOR, 0xFF

.section .text
.balign 16
.global axiom_isr_stubs
axiom_isr_stubs:
.set vec, 0
.rept 256
    .balign 16
    .if vec == WAKE_VECTOR
        jmp axiom_isr_wake
    .elseif vec == SPURIOUS_VECTOR
        iretq
    .else
        .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
        .else
            push $0
        .endif
        push $vec
        jmp axiom_isr_common
    .endif
    .set vec, vec + 1
.endr

axiom_isr_common:
    push %rax
    push %rbx
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %rbp
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    cld
    mov %rsp, %rdi
    call axiom_trap
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rbp
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rbx
    pop %rax
    add $16, %rsp                               # vector + error code
    iretq

axiom_isr_wake:
    push %rax
    push %rcx
    push %rdx
    cmpb $0, axiom_lapic_is_x2apic(%rip)
    je 1f
    mov $0x80B, %ecx                            # x2APIC EOI MSR
    xor %eax, %eax
    xor %edx, %edx
    wrmsr
    jmp 2f
1:  mov axiom_lapic_eoi_address(%rip), %rax     # xAPIC EOI register (uncached MMIO)
    movl $0, (%rax)
2:  pop %rdx
    pop %rcx
    pop %rax
    iretq
