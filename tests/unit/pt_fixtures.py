#!/usr/bin/python3
"""The .pt fixtures of unit_ptfile and unit_ptsource, written by torch.save (Debian's python3-torch).

  pt_fixtures.py make DIR          write every fixture below DIR (layout in make())
  pt_fixtures.py dump DIR F...     torch.load each F; DIR/manifest.txt lists files, labels and
                                   tensors, each tensor's floats go to DIR/I.DICT.LAYER.f32
  pt_fixtures.py seeds DIR         the torch-written seeds of tests/fuzz/corpus/pt (valid_*,
                                   deflated, bad_opcode, truncated); the others there are not .pt

The small files hold exact values the C tests recompute (pt_test.h: rep_val, mean_val):
representations[layer][r][c] = layer*100 + r*10 + c + 0.5, mean_representations[layer][c] =
-(layer*100 + c) - 0.25.
"""
import os
import sys

import torch


def rep_val(layer, r, c):
    return layer * 100 + r * 10 + c + 0.5


def mean_val(layer, c):
    return -(layer * 100 + c) - 0.25


def small(path, label, layers=(0, 6), L=3, D=5, nan=False, zeros=False, per_residue=True, mean=True):
    """What extract.py --include per_tok mean saves for one sequence (float32)."""
    d = {'label': label}
    if per_residue:
        d['representations'] = {}
        for l in layers:
            t = torch.zeros(L, D) if zeros else torch.tensor(
                [[rep_val(l, r, c) for c in range(D)] for r in range(L)], dtype=torch.float32)
            d['representations'][l] = t
    if mean:
        d['mean_representations'] = {
            l: torch.zeros(D) if zeros else torch.tensor([mean_val(l, c) for c in range(D)], dtype=torch.float32)
            for l in layers}
    if nan:
        d['representations'][6][2, 3] = float('nan')
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save(d, path)


def make(out):
    j = lambda *p: os.path.join(out, *p)
    # the reader's error tests (test_broken) patch this one's zip and pickle
    small(j('small', 'P1.pt'), 'P1')
    # a directory source: labels with spaces and '/' (extract.py makes a subfolder)
    small(j('srcdir', 'B2.pt'), 'B2')
    small(j('srcdir', 'a1 first protein.pt'), 'a1 first protein')
    small(j('srcdir', 'sp|P3|X_HUMAN serine', 'threonine kinase.pt'), 'sp|P3|X_HUMAN serine/threonine kinase')
    small(j('srcdir', 'C3.pt'), 'C3')
    # source errors: a later file without the first one's layer; a label that is not the name;
    # dimensions that differ; a NaN at representations[6][2, 3]
    small(j('errs1', 'P1.pt'), 'P1')
    small(j('errs1', 'P2.pt'), 'P2', layers=(0,), zeros=True)
    small(j('errs2', 'OTHER.pt'), 'P1 something')
    small(j('errs3', 'A.pt'), 'A')
    small(j('errs3', 'B.pt'), 'B', layers=(6,), D=6, zeros=True)
    small(j('errs4', 'N1.pt'), 'N1', nan=True)
    # 300 layers, unsorted, one key past 65535 (memo and layer keys past 255), three dtypes
    g = torch.Generator().manual_seed(1)
    NL, L, D = 300, 4, 7
    layers = [70000 if l == NL - 1 else NL - 1 - l for l in range(NL)]
    rep = {l: torch.randn(L, D, generator=g) for l in layers}
    mean = {l: torch.randn(D, generator=g) for l in layers}
    rep[layers[3]][0, 5] = -0.0
    rep[layers[4]][0, 6] = 1e-45  # subnormal
    os.makedirs(j('many'), exist_ok=True)
    for name, dt in (('float32', torch.float32), ('float16', torch.float16), ('bfloat16', torch.bfloat16)):
        torch.save({'label': 'many layers \u03b1', 'representations': {l: t.to(dt) for l, t in rep.items()},
                    'mean_representations': {l: t.to(dt) for l, t in mean.items()}}, j('many', 'many.%s.pt' % name))
    # one dict only: protein level pools representations, or takes mean_representations
    for sub in ('resonly', 'meanonly'):
        os.makedirs(j(sub), exist_ok=True)
    torch.save({'label': 'R1 residue only', 'representations': {l: rep[l] for l in layers[:2]}}, j('resonly', 'R1.pt'))
    torch.save({'label': 'M1', 'mean_representations': {l: mean[l] for l in layers[:2]}}, j('meanonly', 'M1.pt'))
    # what torch writes beyond extract.py's float32: half, bfloat16, a view at an offset with other
    # keys, a transposed view (refused), pickle protocol 4 with float64
    d = j('torchmade')
    os.makedirs(d, exist_ok=True)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(9, 8, generator=g)
    torch.save({'label': 'h', 'representations': {4: x.half()}, 'mean_representations': {4: x.mean(0).half()}},
               d + '/h.pt')
    torch.save({'label': 'b', 'representations': {4: x.bfloat16()}}, d + '/b.pt')
    big = torch.randn(20, 8, generator=g)
    torch.save({'label': 'v', 'representations': {4: big[5:14]}, 'contacts': torch.zeros(3, 3),
                'logits': torch.zeros(2, 4), 'extra': [1, 2.5, None, True, 'x', (1,)]}, d + '/v.pt')
    torch.save({'label': 't', 'representations': {4: big.t()}}, d + '/t.pt')
    torch.save({'label': 'p4', 'representations': {4: x, 5: x.double()}, 'mean_representations': {4: x[0]}},
               d + '/p4.pt', pickle_protocol=4)


def rezip(src, dst, compression, patch=None):
    """src's entries into dst (fixed dates), each through patch(name, bytes) when given."""
    import zipfile
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, 'w') as b:
        for name in a.namelist():
            data = a.read(name)
            b.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), patch(name, data) if patch else data,
                       compress_type=compression)


def seeds(out):
    import zipfile
    os.makedirs(out, exist_ok=True)
    j = lambda n: os.path.join(out, n)
    rows = torch.tensor([[-1.0, -0.5, 0.0], [0.5, 1.0, 1.5]])
    rows6 = torch.tensor([[0.0, -0.25, -0.5], [-0.75, -1.0, -1.25]])
    torch.save({'label': 'valid_f32 a protein', 'representations': {0: rows, 6: rows6},
                'mean_representations': {0: rows.mean(0), 6: rows6.mean(0)}}, j('valid_f32'))
    torch.save({'label': 'valid_f16', 'representations': {0: rows.half()},
                'mean_representations': {0: torch.tensor([0.0, 1.0, 2.0]).half()}}, j('valid_f16'))
    torch.save({'label': 'valid_bf16_res', 'representations': {6: rows.bfloat16()}}, j('valid_bf16_res'))
    nan = rows.clone()
    nan[1, 1] = float('nan')
    torch.save({'label': 'valid_nan', 'representations': {0: nan}}, j('valid_nan'))
    rezip(j('valid_f32'), j('deflated'), zipfile.ZIP_DEFLATED)
    # an unknown opcode where the first GLOBAL was (CRC-32 consistent)
    rezip(j('valid_f32'), j('bad_opcode'), zipfile.ZIP_STORED,
          lambda n, d: d.replace(b'ctorch._utils', b'\xfftorch._utils', 1) if n.endswith('data.pkl') else d)
    with open(j('valid_f32'), 'rb') as f:
        data = f.read()
    with open(j('truncated'), 'wb') as f:
        f.write(data[:len(data) // 2])


def dump(out, paths):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, 'manifest.txt'), 'w') as man:
        for i, p in enumerate(paths):
            d = torch.load(p)
            assert type(d) is dict, type(d)
            man.write('file %d %s\n' % (i, ','.join(d.keys())))
            man.write('label %s\n' % d['label'])
            for w in ('representations', 'mean_representations'):
                for layer, t in d.get(w, {}).items():
                    assert type(layer) is int and isinstance(t, torch.Tensor)
                    fn = '%d.%s.%d.f32' % (i, w, layer)
                    t.float().contiguous().numpy().tofile(os.path.join(out, fn))
                    shape = 'x'.join(str(s) for s in t.shape)
                    man.write('tensor %s %d %s %s %s\n' % (w, layer, str(t.dtype)[6:], shape, fn))


if __name__ == '__main__':
    if len(sys.argv) >= 3 and sys.argv[1] == 'make':
        make(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == 'seeds':
        seeds(sys.argv[2])
    elif len(sys.argv) >= 3 and sys.argv[1] == 'dump':
        dump(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
