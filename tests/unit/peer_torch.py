#!/usr/bin/python3
"""Peer checkpoints written by Debian's python3-torch for unit_sae_peer (peer_torch.sh).

  peer_torch.py seeds DIR   the peer seeds of tests/fuzz/corpus/pt (peer_ae, peer_ckpt: tiny)
  peer_torch.py DIR    writes into DIR:
    ae.pt            torch.save(ae.state_dict()) of a dictionary_learning-style AutoEncoder (as
                     InterPLM saves it): bias [d], encoder = Linear(d, n), decoder = Linear(n, d,
                     bias=False); encode(x) = relu(encoder(x - bias))
    study.ckpt       a PyTorch Lightning checkpoint of the reference study's module (LitLit with
                     model = TopKAuto: weights = ParameterList [W_enc [d, n], W_dec [n, d],
                     b_enc [n], b_dec [d]], buffer neuron_idle_counts (int64)), with
                     hyper_parameters (k among them), optimizer_states, loops, callbacks...;
                     encode(x) = relu(topk((ln(x) - b_dec) W_enc + b_enc)), ln(x) = (x - mean) /
                     sqrt(var + 1e-5)
    study_nok.ckpt   the same without hyper_parameters.k
    ae_topk.pt       dictionary_learning's AutoEncoderTopK state_dict (b_dec, k = 5 as an int32
                     buffer, a scalar threshold buffer): relu, then the top k
    ae_badshape.pt   ae.pt with decoder.weight of the wrong shape; ae_nobias.pt without "bias"
    NAME.x.f32, NAME.codes.f32  input rows and the module's codes (dense [rows, d_sae])
    cases.txt        "NAME FILE ROWS D_IN D_SAE" per case
The modules here only reproduce the peers' parameter names and forward passes.
"""
import collections
import os
import sys

import torch
from torch import nn
import torch.nn.functional as F


class AutoEncoder(nn.Module):
    def __init__(self, d, n):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(d) * 0.1)
        self.encoder = nn.Linear(d, n)
        self.decoder = nn.Linear(n, d, bias=False)

    def encode(self, x):
        return F.relu(self.encoder(x - self.bias))


class AutoEncoderTopK(nn.Module):  # dictionary_learning's TopK layout: b_dec, k and threshold buffers
    def __init__(self, d, n, k):
        super().__init__()
        self.encoder = nn.Linear(d, n)
        self.decoder = nn.Linear(n, d, bias=False)
        self.b_dec = nn.Parameter(torch.randn(d) * 0.1)
        self.register_buffer('k', torch.tensor(k, dtype=torch.int))
        self.register_buffer('threshold', torch.tensor(-1.0, dtype=torch.float32))

    def encode(self, x):
        acts = F.relu(self.encoder(x - self.b_dec))
        v, i = acts.topk(int(self.k), dim=-1)
        return torch.zeros_like(acts).scatter_(-1, i, v)


class TopKAuto(nn.Module):
    def __init__(self, d, n, k):
        super().__init__()
        self.weights = nn.ParameterList([
            nn.Parameter(torch.randn(d, n) / d ** 0.5), nn.Parameter(torch.randn(n, d) / n ** 0.5),
            nn.Parameter(torch.randn(n) * 0.1), nn.Parameter(torch.randn(d) * 0.1)])
        self.register_buffer('neuron_idle_counts', torch.zeros(n, dtype=torch.long))
        self.k = k

    def encode(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        c = x - mean
        ln = c / (c.pow(2).mean(dim=-1, keepdim=True) + 1e-5).sqrt()
        pre = (ln - self.weights[3]) @ self.weights[0] + self.weights[2]
        v, i = torch.topk(pre, k=self.k, dim=-1)
        return torch.zeros_like(pre).scatter_(-1, i, F.relu(v))


class LitLit(nn.Module):  # stands for the LightningModule: its state_dict keys are "model.*"
    def __init__(self, d, n, k):
        super().__init__()
        self.model = TopKAuto(d, n, k)


def lightning_ckpt(lit, hparams):
    sd = lit.state_dict()
    ps = [p for p in lit.parameters()]
    return {
        'epoch': 3, 'global_step': 100, 'pytorch-lightning_version': '2.1.0',
        'state_dict': sd,
        'loops': {'fit_loop': {'state_dict': {}, 'epoch_loop.state_dict': {'_batches_that_stepped': 100},
                               'epoch_progress': {'total': {'ready': 4, 'completed': 3}, 'current': {'ready': 4}}}},
        'callbacks': {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
            'monitor': 'val_loss', 'best_model_score': torch.tensor(0.25), 'best_model_path': '/x/epoch=2.ckpt',
            'kth_best_map': {'/x/epoch=2.ckpt': torch.tensor(0.25)}, 'dirpath': '/x', 'last_model_path': ''}},
        'optimizer_states': [{
            'state': {i: {'step': torch.tensor(100.0), 'exp_avg': torch.zeros_like(p), 'exp_avg_sq': torch.ones_like(p)}
                      for i, p in enumerate(ps)},
            'param_groups': [{'lr': 1e-3, 'betas': (0.9, 0.999), 'eps': 1e-8, 'weight_decay': 0.0, 'amsgrad': False,
                              'maximize': False, 'foreach': None, 'capturable': False, 'differentiable': False,
                              'fused': None, 'params': list(range(len(ps)))}]}],
        'lr_schedulers': [],
        'hparams_name': 'kwargs',
        'hyper_parameters': hparams,
        'shapes': collections.OrderedDict([('W_enc', torch.Size([3, 4])), ('big', 2 ** 40), ('neg', -7)]),
    }


def case(out, name, fname, module, x):
    with torch.no_grad():
        codes = module.encode(x)
    x.numpy().astype('<f4').tofile(os.path.join(out, name + '.x.f32'))
    codes.numpy().astype('<f4').tofile(os.path.join(out, name + '.codes.f32'))
    return '%s %s %d %d %d\n' % (name, fname, x.shape[0], x.shape[1], codes.shape[1])


def seeds(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(3)
    torch.save(AutoEncoder(3, 4).state_dict(), os.path.join(out, 'peer_ae'))
    lit = LitLit(3, 4, 2)
    ck = lightning_ckpt(lit, {'input_dim': 3, 'hidden_dim': 4, 'k': 2, 'architecture': 'topk'})
    del ck['optimizer_states'], ck['callbacks']
    torch.save(ck, os.path.join(out, 'peer_ckpt'))


def main():
    if sys.argv[1] == 'seeds':
        return seeds(sys.argv[2])
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(7)
    d, n, k, rows = 12, 48, 6, 30
    lines = []
    ae = AutoEncoder(d, n)
    torch.save(ae.state_dict(), os.path.join(out, 'ae.pt'))
    lines.append(case(out, 'ae', 'ae.pt', ae, torch.randn(rows, d)))
    sd = ae.state_dict()
    bad = collections.OrderedDict(sd)
    bad['decoder.weight'] = torch.randn(d + 1, n)
    torch.save(bad, os.path.join(out, 'ae_badshape.pt'))
    nob = collections.OrderedDict((key, v) for key, v in sd.items() if key != 'bias')
    torch.save(nob, os.path.join(out, 'ae_nobias.pt'))
    ak = AutoEncoderTopK(d, n, 5)
    torch.save(ak.state_dict(), os.path.join(out, 'ae_topk.pt'))
    lines.append(case(out, 'ae_topk', 'ae_topk.pt', ak, torch.randn(rows, d)))
    lit = LitLit(d, n, k)
    hp = {'input_dim': d, 'hidden_dim': n, 'k': k, 'encoder_decoder_init': 1, 'learning_rate': 1e-3,
          'inactive_threshold': 200}
    torch.save(lightning_ckpt(lit, hp), os.path.join(out, 'study.ckpt'))
    x = torch.randn(rows, d) * 3 + torch.randn(rows, 1)
    lines.append(case(out, 'study', 'study.ckpt', lit.model, x))
    hp_nok = {key: v for key, v in hp.items() if key != 'k'}
    torch.save(lightning_ckpt(lit, hp_nok), os.path.join(out, 'study_nok.ckpt'))
    with open(os.path.join(out, 'cases.txt'), 'w') as f:
        f.writelines(lines)


if __name__ == '__main__':
    main()
