/*
 * berth's exec trampoline, x86_64 Linux: no libc, no stack frame, no allocation.
 *
 * The container's init runs from the runtime's binary on the host. If it executed the
 * container's program directly, a program whose interpreter is /proc/self/exe (a "#!" line or
 * an ELF PT_INTERP) would be loaded while /proc/self/exe still named the host binary, and the
 * container would hold that binary open (CVE-2019-5736). So the init executes this program
 * instead, from a sealed memfd, and this program executes the container's: by then
 * /proc/self/exe names the sealed memfd, which no one can write.
 *
 *   argv: [path, arg0, arg1, ..., NULL]    execve(path, &argv[1], envp)
 *
 * (A path of /proc/self/exe, or a "#!/proc/self/exe" script, names this program again, with one
 * argument fewer each time: the chain ends in a missing program, never at the runtime's
 * binary. An argv without a program, argc < 2, is that end: ENOENT, so even a kernel that
 * turns an empty argv into [""] does not loop.)
 *
 * On failure it writes one line to stderr, as the init would have:
 *   berth-runc init: exec "arg0": ENOENT: No such file or directory
 * and exits 127 when the program is missing (ENOENT, ENOTDIR) and 126 otherwise, as shells do.
 */
        .text
        .globl  _start
_start:
        mov     (%rsp), %rcx            /* argc */
        lea     8(%rsp), %r12           /* argv */
        mov     $2, %r13d               /* ENOENT, if there is no program to execute */
        cmp     $2, %rcx
        jl      fail
        lea     16(%rsp,%rcx,8), %rdx   /* envp = &argv[argc + 1] */
        mov     (%r12), %rdi            /* path = argv[0] */
        lea     8(%r12), %rsi           /* the program's argv = &argv[1] */
        mov     $59, %eax               /* execve */
        syscall

        /* Only reached on failure: rax holds -errno. */
        neg     %rax
        mov     %rax, %r13              /* errno */
fail:
        lea     prefix(%rip), %rsi
        call    put
        mov     8(%r12), %rsi           /* arg0, or the path when there is none */
        test    %rsi, %rsi
        jnz     0f
        mov     (%r12), %rsi
0:      call    put
        lea     middle(%rip), %rsi
        call    put

        lea     table(%rip), %rbx
1:      mov     (%rbx), %rax            /* an entry's errno; 0 ends the table */
        test    %rax, %rax
        jz      2f
        cmp     %r13, %rax
        je      3f
        add     $16, %rbx
        jmp     1b
3:      mov     8(%rbx), %rsi
        call    put
        jmp     5f

2:      lea     unknown(%rip), %rsi     /* "errno " and the number in decimal */
        call    put
        sub     $32, %rsp
        lea     31(%rsp), %rdi
        movb    $0, (%rdi)
        mov     %r13, %rax
        mov     $10, %ecx
4:      xor     %edx, %edx
        div     %rcx
        add     $'0', %dl
        dec     %rdi
        mov     %dl, (%rdi)
        test    %rax, %rax
        jnz     4b
        mov     %rdi, %rsi
        call    put

5:      lea     newline(%rip), %rsi
        call    put
        mov     $126, %edi
        cmp     $2, %r13                /* ENOENT */
        je      6f
        cmp     $20, %r13               /* ENOTDIR */
        jne     7f
6:      mov     $127, %edi
7:      mov     $231, %eax              /* exit_group */
        syscall
        hlt

/* put: write(2, rsi, strlen(rsi)); clobbers rax, rcx, rdx, rdi, r11. */
put:
        mov     %rsi, %rdx
8:      cmpb    $0, (%rdx)
        je      9f
        inc     %rdx
        jmp     8b
9:      sub     %rsi, %rdx
        mov     $2, %edi
        mov     $1, %eax                /* write */
        syscall
        ret

        .section .rodata
prefix:  .asciz "berth-runc init: exec \""
middle:  .asciz "\": "
newline: .asciz "\n"
unknown: .asciz "errno "
e1:      .asciz "EPERM: Operation not permitted"
e2:      .asciz "ENOENT: No such file or directory"
e7:      .asciz "E2BIG: Argument list too long"
e8:      .asciz "ENOEXEC: Exec format error"
e12:     .asciz "ENOMEM: Cannot allocate memory"
e13:     .asciz "EACCES: Permission denied"
e20:     .asciz "ENOTDIR: Not a directory"
e21:     .asciz "EISDIR: Is a directory"
e22:     .asciz "EINVAL: Invalid argument"
e26:     .asciz "ETXTBSY: Text file busy"
e36:     .asciz "ENAMETOOLONG: File name too long"
e40:     .asciz "ELOOP: Too many levels of symbolic links"
e80:     .asciz "ELIBBAD: Accessing a corrupted shared library"
        .balign 8
table:
        .quad 1, e1
        .quad 2, e2
        .quad 7, e7
        .quad 8, e8
        .quad 12, e12
        .quad 13, e13
        .quad 20, e20
        .quad 21, e21
        .quad 22, e22
        .quad 26, e26
        .quad 36, e36
        .quad 40, e40
        .quad 80, e80
        .quad 0, 0

        .section .note.GNU-stack,"",@progbits
