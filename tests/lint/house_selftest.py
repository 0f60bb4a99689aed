#!/usr/bin/env python3
# house_selftest.py HOUSE_PY — the house check against synthetic trees: a clean tree passes (with
# the near misses the rules must let through), and each kind of violation, planted alone in a copy
# of it, fails with exit 1 and the expected "path:line: rule" line, and nothing else.
import os
import shutil
import subprocess
import sys
import tempfile

HOUSE = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'house.py')


def lines(n, head=''):
    return head + ''.join(f'int x{i};\n' for i in range(n - head.count('\n')))


CLEAN = {
    'meson.build': "project('t', 'c')\nsubdir('common')\nsubdir('stages')\nsubdir('cli')\nsubdir('tests')\n",
    'common/meson.build': "common_dep = declare_dependency(include_directories : include_directories('.'))\n",
    'common/io.c': '#include "io.h"\ndouble ps_mono_s(void) { return 0; }\nint ps_fsync_dir(const char *d) { return 0; }\n',
    'common/io.h': 'double ps_mono_s(void);\nint ps_fsync_dir(const char *d);\n',
    'common/hash.h': ('static inline unsigned long long ps_mix64(unsigned long long z) {\n'
                      '  return z * 0xBF58476D1CE4E5B9ull;\n}\n'),
    'common/util.h': '// a header stages share\n',
    'stages/meson.build': "subdir('alpha')\nsubdir('beta')\n",
    'stages/alpha/meson.build': ("# alpha, not beta_dep (a comment names it: fine)\n"
                                 "alpha_lib = static_library('alpha', 'alpha.c', dependencies : common_dep)\n"
                                 "alpha_dep = declare_dependency(link_with : alpha_lib,\n"
                                 "  include_directories : include_directories('.', '../../common'))\n"
                                 "alpha_exe = executable('alpha', 'main.c', dependencies : alpha_dep)\n"),
    'stages/alpha/alpha.h': '// alpha\n#include "util.h"\n',
    'stages/alpha/alpha.c': ('#include "alpha.h"\n#include "io.h"\n#include <stdio.h>\n#include "gen.pb-c.h"\n'
                             '// now_s() is gone: ps_mono_s() instead; mkdtemp( is for tests\n'
                             'double took(void);\n'
                             'double took(void) {\n  double t = ps_mono_s();\n  return t;\n}\n'
                             'static const char *s = "static double now_s(void) {";\n'),
    'stages/alpha/main.c': '#include "alpha.h"\nint main(void) { return 0; }\n',
    'stages/beta/meson.build': ("beta_lib = static_library('beta', 'beta.c', 'sub/part.c', dependencies : common_dep)\n"
                                "beta_dep = declare_dependency(link_with : beta_lib)\n"),
    'stages/beta/beta.c': '#include "part.h"\n#include "sub/part.h"\ndouble now_s(void);\n',
    'stages/beta/sub/part.h': '// beta part\n',
    'stages/beta/sub/part.c': '#include "../beta.h"\n',
    'stages/beta/beta.h': '// beta\n',
    'cli/meson.build': "cli_exe = executable('t', 'main.c', dependencies : [common_dep])\n",
    'cli/main.c': '#include "util.h"\n#include "cli.h"\nint main(void) { return 0; }\n',
    'cli/cli.h': '// cli\n',
    'tests/meson.build': "subdir('unit')\n",
    'tests/unit/meson.build': ("test('unit_alpha', executable('test_alpha', 'test_alpha.c', dependencies : [alpha_dep, beta_dep]))\n"
                               "test('unit_prom', executable('test_prom', files('../../cli/main.c')))\n"),
    'tests/unit/fixture.h': '#include <stdlib.h>\nstatic char d[] = "x";\nstatic int fx_setup(void) { return mkdtemp(d) ? 0 : -1; }\n',
    'tests/unit/test_alpha.c': '#include "fixture.h"\n#include "beta.h"\n// not mkdtemp(), not nftw(): fx_setup\nint main(void) { return fx_setup(); }\n',
    'tests/unit/helper.sh': '#!/bin/sh\nd=$(mktemp -d)\n',
    'tests/long_ok.c': lines(900, '// long_ok.c — a table.\n// Long file: one generated table, read as a whole.\n'),
    'tests/exactly.py': ''.join('x = 1\n' for _ in range(800)),
    'scripts/tool': '#!/usr/bin/env bash\n' + ''.join('true\n' for _ in range(799)),
    'scripts/data.txt': ''.join('row\n' for _ in range(2000)),
    'build/meson-private/.keep': '',
    'build/long.c': lines(5000),
    'build/stages/beta/gen.c': '#include "alpha.h"\nstatic double now_s(void) { return 0; }\n',
}

# name -> (files to add or replace, the expected violation lines (each "path:line: rule"))
CASES = {
    'a stage links another stage\'s dependency': (
        {'stages/beta/meson.build': CLEAN['stages/beta/meson.build'] + "beta_x = executable('b', 'beta.c', dependencies : [beta_dep,\n  alpha_dep])\n"},
        ['stages/beta/meson.build:4: stages: stages/beta uses alpha_dep, a build object of stages/alpha/']),
    'a stage names another stage\'s folder in meson': (
        {'stages/beta/meson.build': CLEAN['stages/beta/meson.build'] + "beta_inc = include_directories('../alpha')\n"},
        ["stages/beta/meson.build:3: stages: stages/beta reaches into stages/alpha/ by path '../alpha'"]),
    'cli names a stage folder in meson': (
        {'cli/meson.build': "cli_exe = executable('t', 'main.c',\n  include_directories : include_directories('../stages/alpha'))\n"},
        ["cli/meson.build:2: stages: cli reaches into stages/alpha/ by path '../stages/alpha'"]),
    'cli links a stage library': (
        {'cli/meson.build': "cli_exe = executable('t', 'main.c', link_with : alpha_lib)\n"},
        ['cli/meson.build:1: stages: cli uses alpha_lib, a build object of stages/alpha/']),
    'a test compiles a stage source by path': (
        {'tests/unit/meson.build': "test('x', executable('x', files('../../stages/beta/beta.c')))\n"},
        ["tests/unit/meson.build:1: stages: a test reaches into stages/beta/ by path '../../stages/beta/beta.c'"]),
    'a stage includes another stage\'s header': (
        {'stages/beta/beta.c': '#include "part.h"\n\n  #  include "alpha.h"\n'},
        ['stages/beta/beta.c:3: stages: stages/beta includes "alpha.h", which lives only in stages/alpha/']),
    'a stage includes another stage\'s header by relative path': (
        {'stages/beta/beta.c': '#include "../alpha/alpha.h"\n'},
        ['stages/beta/beta.c:1: stages: stages/beta includes "../alpha/alpha.h", which lives only in stages/alpha/']),
    'cli includes a stage header': (
        {'cli/main.c': '#include "cli.h"\n#include "part.h"\n'},
        ['cli/main.c:2: stages: cli includes "part.h", which lives only in stages/beta/']),
    'a stage includes a cli header': (
        {'stages/alpha/main.c': '#include "cli.h"\n'},
        ['stages/alpha/main.c:1: stages: stages/alpha includes "cli.h", which lives only in cli/']),
    'a long C file without a reason': (
        {'common/big.c': lines(801)},
        ["common/big.c:1: long-file: 801 lines (over 800) and no 'Long file: <reason>' in its first 15 lines"]),
    'a long shell script with the marker too late': (
        {'tests/run.sh': '#!/bin/sh\n' + ''.join('true\n' for _ in range(15)) + '# Long file: too late\n' + ''.join('true\n' for _ in range(900))},
        ["tests/run.sh:1: long-file: 917 lines (over 800) and no 'Long file: <reason>' in its first 15 lines"]),
    'a long header whose marker gives no reason': (
        {'common/big.h': lines(1000, '// Long file:\n')},
        ["common/big.h:1: long-file: 1000 lines (over 800) and no 'Long file: <reason>' in its first 15 lines"]),
    'a long script without a suffix': (
        {'scripts/tool': '#!/usr/bin/env python3\n' + ''.join('pass\n' for _ in range(850))},
        ["scripts/tool:1: long-file: 851 lines (over 800) and no 'Long file: <reason>' in its first 15 lines"]),
    'a copy of now_s': (
        {'stages/alpha/clock.c': '#include <time.h>\n\nstatic double now_s(void) {\n  return 0;\n}\n'},
        ['stages/alpha/clock.c:3: helpers: defines now_s(): use the one in common/io.h or common/hash.h']),
    'a copy of fsync_dir_of, brace on the next line': (
        {'common/fmt.c': 'static void\nfsync_dir_of(const char *path)\n{\n}\n'},
        ['common/fmt.c:2: helpers: defines fsync_dir_of(): use the one in common/io.h or common/hash.h']),
    'a prefixed copy of fsync_dir': (
        {'cli/out.c': 'int out_fsync_dir(const char *d) { return 0; }\n'},
        ['cli/out.c:1: helpers: defines out_fsync_dir(): use the one in common/io.h or common/hash.h']),
    'a copy of wall_s in a test': (
        {'tests/unit/test_beta.c': 'static double wall_s(void) { return 1; }\n'},
        ['tests/unit/test_beta.c:1: helpers: defines wall_s(): use the one in common/io.h or common/hash.h']),
    'a splitmix64 stream': (
        {'cli/gen.c': 'static unsigned long long splitmix64_next(unsigned long long *x) { return *x += 1; }\n'},
        ['cli/gen.c:1: helpers: defines splitmix64_next(): use the one in common/io.h or common/hash.h']),
    'a splitmix64 finaliser by its constants': (
        {'stages/beta/mix.h': 'static inline unsigned long long mix(unsigned long long z) {\n'
                              '  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;\n  return z;\n}\n'},
        ['stages/beta/mix.h:2: helpers: a copy of the splitmix64 finaliser: use ps_mix64 / ps_splitmix64 in common/hash.h']),
    'a murmur finaliser': (
        {'stages/alpha/h.c': 'unsigned long long h(unsigned long long h) {\n  h ^= h >> 33;\n  h *= 0xFF51AFD7ED558CCDull;\n  return h;\n}\n'},
        ['stages/alpha/h.c:3: helpers: a copy of the murmur3 finaliser: use ps_mix64 in common/hash.h']),
    'a unit test with mkdtemp': (
        {'tests/unit/test_beta.c': '#include <stdlib.h>\nint main(void) {\n  char d[] = "/tmp/x.XXXXXX";\n  return !mkdtemp(d);\n}\n'},
        ['tests/unit/test_beta.c:4: fixture: mkdtemp() by hand: make scratch directories with tests/unit/fixture.h (fx_setup / fx_teardown, fx_path)']),
    'a unit test helper with nftw': (
        {'tests/unit/util.h': '#include <ftw.h>\nstatic int rm(const char *d) { return nftw (d, 0, 8, 0); }\n'},
        ['tests/unit/util.h:2: fixture: nftw() by hand: make scratch directories with tests/unit/fixture.h (fx_setup / fx_teardown, fx_path)']),
}


def plant(root, files):
    for rel, text in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'w') as f:
            f.write(text)


def run(root):
    r = subprocess.run([sys.executable, HOUSE, root], capture_output=True, text=True)
    return r.returncode, r.stdout + r.stderr


def main():
    failed = 0
    with tempfile.TemporaryDirectory(prefix='house-selftest.') as tmp:
        clean = os.path.join(tmp, 'clean')
        plant(clean, CLEAN)
        rc, out = run(clean)
        if rc != 0 or 'house: clean' not in out:
            print(f'FAIL the clean tree: exit {rc}, want 0\n{out}')
            failed += 1
        else:
            print('ok   the clean tree passes')
        for i, (name, (files, want)) in enumerate(CASES.items()):
            root = os.path.join(tmp, f'case{i}')
            shutil.copytree(clean, root)
            plant(root, files)
            rc, out = run(root)
            got = [x for x in out.splitlines() if not x.startswith('house: ')]
            if rc != 1 or got != want:
                print(f'FAIL {name}: exit {rc} (want 1)\n  want: {want}\n  got:  {got}')
                failed += 1
            else:
                print(f'ok   {name}')
        rc, out = run(os.path.join(tmp, 'missing'))
        if rc != 2:
            print(f'FAIL a missing root: exit {rc}, want 2')
            failed += 1
    print(f'{len(CASES) + 2 - failed} of {len(CASES) + 2} passed')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
