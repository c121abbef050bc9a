#!/usr/bin/env python3
"""Runs the README top to bottom, as a newcomer pasting each example would, and reports each command's time
and how many of the output lines the README shows came out the same.

    scripts/readme_run.py CLONE CORPUS RESULTS.json [--from N] [--only SUBSTRING]

CLONE is a fresh clone of the repository (the commands run in it, with `loupe` on the PATH as the README says:
scripts/loupe linked into a bin folder); CORPUS is a folder of the five Austen novels, copied to CLONE/austen.
Run it with an empty HOME to start with no model cache. Output lines that report times (`in 1.19 s`, `this run
…`) are left out of the comparison. A command the README describes in words only is run where the README
says it was made: the `l8-keys`/`l9-keys` statistics ("made as l10-keys above") before the MEMIT edit; and
`cat facts.jsonl` first writes the file the README shows.
"""
import json, os, re, shutil, subprocess, sys, time

def commands(readme):
    """(line number, command, expected output lines) for every `$ ` line in the README's code blocks."""
    out, lines, i = [], readme.split('\n'), 0
    in_block = False
    while i < len(lines):
        line = lines[i]
        if line.startswith('```'):
            in_block = not in_block
            i += 1
            continue
        if in_block and line.startswith('$ '):
            start, cmd = i + 1, line[2:]
            while cmd.endswith('\\'):
                i += 1
                cmd = cmd[:-1] + ' ' + lines[i].strip()
            expected = []
            j = i + 1
            while j < len(lines) and not lines[j].startswith('$ ') and not lines[j].startswith('```'):
                expected.append(lines[j])
                j += 1
            out.append((start, cmd, expected))
            i = j
            continue
        i += 1
    return out

TIMING = re.compile(r'\b\d+(\.\d+)?\s*(s|ms|min)\b|tokens/s|tok/s|this run|elapsed|…')

def comparable(line):
    return line.strip() and not TIMING.search(line)

def main():
    clone, corpus, results_path = sys.argv[1:4]
    start_at = int(sys.argv[sys.argv.index('--from') + 1]) if '--from' in sys.argv else 0
    only = sys.argv[sys.argv.index('--only') + 1] if '--only' in sys.argv else None
    readme = open(os.path.join(clone, 'README.md')).read()
    if not os.path.isdir(os.path.join(clone, 'austen')):
        shutil.copytree(corpus, os.path.join(clone, 'austen'))
    bin_dir = os.path.join(os.environ['HOME'], '.local', 'bin')
    os.makedirs(bin_dir, exist_ok=True)
    link = os.path.join(bin_dir, 'loupe')
    if not os.path.lexists(link):
        os.symlink(os.path.join(os.path.abspath(clone), 'scripts', 'loupe'), link)
    env = dict(os.environ, PATH=bin_dir + ':' + os.environ['PATH'])
    results = json.load(open(results_path)) if os.path.exists(results_path) else []
    done = {r['line'] for r in results if r['rc'] == 0}
    cmds = commands(readme)
    pending_background = None

    def run(line, cmd, expected):
        t0 = time.time()
        p = subprocess.run(['bash', '-c', cmd], cwd=clone, env=env, capture_output=True, text=True)
        seconds = time.time() - t0
        out = p.stdout + p.stderr
        want = [l for l in expected if comparable(l)]
        got = set(l.rstrip() for l in out.split('\n'))
        same = [l for l in want if l.rstrip() in got]
        r = {'line': line, 'command': cmd, 'rc': p.returncode, 'seconds': round(seconds, 1),
             'expected_lines': len(want), 'same_lines': len(same),
             'differing': [l for l in want if l.rstrip() not in got][:12], 'output_tail': out[-3000:]}
        results[:] = [x for x in results if x['line'] != line] + [r]
        results.sort(key=lambda x: x['line'])
        json.dump(results, open(results_path, 'w'), indent=1)
        print(f"line {line}: rc {p.returncode}, {seconds:.1f} s, {len(same)}/{len(want)} lines the same: {cmd[:90]}", flush=True)

    # The README's first line: builds Loupe (the first time) and runs the main job.
    first = re.search(r'```sh\n(.*?)\s+#', readme)
    if first and 4 not in done and not only:
        run(readme[:first.start()].count('\n') + 2, first.group(1), [])
    for k, (line, cmd, expected) in enumerate(cmds):
        if line < start_at or line in done or (only and only not in cmd):
            continue
        m = re.fullmatch(r'(\w+)=(\S+)', cmd.strip())
        if m:
            env[m.group(1)] = m.group(2)
            continue
        if cmd.strip().endswith('&'):
            # Two shards side by side: this one in the background, the next in the foreground, then wait.
            nxt = cmds[k + 1]
            cmd = cmd + ' ' + nxt[1] + '; wait'
            expected = expected + nxt[2]
            done.add(nxt[0])
        if cmd.startswith('cat ') and not os.path.exists(os.path.join(clone, cmd[4:].strip())):
            open(os.path.join(clone, cmd[4:].strip()), 'w').write('\n'.join(expected) + '\n')
        if '--facts facts.jsonl' in cmd:
            stats = next(c for _, c, _ in cmds if 'l10-keys.safetensors' in c and c.startswith('loupe activation-stats'))
            for layer in (8, 9):
                if not os.path.exists(os.path.join(clone, f'l{layer}-keys.safetensors')):
                    run(line - 0.1 * (10 - layer), stats.replace('blocks.10.', f'blocks.{layer}.').replace('l10-keys', f'l{layer}-keys'), [])
        run(line, cmd, expected)

if __name__ == '__main__':
    main()
