"""PyTorch reference for `npm run bench`: the benchmark's workloads on the CPU.

The same networks, losses, batch sizes and timing rules as src/bench/workload.ts
(warm-up, then steps until both a step count and a minimum time are reached, one loss
read-back at the end). Prints one JSON line per workload in the benchmark's result format.

  vae-mlp    quickstart VAE: MLP 784-400-(2x20) / 20-400-784, Bernoulli, Adam, batch 128
  m2-mnist   M2: classifier, q(z|x,y), p(x|y,z) MLPs of 500 softplus, z 50,
             10 labelled + 90 unlabelled rows (y summed out over 10 classes)
  adgm-mnist ADGM: q(a|x), q(y|a,x), q(z|a,y,x), p(x|y,z), p(a|x,y,z) MLPs of 500-500 ReLU,
             a = z = 100, 100 labelled + 100 unlabelled rows (y summed out over 10 classes)
  gvae-conv  G-VAE: conv 32x32x3 (32-64-128, kernel 4, stride 2), K 128, ISDA class loss, batch 64
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--workloads", default="vae-mlp,m2-mnist,adgm-mnist,gvae-conv")
p.add_argument("--steps", type=int, default=30)
p.add_argument("--min-seconds", type=float, default=3)
p.add_argument("--max-seconds", type=float, default=10)
a = p.parse_args()
torch.manual_seed(0)


def gaussian_kl(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)


def sample(h, K):
    mu, logvar = h[:, :K], h[:, K:].clamp(-30, 20)
    return mu, logvar, mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def mlp(i, h, o, act):
    return nn.Sequential(nn.Linear(i, h), act(), nn.Linear(h, o))


def vae_mlp():
    D, H, K, B = 784, 400, 20, 128
    enc, dec = mlp(D, H, 2 * K, nn.ReLU), mlp(K, H, D, nn.ReLU)
    pool = torch.rand(4, B, D)

    def loss(i):
        x = pool[i % 4]
        mu, logvar, z = sample(enc(x), K)
        recon = F.binary_cross_entropy_with_logits(dec(z), x, reduction="none").sum(1)
        return (recon + gaussian_kl(mu, logvar)).mean()

    return list(enc.parameters()) + list(dec.parameters()), loss, B


def m2_mnist():
    D, H, K, C, B, NL = 784, 500, 50, 10, 100, 10
    cls, enc, dec = mlp(D, H, C, nn.Softplus), mlp(D + C, H, 2 * K, nn.Softplus), mlp(K + C, H, D, nn.Softplus)
    pool = torch.rand(4, B, D)
    labels = torch.arange(NL) % C
    eye = torch.eye(C)

    def L(x, y1h):  # −ELBO(x, y) per row, with −log p(y) for uniform p(y)
        mu, logvar, z = sample(enc(torch.cat([x, y1h], 1)), K)
        recon = F.binary_cross_entropy_with_logits(dec(torch.cat([z, y1h], 1)), x, reduction="none").sum(1)
        return recon + gaussian_kl(mu, logvar) + torch.log(torch.tensor(float(C)))

    def loss(i):
        x = pool[i % 4]
        xl, xu = x[:NL], x[NL:]
        logits = cls(x)
        lab = L(xl, eye[labels])
        nu = xu.shape[0]
        Lu = L(xu.repeat_interleave(C, 0), eye.repeat(nu, 1)).view(nu, C)
        q = F.softmax(logits[NL:], 1)
        U = (q * Lu).sum(1) + (q * F.log_softmax(logits[NL:], 1)).sum(1)
        ce = F.cross_entropy(logits[:NL], labels, reduction="none")
        return (lab.sum() + U.sum() + 50 * ce.sum()) / B

    return list(cls.parameters()) + list(enc.parameters()) + list(dec.parameters()), loss, B


def mlp2(i, o, h=500):
    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, o))


def log_normal(v, mu, logvar):
    return (-0.5 * ((v - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi))).sum(1)


def adgm_mnist():
    D, K, A, C, B, NL = 784, 100, 100, 10, 200, 100
    enc_a, cls, enc = mlp2(D, 2 * A), mlp2(A + D, C), mlp2(D + A + C, 2 * K)
    dec, dec_a = mlp2(K + C, D), mlp2(D + K + C, 2 * A)
    pool = torch.rand(4, B, D)
    labels = torch.arange(NL) % C
    eye = torch.eye(C)

    def L(x, a, logqa, y1h):  # −ELBO(x, y) per pass: recon + KL(z) + log q(a|x) − log p(a|x,y,z) + log C
        mu, logvar, z = sample(enc(torch.cat([x, a, y1h], 1)), K)
        recon = F.binary_cross_entropy_with_logits(dec(torch.cat([z, y1h], 1)), x, reduction="none").sum(1)
        pa = dec_a(torch.cat([x, z, y1h], 1))
        logpa = log_normal(a, pa[:, :A], pa[:, A:].clamp(-30, 20))
        return recon + gaussian_kl(mu, logvar) + logqa - logpa + math.log(C)

    def loss(i):
        x = pool[i % 4]
        mu_a, logvar_a, a = sample(enc_a(x), A)
        logqa = log_normal(a, mu_a, logvar_a)
        logits = cls(torch.cat([a, x], 1))
        lab = L(x[:NL], a[:NL], logqa[:NL], eye[labels])
        nu = B - NL
        # one block of the unlabelled rows per class, as elbo tiles them
        rep = lambda t: t[NL:].repeat(C, *([1] * (t.dim() - 1)))
        Lu = L(rep(x), rep(a), rep(logqa), eye.repeat_interleave(nu, 0)).view(C, nu).t()
        q = F.softmax(logits[NL:], 1)
        U = (q * Lu).sum(1) + (q * F.log_softmax(logits[NL:], 1)).sum(1)
        ce = F.cross_entropy(logits[:NL], labels, reduction="none")
        return (lab.sum() + U.sum() + 50 * ce.sum()) / B

    params = [p for m in (enc_a, cls, enc, dec, dec_a) for p in m.parameters()]
    return params, loss, B


def gvae_conv():
    K, C, B = 128, 10, 64
    enc = nn.Sequential(
        nn.Conv2d(3, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(), nn.Conv2d(64, 128, 4, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 4 * 128, 2 * K))
    dec_in = nn.Linear(K, 4 * 4 * 128)
    dec = nn.Sequential(
        nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(32, 3, 4, 2, 1))
    W = nn.Parameter(torch.randn(K, C) * 0.1)
    b = nn.Parameter(torch.zeros(C))
    pool = torch.rand(4, B, 3, 32, 32)
    y = torch.arange(B) % C

    def loss(i):
        x = pool[i % 4]
        mu, logvar, z = sample(enc(x), K)
        xhat = dec(F.relu(dec_in(z)).view(-1, 128, 4, 4))
        recon = (x - xhat).pow(2).flatten(1).sum(1)
        s2, wy = logvar.exp(), W.t()[y]
        quad = 0.5 * (s2 @ W.pow(2)) - (s2 * wy) @ W + 0.5 * (s2 * wy.pow(2)).sum(1, keepdim=True)
        lin = mu @ W - (mu * wy).sum(1, keepdim=True)
        isda = torch.logsumexp(quad + lin + b[None] - b[y][:, None], 1)
        return (0.0025 * gaussian_kl(mu, logvar) + recon + 20 * isda).mean()

    params = list(enc.parameters()) + list(dec_in.parameters()) + list(dec.parameters()) + [W, b]
    return params, loss, B


WORKLOADS = {"vae-mlp": vae_mlp, "m2-mnist": m2_mnist, "adgm-mnist": adgm_mnist, "gvae-conv": gvae_conv}


def run(step, steps, min_s, max_s):
    t0 = time.perf_counter()
    n, last = 0, None
    while n < 2 or not ((n >= steps and time.perf_counter() - t0 >= min_s) or time.perf_counter() - t0 >= max_s):
        last = step(n)
        n += 1
    value = float(last)  # the one read-back
    return n, time.perf_counter() - t0, value


for name in a.workloads.split(","):
    params, loss_fn, B = WORKLOADS[name]()
    opt = torch.optim.Adam(params, lr=1e-3)

    def step(i):
        loss = loss_fn(i)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.detach()

    run(step, 5, 0, 3)
    n, seconds, _ = run(step, a.steps, a.min_seconds, a.max_seconds)
    print(json.dumps({
        "workload": name, "backend": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(),
        "steps": n, "seconds": seconds, "msPerStep": 1000 * seconds / n, "samplesPerSec": n * B / seconds,
        "flopsPerStep": 0, "gflops": 0,
    }), flush=True)
