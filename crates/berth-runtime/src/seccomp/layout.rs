//! A shorter layout of the program libseccomp compiled, with the same answer for every syscall.
//!
//! Installing a filter costs the kernel time in proportion to its length: it converts the
//! classic BPF to eBPF, JIT-compiles it (several passes), and runs it for every syscall number
//! of the native and compat architectures to cache which are always allowed. libseccomp's tree
//! for Docker's default profile is 1,227 instructions, about one comparison per syscall name
//! and architecture, and took 0.17 ms to install in every container's init here (571 laid out
//! again: 0.09 ms; bench/README.md, "eighth pass").
//!
//! What the program answers for a syscall number never depends on anything but the number and
//! the architecture until it loads an argument, and it only compares the number with constants.
//! So for each architecture the program names, the numbers fall into intervals, each answered
//! by one `ret` or sent on to the argument checks; this module finds those intervals by running
//! the program over intervals of numbers (splitting one at every comparison), and lays them out
//! again as a balanced search on the number: two instructions an interval, about half of
//! libseccomp's. A number whose answer depends on its arguments jumps to libseccomp's own
//! program, cut down to the instructions such numbers reach (it checks the architecture and
//! the number again, then the arguments, exactly as before).
//!
//! The new program uses only loads of the number and the architecture, `jeq`/`jge`/`ja` and
//! `ret`, which the kernel's cache of always-allowed syscalls understands, so the syscalls it
//! cached before it still caches. Anything this module does not expect in libseccomp's output
//! leaves that output as it is.

/// One `struct sock_filter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const LD_IMM: u16 = 0x00; // BPF_LD | BPF_W | BPF_IMM
const AND_K: u16 = 0x54; // BPF_ALU | BPF_AND | BPF_K
const JA: u16 = 0x05; // BPF_JMP | BPF_JA
const JEQ_K: u16 = 0x15;
const JGT_K: u16 = 0x25;
const JGE_K: u16 = 0x35;
const JSET_K: u16 = 0x45;
const RET_K: u16 = 0x06;
const RET_A: u16 = 0x16;
const ST: u16 = 0x02; // BPF_ST
const STX: u16 = 0x03; // BPF_STX
const LD_MEM: u16 = 0x60; // BPF_LD | BPF_W | BPF_MEM
const LDX_MEM: u16 = 0x61; // BPF_LDX | BPF_W | BPF_MEM

/// `offsetof(struct seccomp_data, nr)` and `arch`.
const NR: u32 = 0;
const ARCH: u32 = 4;

/// The most instructions the analysis steps through before it gives up (a hostile profile's
/// program could make it slow otherwise; libseccomp's for Docker's profile takes ~30,000).
const BUDGET: usize = 2_000_000;

/// Decodes a program exported by libseccomp (native byte order).
fn decode(bytes: &[u8]) -> Vec<Insn> {
    bytes
        .chunks_exact(8)
        .map(|c| Insn {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect()
}

fn encode(program: &[Insn]) -> Vec<u8> {
    let mut out = Vec::with_capacity(program.len() * 8);
    for i in program {
        out.extend_from_slice(&i.code.to_ne_bytes());
        out.push(i.jt);
        out.push(i.jf);
        out.extend_from_slice(&i.k.to_ne_bytes());
    }
    out
}

/// The same filter as `bytes`, laid out shorter; `None` when it would not be shorter or the
/// program holds what the analysis does not follow.
pub fn compact(bytes: &[u8]) -> Option<Vec<u8>> {
    laid_out(bytes).filter(|out| out.len() < bytes.len())
}

/// The program laid out again, shorter or not.
pub(super) fn laid_out(bytes: &[u8]) -> Option<Vec<u8>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    relayout(&decode(bytes)).map(|out| encode(&out))
}

/// What the accumulator holds while the program has not yet loaded an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acc {
    Nr,
    Arch,
    Const(u32),
}

/// How the program ends for an interval of numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ret(u32),
    /// It loads an argument (or anything but the number and the architecture) first, at this
    /// instruction: what it answers then depends on the arguments, and on nothing the path to
    /// there computed (the load replaces the accumulator; nothing before it touched the index
    /// register or the scratch memory, which the analysis does not follow).
    Args(usize),
}

/// An interval of syscall numbers and how the program ends for every number in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    lo: u32,
    hi: u32,
    outcome: Outcome,
}

/// The architecture as the analysis knows it: one value, or none of the values compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ArchIs {
    Value(u32),
    Other,
}

struct Analysis<'a> {
    program: &'a [Insn],
    steps: usize,
    /// The architecture values compared first ([`Analysis::arches`]).
    arches: Vec<u32>,
}

impl Analysis<'_> {
    fn step(&mut self) -> Option<()> {
        self.steps += 1;
        (self.steps <= BUDGET).then_some(())
    }

    /// The architecture values the program compares the architecture with before anything
    /// else, following the "none of them" branch; `None` if it compares it otherwise.
    fn arches(&mut self) -> Option<Vec<u32>> {
        let mut found = Vec::new();
        let mut pc = 0;
        let mut acc = None;
        loop {
            self.step()?;
            let i = *self.program.get(pc)?;
            match i.code {
                LD_W_ABS if i.k == ARCH => acc = Some(Acc::Arch),
                LD_W_ABS if i.k == NR => return Some(found),
                JEQ_K if acc == Some(Acc::Arch) => {
                    found.push(i.k);
                    pc += 1 + usize::from(i.jf);
                    continue;
                }
                JA => {
                    pc = pc.checked_add(1 + i.k as usize)?;
                    continue;
                }
                RET_K => return Some(found),
                _ => return None,
            }
            pc += 1;
        }
    }

    /// How the program ends for each number, with the architecture `arch`: intervals in order,
    /// covering every number.
    fn spans(&mut self, arch: ArchIs) -> Option<Vec<Span>> {
        let mut spans = Vec::new();
        let mut work = vec![(0usize, None::<Acc>, 0u32, u32::MAX)];
        while let Some((mut pc, mut acc, lo, hi)) = work.pop() {
            loop {
                self.step()?;
                let i = *self.program.get(pc)?;
                match i.code {
                    LD_W_ABS if i.k == NR => acc = Some(Acc::Nr),
                    LD_W_ABS if i.k == ARCH => acc = Some(Acc::Arch),
                    LD_W_ABS => {
                        spans.push(Span {
                            lo,
                            hi,
                            outcome: Outcome::Args(pc),
                        });
                        break;
                    }
                    LD_IMM => acc = Some(Acc::Const(i.k)),
                    AND_K => match acc? {
                        Acc::Const(c) => acc = Some(Acc::Const(c & i.k)),
                        _ => return None,
                    },
                    RET_K => {
                        spans.push(Span {
                            lo,
                            hi,
                            outcome: Outcome::Ret(i.k),
                        });
                        break;
                    }
                    RET_A => match acc? {
                        Acc::Const(c) => {
                            spans.push(Span {
                                lo,
                                hi,
                                outcome: Outcome::Ret(c),
                            });
                            break;
                        }
                        _ => return None,
                    },
                    JA => {
                        pc = pc.checked_add(1 + i.k as usize)?;
                        continue;
                    }
                    JEQ_K | JGT_K | JGE_K | JSET_K => {
                        let taken = |yes: bool| pc + 1 + usize::from(if yes { i.jt } else { i.jf });
                        let known = match acc? {
                            Acc::Const(c) => Some(c),
                            Acc::Arch => match arch {
                                ArchIs::Value(a) => Some(a),
                                // Only "is it one of those named first" is answered for an
                                // architecture that is none of them.
                                ArchIs::Other if i.code == JEQ_K && self.arches.contains(&i.k) => {
                                    pc = taken(false);
                                    continue;
                                }
                                ArchIs::Other => return None,
                            },
                            Acc::Nr => None,
                        };
                        if let Some(value) = known {
                            pc = taken(holds(i.code, value, i.k));
                            continue;
                        }
                        // The number: split [lo, hi] where the answer changes.
                        let (yes, no) = split(i.code, i.k, lo, hi)?;
                        for (part, branch) in [(no, false), (yes, true)] {
                            for (a, b) in part.into_iter().flatten() {
                                work.push((taken(branch), acc, a, b));
                            }
                        }
                        break;
                    }
                    _ => return None,
                }
                pc += 1;
            }
        }
        spans.sort_by_key(|s| s.lo);
        // Adjacent intervals that end alike become one.
        let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
        for s in spans {
            match merged.last_mut() {
                Some(last) if last.outcome == s.outcome && last.hi.checked_add(1) == Some(s.lo) => {
                    last.hi = s.hi
                }
                _ => merged.push(s),
            }
        }
        // Together they must cover every number exactly once.
        let covers = merged.first().is_some_and(|s| s.lo == 0)
            && merged.last().is_some_and(|s| s.hi == u32::MAX)
            && merged
                .windows(2)
                .all(|w| w[0].hi.checked_add(1) == Some(w[1].lo));
        covers.then_some(merged)
    }

    /// Every instruction reachable from `start`, whatever the arguments: marked in `keep`.
    fn mark_all_from(&mut self, start: usize, keep: &mut [bool]) -> Option<()> {
        let mut todo = vec![start];
        let mut seen = vec![false; self.program.len()];
        while let Some(pc) = todo.pop() {
            if std::mem::replace(seen.get_mut(pc)?, true) {
                continue;
            }
            self.step()?;
            keep[pc] = true;
            let i = self.program[pc];
            match i.code {
                // Scratch memory: the kernel checks that every cell is stored before it is
                // loaded, scanning the instructions in order, so a copy without the dead ones in
                // between could be refused (libseccomp never uses it).
                ST | STX | LD_MEM | LDX_MEM => return None,
                RET_K | RET_A => {}
                JA => todo.push(pc.checked_add(1 + i.k as usize)?),
                c if c & 0x07 == 0x05 => {
                    todo.push(pc + 1 + usize::from(i.jt));
                    todo.push(pc + 1 + usize::from(i.jf));
                }
                _ => todo.push(pc + 1),
            }
        }
        Some(())
    }
}

fn holds(code: u16, a: u32, k: u32) -> bool {
    match code {
        JEQ_K => a == k,
        JGT_K => a > k,
        JGE_K => a >= k,
        _ => a & k != 0,
    }
}

type Parts = [Option<(u32, u32)>; 2];

/// `[lo, hi]` split by a comparison of the number with `k`: the part where it holds, the part
/// where it does not (each at most two intervals). `None` for a bit test.
fn split(code: u16, k: u32, lo: u32, hi: u32) -> Option<(Parts, Parts)> {
    let clip = |a: u32, b: u32| (a.max(lo) <= b.min(hi)).then(|| (a.max(lo), b.min(hi)));
    let below = |k: u32| k.checked_sub(1).and_then(|b| clip(0, b));
    let above = |k: u32| k.checked_add(1).and_then(|a| clip(a, u32::MAX));
    Some(match code {
        JEQ_K => ([clip(k, k), None], [below(k), above(k)]),
        JGT_K => ([above(k), None], [clip(0, k), None]),
        JGE_K => ([clip(k, u32::MAX), None], [below(k), None]),
        _ => return None,
    })
}

/// A jump to fill in once the layout is known.
enum Fixup {
    /// To the section of the architecture at this index.
    Section(usize),
    /// To this instruction of the original program, in its cut-down copy.
    Original(usize),
}

/// The new program, or `None` where the analysis gives up.
fn relayout(program: &[Insn]) -> Option<Vec<Insn>> {
    if program.is_empty() || program.len() > super::MAX_INSNS {
        return None;
    }
    let mut analysis = Analysis {
        program,
        steps: 0,
        arches: Vec::new(),
    };
    let mut arches = analysis.arches()?;
    arches.sort_unstable();
    arches.dedup();
    analysis.arches.clone_from(&arches);
    let mut sections = Vec::new();
    let mut keep = vec![false; program.len()];
    for arch in arches
        .iter()
        .map(|&a| ArchIs::Value(a))
        .chain([ArchIs::Other])
    {
        let spans = analysis.spans(arch)?;
        for s in &spans {
            if let Outcome::Args(pc) = s.outcome {
                analysis.mark_all_from(pc, &mut keep)?;
            }
        }
        sections.push(spans);
    }
    let other_spans = sections.pop()?;

    // The dispatch on the architecture, then the other architectures' answers.
    let mut out = vec![Insn {
        code: LD_W_ABS,
        jt: 0,
        jf: 0,
        k: ARCH,
    }];
    let mut fixups: Vec<(usize, Fixup)> = Vec::new();
    for (index, &arch) in arches.iter().enumerate() {
        out.push(Insn {
            code: JEQ_K,
            jt: 0,
            jf: 1,
            k: arch,
        });
        fixups.push((out.len(), Fixup::Section(index)));
        out.push(ja(0));
    }
    emit_section(&other_spans, &mut out, &mut fixups);
    let mut starts = Vec::with_capacity(sections.len());
    for spans in &sections {
        starts.push(out.len());
        emit_section(spans, &mut out, &mut fixups);
    }
    let original = out.len();
    let (cut, index) = cut_down(program, &keep)?;
    out.extend(cut);
    for (at, to) in fixups {
        let target = match to {
            Fixup::Section(i) => starts[i],
            Fixup::Original(pc) => original + *index.get(pc).filter(|&&i| i != usize::MAX)?,
        };
        out[at].k = u32::try_from(target.checked_sub(at + 1)?).ok()?;
    }
    (out.len() <= super::MAX_INSNS).then_some(out)
}

fn ja(k: u32) -> Insn {
    Insn {
        code: JA,
        jt: 0,
        jf: 0,
        k,
    }
}

/// One architecture's answers: the number loaded, then a balanced search over its intervals.
fn emit_section(spans: &[Span], out: &mut Vec<Insn>, fixups: &mut Vec<(usize, Fixup)>) {
    if spans.len() > 1 {
        out.push(Insn {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: NR,
        });
    }
    emit_search(spans, out, fixups);
}

fn emit_search(spans: &[Span], out: &mut Vec<Insn>, fixups: &mut Vec<(usize, Fixup)>) {
    if let [only] = spans {
        match only.outcome {
            Outcome::Ret(k) => out.push(Insn {
                code: RET_K,
                jt: 0,
                jf: 0,
                k,
            }),
            Outcome::Args(pc) => {
                fixups.push((out.len(), Fixup::Original(pc)));
                out.push(ja(0));
            }
        }
        return;
    }
    let (low, high) = spans.split_at(spans.len() / 2);
    // `jge` the first number of the upper half: taken over the lower half's instructions,
    // through a `ja` when they are more than a conditional jump reaches.
    let skip = search_len(low.len());
    match u8::try_from(skip) {
        Ok(jt) => out.push(Insn {
            code: JGE_K,
            jt,
            jf: 0,
            k: high[0].lo,
        }),
        Err(_) => {
            out.push(Insn {
                code: JGE_K,
                jt: 0,
                jf: 1,
                k: high[0].lo,
            });
            out.push(ja(skip as u32));
        }
    }
    emit_search(low, out, fixups);
    emit_search(high, out, fixups);
}

/// How many instructions [`emit_search`] makes of `n` intervals.
fn search_len(n: usize) -> usize {
    if n <= 1 {
        return 1;
    }
    let low = search_len(n / 2);
    let far = usize::from(low > usize::from(u8::MAX));
    1 + far + low + search_len(n - n / 2)
}

/// The original program with only the instructions in `keep` (everything reachable from the
/// argument loads), its jumps retargeted, and where each kept instruction went.
fn cut_down(program: &[Insn], keep: &[bool]) -> Option<(Vec<Insn>, Vec<usize>)> {
    let mut index = vec![usize::MAX; program.len()];
    let mut n = 0;
    for (pc, _) in keep.iter().enumerate().filter(|(_, k)| **k) {
        index[pc] = n;
        n += 1;
    }
    let mut out = Vec::with_capacity(n);
    for (pc, i) in program.iter().enumerate().filter(|(pc, _)| keep[*pc]) {
        let here = index[pc];
        let to = |t: usize| -> Option<usize> {
            match index.get(t) {
                Some(&i) if i != usize::MAX => Some(i - here - 1),
                _ => None,
            }
        };
        // Everything reachable from a kept instruction is kept: every jump lands in the copy.
        let mut i = *i;
        if i.code == JA {
            i.k = u32::try_from(to(pc.checked_add(1 + i.k as usize)?)?).ok()?;
        } else if i.code & 0x07 == 0x05 {
            i.jt = u8::try_from(to(pc + 1 + usize::from(i.jt))?).ok()?;
            i.jf = u8::try_from(to(pc + 1 + usize::from(i.jf))?).ok()?;
        }
        out.push(i);
    }
    Some((out, index))
}
