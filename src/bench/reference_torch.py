"""PyTorch reference for `npm run bench`: the same quickstart VAE step on the CPU.

MLP encoder 784-400-(2x20), decoder 20-400-784, ReLU, Bernoulli likelihood (BCE with
logits, summed over pixels), closed-form Gaussian KL, Adam lr 1e-3, batch 128 -- the
workload of src/bench/workload.ts, timed the same way (warm-up, then steps until both a
step count and a minimum time are reached, one loss read-back at the end). Prints one
JSON line in the benchmark's result format.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=30)
p.add_argument("--min-seconds", type=float, default=5)
p.add_argument("--max-seconds", type=float, default=20)
a = p.parse_args()

torch.manual_seed(0)
D, H, K, B = 784, 400, 20, 128
enc = torch.nn.Sequential(torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, 2 * K))
dec = torch.nn.Sequential(torch.nn.Linear(K, H), torch.nn.ReLU(), torch.nn.Linear(H, D))
params = list(enc.parameters()) + list(dec.parameters())
opt = torch.optim.Adam(params, lr=1e-3)
pool = torch.rand(4, B, D)


def step(i):
    x = pool[i % 4]
    h = enc(x)
    mu, logvar = h[:, :K], h[:, K:].clamp(-30, 20)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    recon = F.binary_cross_entropy_with_logits(dec(z), x, reduction="none").sum(1).mean()
    kl = (0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)).mean()
    loss = recon + kl
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def run(steps, min_s, max_s):
    t0 = time.perf_counter()
    n = 0
    loss = None
    while n < 2 or not ((n >= steps and time.perf_counter() - t0 >= min_s) or time.perf_counter() - t0 >= max_s):
        loss = step(n)
        n += 1
    value = float(loss)  # the one read-back
    return n, time.perf_counter() - t0, value


run(5, 0, 3)
n, seconds, loss = run(a.steps, a.min_seconds, a.max_seconds)
sps = n * B / seconds
flops = 3 * 2 * (D * H + H * 2 * K + K * H + H * D)
print(json.dumps({
    "backend": "pytorch", "version": torch.__version__, "threads": torch.get_num_threads(), "steps": n,
    "seconds": seconds, "msPerStep": 1000 * seconds / n, "samplesPerSec": sps, "gflops": sps * flops / 1e9, "loss": loss,
}))
