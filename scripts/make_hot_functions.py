#!/usr/bin/env python3
"""Writes scripts/hot-functions.txt: the functions `loupe` runs on its main jobs, which scripts/build-release
hands to the linker (lld's --symbol-ordering-file) so that they lie together at the start of .text.

Why: the kernel maps a binary's code 64 KB around each page that faults (fault-around), so 4 MB of code
executed from all over a 26 MB .text kept ~12 MB of it resident. Packed together, the same code keeps ~5 MB.

How: the release binary (built with -function-sections, so nearly every function is its own section) runs
the profiled jobs under valgrind's callgrind; each executed instruction marks its input section (from the
link map of a relink of the same binary) as hot. The list names one symbol per hot section, in the order the
sections were laid out. A symbol name defined in several objects (local helpers such as `objectdestroyTm`)
pulls every section defining it, so such a name is used only when its other sections are small; a section
with no usable name stays where it is. The C kernels are listed whole: valgrind runs their AVX2 clones, not
the AVX-512 ones. The toolchain's Swift runtime and Foundation are not all split into sections: their hot
code brings whole objects along (the standard library's 1.6 MB, for one).

Run after changes that move much code (new commands, renamed types); a stale list only loses the benefit
(names it gives that no longer exist are skipped). Needs valgrind, and `loupe fetch smollm2-135m` (network).
Usage: scripts/make_hot_functions.py [--reuse DIR]     (~6 minutes on 2 cores)
"""
import bisect, collections, json, os, re, shutil, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "scripts", "hot-functions.txt")
PULL_LIMIT = 4096   # bytes of cold sections a shared name may drag into the hot block


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, cwd=ROOT, **kw).stdout


def link_map(binary, ordering):
    """Relinks the release binary with SwiftPM's own link command plus -Map; the relink must be identical.
    `ordering`: a copy of the symbol ordering file the binary was linked with."""
    yaml = open(os.path.join(ROOT, ".build", "release.yaml")).read()
    start = re.search(r'"C\.loupe-[^"]*-release\.exe":', yaml).start()
    args = json.loads(re.search(r"args: (\[.*?\])\n", yaml[start:]).group(1))
    tmp = tempfile.mkdtemp()
    out, mapfile = os.path.join(tmp, "loupe"), os.path.join(tmp, "loupe.map")
    args[args.index("-o") + 1] = out
    args = ["--symbol-ordering-file=" + ordering if a.startswith("--symbol-ordering-file=") else a for a in args]
    subprocess.run(args + ["-Xlinker", "-Map=" + mapfile], check=True, cwd=ROOT, capture_output=True)
    if open(out, "rb").read() != open(binary, "rb").read():
        sys.exit("make_hot_functions: relinking did not reproduce the release binary; rebuild and rerun")
    return mapfile


def text_sections(mapfile):
    """Input sections of the output .text, in layout order: [address, size, origin, [symbols]]."""
    sections, inside = [], False
    for line in open(mapfile):
        m = re.match(r"^\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+ (\s*)(.*)$", line.rstrip("\n"))
        if not m:
            continue
        depth, name = len(m.group(3)), m.group(4)
        if depth == 0:
            inside = name == ".text"
        elif inside and depth == 8:
            sections.append([int(m.group(1), 16), int(m.group(2), 16), name, []])
        elif inside and depth >= 16 and sections:
            sections[-1][3].append(name)
    return sections


def executed_addresses(callgrind_out, object_name):
    """Instruction addresses callgrind saw executed in `object_name` (positions: instr line)."""
    seen, names, current, addr = set(), {}, None, 0
    for line in open(callgrind_out):
        if line.startswith(("ob=", "cob=")):   # an object's name comes with its first mention, either kind
            m = re.match(r"c?ob=\((\d+)\)\s*(.*)", line.strip())
            if m.group(2):
                names[m.group(1)] = m.group(2)
            if line.startswith("ob="):
                current = m.group(1)
            continue
        if line[0] in "0123456789+-*" and not line.startswith("calls"):
            field = line.split()[0]
            if field.startswith("0x"):
                addr = int(field, 16)
            elif field[0] == "+":
                addr += int(field[1:])
            elif field[0] == "-":
                addr -= int(field[1:])
            elif field != "*":
                addr = int(field)
            if names.get(current, "").endswith(object_name):
                seen.add(addr)
    return seen


def main():
    binary = run(["scripts/build-release"]).strip().splitlines()[-1]
    gguf = run([binary, "fetch", "smollm2-135m"]).strip().splitlines()[-1]
    tmp = tempfile.mkdtemp()
    ordering = os.path.join(tmp, "hot-functions.txt")   # the list this binary was linked with
    shutil.copy(OUT, ordering)
    jobs = [
        # Short jobs: under valgrind a 128-token prompt takes many minutes. generate8: a 16-token prompt (the
        # direct kernels) and 8 generated tokens; the 24-token prompt takes the dequantize-and-GEMM path.
        ["bench", "--model", gguf, "--threads", "2", "--workloads", "generate8"],
        ["run", "--model", gguf, "--top", "5", "--prompt",
         "The Eiffel Tower, which was finished in 1889 for the World's Fair, stands in the city of"],
        ["run", "--prompt", "I do not know what you mean, Mr."],
    ]
    # --reuse DIR: read the profiles a previous run left in DIR (same binary) instead of profiling again.
    reuse = sys.argv[sys.argv.index("--reuse") + 1] if "--reuse" in sys.argv else None
    stripped = os.path.join(tmp, "loupe-profiled")   # valgrind cannot read the toolchain's debug info
    if not reuse:
        shutil.copy(binary, stripped)
        subprocess.run(["strip", "-g", stripped], check=True)
    hot_addresses = set()
    for i, job in enumerate(jobs):
        out = os.path.join(reuse or tmp, f"callgrind.{i}")
        if not reuse:
            print("profiling: loupe " + " ".join(job), file=sys.stderr)
            subprocess.run(["valgrind", "--tool=callgrind", "--dump-instr=yes", "--callgrind-out-file=" + out,
                            stripped] + job, check=True, cwd=ROOT, capture_output=True)
        hot_addresses |= executed_addresses(out, "loupe-profiled")
    print(f"profiles in {reuse or tmp}", file=sys.stderr)

    sections = text_sections(link_map(binary, ordering))
    starts = [s[0] for s in sections]
    hot = set()
    for a in hot_addresses:
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and a < sections[i][0] + sections[i][1]:
            hot.add(i)
    for i, s in enumerate(sections):   # the C kernels whole (their AVX-512 clones never run under valgrind)
        if "/CKernels.build/" in s[2] or "/CBLAS.build/" in s[2]:
            hot.add(i)

    defined = collections.defaultdict(list)
    for i, s in enumerate(sections):
        for name in s[3]:
            defined[name].append(i)

    def cold_pull(name):
        return sum(sections[j][1] for j in set(defined[name]) if j not in hot)

    names, missing = [], 0
    for i in sorted(hot):
        usable = [n for n in sections[i][3] if cold_pull(n) <= PULL_LIMIT]
        if usable:
            names.append(min(usable, key=cold_pull))
        else:
            missing += sections[i][1]
    hot_bytes = sum(sections[i][1] for i in hot)
    with open(OUT, "w") as f:
        f.write("# Functions loupe runs on its main jobs, for lld's --symbol-ordering-file (scripts/build-release):\n"
                "# one symbol per hot input section. Generated by scripts/make_hot_functions.py; do not edit.\n")
        f.write("\n".join(dict.fromkeys(names)) + "\n")
    print(f"{len(hot)} hot sections, {hot_bytes / 1e6:.2f} MB; {len(set(names))} names written to {OUT}; "
          f"{missing / 1e3:.0f} KB of hot sections have no name that is safe to list", file=sys.stderr)


if __name__ == "__main__":
    main()
