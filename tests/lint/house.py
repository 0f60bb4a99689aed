#!/usr/bin/env python3
# house.py ROOT — the house rules that can fail (docs/style.md, "The house check"). Prints each
# violation as "path:line: rule: what" (path relative to ROOT) and exits 1; exits 0 when clean.
#   stages    no stage (stages/X) nor cli/ reaches into another stage's folder: a meson path
#             ('../reader', '../stages/x'), another stage's build object (reader_dep, ...), an
#             #include of a header that lives only in another stage's folder (or only in cli/);
#             tests' meson files name no stage folder by path.
#   long-file no .c/.h/.sh/.py file (nor a shell or Python script without a suffix) over 800
#             lines unless one of its first 15 lines says "Long file: <the reason>".
#   helpers   no copy of what common/io.h and common/hash.h provide: no function named now_s,
#             now_ms, mono_s, mono_ms, wall_s, fsync_dir, fsync_dir_of (any prefix) or
#             splitmix64* defined outside common/io.c, no splitmix64 or murmur3 finaliser
#             constants outside common/hash.h.
#   fixture   the unit tests make scratch directories only through tests/unit/fixture.h: no
#             mkdtemp or nftw in tests/unit elsewhere.
# Build directories (any folder holding meson-private/ or build.ninja) and .git are skipped.
import os
import re
import sys

MAX_LINES = 800
MARKER_LINES = 15
MARKER = re.compile(r'Long file:\s*\w')
HELPER_HOMES = {'common/io.c', 'common/hash.h'}
HELPER_NAMES = re.compile(r'(?<![A-Za-z0-9_])((?:[A-Za-z0-9_]+_)?(?:now_s|now_ms|mono_s|mono_ms|wall_s|fsync_dir_of|fsync_dir)'
                          r'|[A-Za-z0-9_]*splitmix64[A-Za-z0-9_]*)\s*\(')
FINALISERS = [
    (re.compile(r'0x' + 'bf58476d1ce4e5b9', re.I), 'splitmix64 finaliser', 'ps_mix64 / ps_splitmix64 in common/hash.h'),
    (re.compile(r'0x' + 'ff51afd7ed558ccd', re.I), 'murmur3 finaliser', 'ps_mix64 in common/hash.h'),
]
SCRATCH = re.compile(r'(?<![A-Za-z0-9_])(mkdtemp|nftw)\s*\(')
MESON_OBJECT = re.compile(r'^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*'
                          r'(static_library|shared_library|library|both_libraries|declare_dependency|executable)\s*\(',
                          re.M)
INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')

violations = []


def report(path, line, rule, what):
    violations.append((path, line, rule, what))


def read(root, rel):
    with open(os.path.join(root, rel), encoding='utf-8', errors='replace') as f:
        return f.read()


def walk(root):
    """Relative paths of every file under root, build directories and .git left out, sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x != '.git' and not os.path.exists(os.path.join(d, x, 'meson-private'))
                         and not os.path.exists(os.path.join(d, x, 'build.ninja')))
        for f in sorted(files):
            out.append(os.path.relpath(os.path.join(d, f), root))
    return out


def unit_of(rel):
    """'stages/X' for a file in stage X's folder, 'cli' for cli/, else None."""
    p = rel.split(os.sep)
    if len(p) >= 3 and p[0] == 'stages':
        return 'stages/' + p[1]
    if len(p) >= 2 and p[0] == 'cli':
        return 'cli'
    return None


def strip_c(text):
    """text with C comments and string / char literals blanked (newlines kept)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith('//', i):
            j = text.find('\n', i)
            j = n if j < 0 else j
            out.append(' ' * (j - i))
            i = j
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r'[^\n]', ' ', text[i:j]))
            i = j
        elif c in '"\'':
            j = i + 1
            while j < n and text[j] != c and text[j] != '\n':
                j += 2 if text[j] == '\\' else 1
            j = min(j + 1, n)
            out.append(c + ' ' * max(0, j - i - 2) + (c if j - i >= 2 else ''))
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


def strip_meson(text):
    """(code, strings): meson text with comments removed and string contents blanked; and the
    strings as (line, value)."""
    code, strings, i, n, line = [], [], 0, len(text), 1
    while i < n:
        c = text[i]
        if c == '#':
            j = text.find('\n', i)
            j = n if j < 0 else j
            code.append(' ' * (j - i))
            i = j
        elif c == "'":
            q = "'''" if text.startswith("'''", i) else "'"
            j = text.find(q, i + len(q))
            j = n if j < 0 else j
            val = text[i + len(q):j]
            strings.append((line, val))
            blank = re.sub(r'[^\n]', ' ', val)
            code.append(q + blank + q)
            line += val.count('\n')
            i = j + len(q)
        else:
            if c == '\n':
                line += 1
            code.append(c)
            i += 1
    return ''.join(code), strings


def line_of(text, pos):
    return text.count('\n', 0, pos) + 1


# ---- stages ------------------------------------------------------------------------------------
def check_stages(root, files):
    objects = {}  # build object name -> the stage folder that declares it
    for rel in files:
        u = unit_of(rel)
        if os.path.basename(rel) == 'meson.build' and u and u.startswith('stages/'):
            code, _ = strip_meson(read(root, rel))
            for m in MESON_OBJECT.finditer(code):
                objects[m.group(1)] = u
    for rel in files:
        if os.path.basename(rel) != 'meson.build':
            continue
        u = unit_of(rel)
        in_tests = rel.split(os.sep)[0] == 'tests'
        if not u and not in_tests:
            continue
        code, strings = strip_meson(read(root, rel))
        here = os.path.dirname(rel)
        for line, s in strings:
            if '../' not in s:
                continue
            target = os.path.normpath(os.path.join(here, s))
            t = unit_of(os.path.join(target, 'x')) if not target.startswith('..') else None
            if t and t.startswith('stages/') and t != u:
                who = 'a test' if in_tests else u
                report(rel, line, 'stages', f"{who} reaches into {t}/ by path '{s}'")
        if in_tests:
            continue
        own = {m.group(1) for m in MESON_OBJECT.finditer(code)}
        for m in re.finditer(r'(?<![A-Za-z0-9_.])([A-Za-z_][A-Za-z0-9_]*)', code):
            name = m.group(1)
            if name in objects and objects[name] != u and name not in own:
                report(rel, line_of(code, m.start()), 'stages', f"{u} uses {name}, a build object of {objects[name]}/")
    headers = {}  # basename -> relative paths of the headers with that name
    for rel in files:
        if rel.endswith('.h'):
            headers.setdefault(os.path.basename(rel), []).append(rel)
    for rel in files:
        u = unit_of(rel)
        if not u or not rel.endswith(('.c', '.h')):
            continue
        here = os.path.dirname(rel)
        for no, text in enumerate(read(root, rel).split('\n'), 1):
            m = INCLUDE.match(text)
            if not m:
                continue
            inc = m.group(1)
            beside = os.path.normpath(os.path.join(here, inc))
            if os.path.isfile(os.path.join(root, beside)) and not beside.startswith('..'):
                where = [beside]
            else:
                where = [h for h in headers.get(os.path.basename(inc), [])
                         if h == os.path.normpath(inc) or h.endswith(os.sep + os.path.normpath(inc))]
            if not where:
                continue  # a system or generated header
            homes = {unit_of(h) for h in where}
            if u in homes or None in homes:
                continue
            report(rel, no, 'stages', f'{u} includes "{inc}", which lives only in {", ".join(sorted(homes))}/')


# ---- long files --------------------------------------------------------------------------------
def is_script(root, rel):
    if rel.endswith(('.c', '.h', '.sh', '.py')):
        return True
    if '.' in os.path.basename(rel):
        return False
    try:
        with open(os.path.join(root, rel), 'rb') as f:
            first = f.readline(200)
    except OSError:
        return False
    return first.startswith(b'#!') and re.search(rb'\b(ba|da)?sh\b|python', first) is not None


def check_long(root, files):
    for rel in files:
        if not is_script(root, rel):
            continue
        text = read(root, rel)
        lines = text.split('\n')
        n = len(lines) - (1 if text.endswith('\n') else 0)
        if n > MAX_LINES and not any(MARKER.search(x) for x in lines[:MARKER_LINES]):
            report(rel, 1, 'long-file',
                   f"{n} lines (over {MAX_LINES}) and no 'Long file: <reason>' in its first {MARKER_LINES} lines")


# ---- helpers -----------------------------------------------------------------------------------
def check_helpers(root, files):
    for rel in files:
        if not rel.endswith(('.c', '.h')) or rel.replace(os.sep, '/') in HELPER_HOMES:
            continue
        code = strip_c(read(root, rel))
        lines = code.split('\n')
        for no, text in enumerate(lines, 1):
            if text[:1].isalpha() or text[:1] == '_':  # a top-level line: a definition or a prototype
                m = HELPER_NAMES.search(text)
                if m and not text.lstrip().startswith(('#', 'return')):
                    rest = '\n'.join(lines[no - 1:no + 8])[m.end():]
                    semi, brace = rest.find(';'), rest.find('{')
                    if brace >= 0 and (semi < 0 or brace < semi):
                        report(rel, no, 'helpers', f'defines {m.group(1)}(): use the one in common/io.h or common/hash.h')
            if rel.replace(os.sep, '/') == 'common/hash.h':
                continue
            for rx, what, use in FINALISERS:
                if rx.search(text):
                    report(rel, no, 'helpers', f'a copy of the {what}: use {use}')


# ---- fixture -----------------------------------------------------------------------------------
def check_fixture(root, files):
    for rel in files:
        p = rel.split(os.sep)
        if p[:2] != ['tests', 'unit'] or len(p) != 3 or not rel.endswith(('.c', '.h')) or p[2] == 'fixture.h':
            continue
        for no, text in enumerate(strip_c(read(root, rel)).split('\n'), 1):
            m = SCRATCH.search(text)
            if m:
                report(rel, no, 'fixture',
                       f'{m.group(1)}() by hand: make scratch directories with tests/unit/fixture.h (fx_setup / fx_teardown, fx_path)')


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print('usage: house.py ROOT (the source tree to check)', file=sys.stderr)
        return 2
    root = argv[1]
    files = walk(root)
    check_stages(root, files)
    check_long(root, files)
    check_helpers(root, files)
    check_fixture(root, files)
    for path, line, rule, what in sorted(violations):
        print(f'{path}:{line}: {rule}: {what}')
    if violations:
        print(f'house: {len(violations)} violation(s) in {root}')
        return 1
    print(f'house: clean ({len(files)} files in {root})')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
