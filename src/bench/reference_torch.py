"""PyTorch reference for `npm run bench`: the benchmark's workloads on the CPU.

The same networks, losses, batch sizes, samples and timing rules as src/bench/workload.ts
(warm-up, then steps until both a step count and a minimum time are reached, one loss
read-back at the end). Prints one JSON line per workload in the benchmark's result format.

  vae-mlp     quickstart VAE: MLP 784-400-(2x20) / 20-400-784, Bernoulli, Adam, batch 128
  m2-mnist    M2: classifier, q(z|x,y), p(x|y,z) MLPs of 500 softplus, z 50,
              10 labelled + 90 unlabelled rows (y summed out over 10 classes)
  adgm-mnist  ADGM: q(a|x), q(y|a,x), q(z|a,y,x), p(x|y,z), p(a|x,y,z) MLPs of 500-500 ReLU,
              batch normalisation on every hidden layer, a = z = 100, 100 labelled +
              100 unlabelled rows (y summed out over 10 classes)
  iwae-mnist  IWAE: MLP 784-200-200-(2x50) / 50-200-200-784 tanh, Bernoulli, the k = 50
              importance-weighted bound, batch 100 (5,000 decoder rows)
  iwae-k5000  the same networks' k = 5000 importance-weighted estimate of log p(x), evaluation
              only: one image per pass of 5,000 decoder rows, 10 images per timed call
  gvae-conv   G-VAE: conv 32x32x3 (32-64-128, kernel 4, stride 2), K 128, ISDA class loss, batch 64

Rows are laid out as elbo lays them (M2 and ADGM: the labelled rows, then one block of the
unlabelled rows per class; IWAE: the k draws of an example in consecutive rows), so the
random draws line up with elbo's one for one.

  --spec        print each workload's sizes and parameter shapes (by elbo's names) as JSON;
                needs no torch (test/bench.test.ts compares them with elbo's models)
  --check FILE  recompute one loss elbo computed (src/bench/workload.ts referenceCase):
                elbo's parameters, batch and normal draws in, the loss out as JSON
"""
import argparse
import json
import math
import time

D, C = 784, 10


def mlp_params(net, widths, norm=False):
    """elbo's names and shapes of an MLP's parameters (src/nn/mlp.ts): dense<i>/w [in, out], dense<i>/b [out];
    with batch normalisation (norm) a hidden layer has bn<i>/gamma and bn<i>/beta [out] in place of its bias."""
    out = {}
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        out[f"{net}/dense{i}/w"] = [a, b]
        if norm and i < len(widths) - 2:
            out[f"{net}/bn{i}/gamma"], out[f"{net}/bn{i}/beta"] = [b], [b]
        else:
            out[f"{net}/dense{i}/b"] = [b]
    return out


def gvae_params(channels, kernel, K, img):
    """elbo's names and shapes of the G-VAE's conv encoder, conv decoder (src/nn/conv.ts) and class head."""
    out, flat = {}, 4 * 4 * channels[-1]
    for i, (a, b) in enumerate(zip([img] + channels, channels)):
        out[f"encoder/conv{i}/w"], out[f"encoder/conv{i}/b"] = [kernel, kernel, a, b], [b]
    out["encoder/dense/w"], out["encoder/dense/b"] = [flat, 2 * K], [2 * K]
    out["decoder/dense/w"], out["decoder/dense/b"] = [K, flat], [flat]
    rev = channels[::-1]
    for i, (cin, cout) in enumerate(zip(rev, rev[1:] + [img])):
        out[f"decoder/deconv{i}/w"], out[f"decoder/deconv{i}/b"] = [kernel, kernel, cout, cin], [cout]
    out["head/w"], out["head/b"] = [K, C], [C]
    return out


IWAE_NETS = {"encoder": [D, 200, 200, 2 * 50], "decoder": [50, 200, 200, D]}

# The sizes every twin below is built from; --spec prints them.
SPECS = {
    "vae-mlp": dict(batch=128, labelled=0, k=1, latent=20, act="relu", nets={"encoder": [D, 400, 2 * 20], "decoder": [20, 400, D]}),
    "m2-mnist": dict(batch=100, labelled=10, k=1, latent=50, act="softplus",
                     nets={"classifier": [D, 500, C], "encoder": [D + C, 500, 2 * 50], "decoder": [50 + C, 500, D]}),
    "adgm-mnist": dict(batch=200, labelled=100, k=1, latent=100, aux=100, act="relu", norm=True,
                       nets={"encoder_a": [D, 500, 500, 2 * 100], "classifier": [100 + D, 500, 500, C],
                             "encoder": [D + 100 + C, 500, 500, 2 * 100], "decoder": [100 + C, 500, 500, D],
                             "decoder_a": [D + 100 + C, 500, 500, 2 * 100]}),
    "iwae-mnist": dict(batch=100, labelled=0, k=50, latent=50, act="tanh", nets=IWAE_NETS),
    "iwae-k5000": dict(batch=10, labelled=0, k=5000, latent=50, act="tanh", nets=IWAE_NETS, evaluate=True),
    "gvae-conv": dict(batch=64, labelled=64, k=1, latent=128, channels=[32, 64, 128], kernel=4),
}
for _s in SPECS.values():
    _s["params"] = gvae_params(_s["channels"], _s["kernel"], _s["latent"], 3) if "channels" in _s else \
        {n: s for net, w in _s["nets"].items() for n, s in mlp_params(net, w, _s.get("norm", False)).items()}

p = argparse.ArgumentParser()
p.add_argument("--workloads", default="vae-mlp,m2-mnist,adgm-mnist,iwae-mnist,iwae-k5000,gvae-conv")
p.add_argument("--steps", type=int, default=30)
p.add_argument("--min-seconds", type=float, default=3)
p.add_argument("--max-seconds", type=float, default=10)
p.add_argument("--spec", action="store_true")
p.add_argument("--check")
a = p.parse_args()
if a.spec:
    print(json.dumps(SPECS))
    raise SystemExit(0)

import torch  # noqa: E402 (--spec runs without it)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.manual_seed(0)
ACT = {"relu": nn.ReLU, "softplus": nn.Softplus, "tanh": nn.Tanh}
LOG2PI = math.log(2 * math.pi)


def mlp(widths, act, norm=False):
    """Linear layers; with norm every hidden layer is Linear (no bias) -> BatchNorm1d -> activation, as elbo's
    norm: batch (epsilon 1e-5, running averages moved by 0.1 of the batch's: elbo's momentum 0.9)."""
    layers = []
    for i, (a_, b_) in enumerate(zip(widths, widths[1:])):
        hidden = i < len(widths) - 2
        bn = norm and hidden
        layers += [nn.Linear(a_, b_, bias=not bn)] + ([nn.BatchNorm1d(b_, eps=1e-5, momentum=0.1)] if bn else [])
        layers += [ACT[act]()] if hidden else []
    return nn.Sequential(*layers)


def gaussian_kl(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)


def log_normal(v, mu, logvar):
    return (-0.5 * ((v - mu).pow(2) / logvar.exp() + logvar + LOG2PI)).sum(1)


def split(h, K):
    return h[:, :K], h[:, K:].clamp(-30, 20)


def bce(logits, x):
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none")


def vae_mlp(s, randn):
    K = s["latent"]
    nets = {n: mlp(w, s["act"]) for n, w in s["nets"].items()}

    def loss(x, y):
        mu, logvar = split(nets["encoder"](x), K)
        z = mu + torch.exp(0.5 * logvar) * randn(mu.shape)
        recon = bce(nets["decoder"](z), x).sum(1)
        return (recon + gaussian_kl(mu, logvar)).mean()

    return nets, loss


def m2_mnist(s, randn):
    K, NL = s["latent"], s["labelled"]
    nets = {n: mlp(w, s["act"]) for n, w in s["nets"].items()}
    cls, enc, dec = nets["classifier"], nets["encoder"], nets["decoder"]
    eye = torch.eye(C)

    def loss(x, y):
        B = x.shape[0]
        nu = B - NL
        # one pass: the labelled rows with their labels, then the unlabelled rows once per class
        xr = torch.cat([x[:NL], x[NL:].repeat(C, 1)])
        yr = torch.cat([eye[y], eye.repeat_interleave(nu, 0)])
        mu, logvar = split(enc(torch.cat([xr, yr], 1)), K)
        z = mu + torch.exp(0.5 * logvar) * randn(mu.shape)
        recon = bce(dec(torch.cat([z, yr], 1)), xr).sum(1)
        L = recon + gaussian_kl(mu, logvar) + math.log(C)  # −ELBO(x, y), −log p(y) for uniform p(y)
        logits = cls(x)
        Lu = L[NL:].view(C, nu).t()
        q = F.softmax(logits[NL:], 1)
        U = (q * Lu).sum(1) + (q * F.log_softmax(logits[NL:], 1)).sum(1)
        ce = F.cross_entropy(logits[:NL], y, reduction="none")
        return (L[:NL].sum() + U.sum() + 50 * ce.sum()) / B

    return nets, loss


def adgm_mnist(s, randn):
    K, A, NL = s["latent"], s["aux"], s["labelled"]
    nets = {n: mlp(w, s["act"], s["norm"]) for n, w in s["nets"].items()}
    eye = torch.eye(C)

    def loss(x, y):
        # batch normalisation's statistics over the rows of each call, as elbo's: q(a|x) and
        # q(y|a,x) the B rows, the other three the nl + C*nu class passes
        B = x.shape[0]
        nu = B - NL
        mu_a, logvar_a = split(nets["encoder_a"](x), A)
        a = mu_a + torch.exp(0.5 * logvar_a) * randn(mu_a.shape)
        logqa = log_normal(a, mu_a, logvar_a)
        logits = nets["classifier"](torch.cat([a, x], 1))
        # one pass: the labelled rows, then one block of the unlabelled rows per class
        rows = lambda t: torch.cat([t[:NL], t[NL:].repeat(C, *([1] * (t.dim() - 1)))])  # noqa: E731
        xr, ar, lqr = rows(x), rows(a), rows(logqa)
        yr = torch.cat([eye[y], eye.repeat_interleave(nu, 0)])
        mu, logvar = split(nets["encoder"](torch.cat([xr, ar, yr], 1)), K)
        z = mu + torch.exp(0.5 * logvar) * randn(mu.shape)
        recon = bce(nets["decoder"](torch.cat([z, yr], 1)), xr).sum(1)
        pa_mu, pa_logvar = split(nets["decoder_a"](torch.cat([xr, z, yr], 1)), A)
        # −ELBO(x, y) per pass: recon + KL(z) + log q(a|x) − log p(a|x,y,z) + log C
        L = recon + gaussian_kl(mu, logvar) + lqr - log_normal(ar, pa_mu, pa_logvar) + math.log(C)
        Lu = L[NL:].view(C, nu).t()
        q = F.softmax(logits[NL:], 1)
        U = (q * Lu).sum(1) + (q * F.log_softmax(logits[NL:], 1)).sum(1)
        ce = F.cross_entropy(logits[:NL], y, reduction="none")
        return (L[:NL].sum() + U.sum() + 50 * ce.sum()) / B

    return nets, loss


def iwae_log_weights(nets, K, x, k, randn):
    """log p(x, z_i) − log q(z_i|x) for k draws per row, [B, k]; draw i of row b in row b·k + i."""
    B = x.shape[0]
    mu, logvar = split(nets["encoder"](x), K)
    mu, logvar = mu.repeat_interleave(k, 0), logvar.repeat_interleave(k, 0)
    z = mu + torch.exp(0.5 * logvar) * randn(mu.shape)
    logits = nets["decoder"](z).view(B, k, -1)
    logpx = -bce(logits, x[:, None, :].expand(B, k, x.shape[1])).sum(2)
    zero = torch.zeros(())
    return logpx + (log_normal(z, zero, zero) - log_normal(z, mu, logvar)).view(B, k)


def iwae_mnist(s, randn):
    K, k = s["latent"], s["k"]
    nets = {n: mlp(w, s["act"]) for n, w in s["nets"].items()}

    def loss(x, y):
        return -(torch.logsumexp(iwae_log_weights(nets, K, x, k, randn), 1) - math.log(k)).mean()

    return nets, loss


def iwae_k5000(s, randn):
    K, k = s["latent"], s["k"]
    nets = {n: mlp(w, s["act"]) for n, w in s["nets"].items()}

    @torch.no_grad()
    def estimate(x, y):
        # one image per pass (k rows), as the iwae evaluator runs k = 5000
        total = torch.zeros(())
        for i in range(x.shape[0]):
            total = total + torch.logsumexp(iwae_log_weights(nets, K, x[i:i + 1], k, randn)[0], 0) - math.log(k)
        return total / x.shape[0]

    return nets, estimate


def gvae_conv(s, randn):
    K, ch, kern = s["latent"], s["channels"], s["kernel"]
    enc = nn.Sequential(
        nn.Conv2d(3, ch[0], kern, 2, 1), nn.ReLU(), nn.Conv2d(ch[0], ch[1], kern, 2, 1), nn.ReLU(), nn.Conv2d(ch[1], ch[2], kern, 2, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 4 * ch[2], 2 * K))
    dec_in = nn.Linear(K, 4 * 4 * ch[2])
    dec = nn.Sequential(
        nn.ConvTranspose2d(ch[2], ch[1], kern, 2, 1), nn.ReLU(), nn.ConvTranspose2d(ch[1], ch[0], kern, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(ch[0], 3, kern, 2, 1))
    head = nn.Module()
    head.W = nn.Parameter(torch.randn(K, C) * 0.1)
    head.b = nn.Parameter(torch.zeros(C))

    def loss(x, y):
        W, b = head.W, head.b
        mu, logvar = split(enc(x), K)
        z = mu + torch.exp(0.5 * logvar) * randn(mu.shape)
        xhat = dec(F.relu(dec_in(z)).view(-1, ch[2], 4, 4))
        recon = (x - xhat).pow(2).flatten(1).sum(1)
        s2, wy = logvar.exp(), W.t()[y]
        quad = 0.5 * (s2 @ W.pow(2)) - (s2 * wy) @ W + 0.5 * (s2 * wy.pow(2)).sum(1, keepdim=True)
        lin = mu @ W - (mu * wy).sum(1, keepdim=True)
        isda = torch.logsumexp(quad + lin + b[None] - b[y][:, None], 1)
        return (0.0025 * gaussian_kl(mu, logvar) + recon + 20 * isda).mean()

    return {"encoder": enc, "decoder_in": dec_in, "decoder": dec, "head": head}, loss


WORKLOADS = {"vae-mlp": vae_mlp, "m2-mnist": m2_mnist, "adgm-mnist": adgm_mnist, "iwae-mnist": iwae_mnist,
             "iwae-k5000": iwae_k5000, "gvae-conv": gvae_conv}


def load_mlp(seq, net, values):
    """elbo's dense<i>/w [in, out] and dense<i>/b (or bn<i>/gamma, bn<i>/beta) into the layers of `seq`, in order."""
    linears = [m for m in seq if isinstance(m, nn.Linear)]
    norms = {i: m for i, m in enumerate(m for m in seq if isinstance(m, nn.BatchNorm1d))}
    with torch.no_grad():
        for i, lin in enumerate(linears):
            lin.weight.copy_(values.pop(f"{net}/dense{i}/w").t())
            if lin.bias is not None:
                lin.bias.copy_(values.pop(f"{net}/dense{i}/b"))
            if i in norms:
                norms[i].weight.copy_(values.pop(f"{net}/bn{i}/gamma"))
                norms[i].bias.copy_(values.pop(f"{net}/bn{i}/beta"))


def check(path):
    """Recompute the loss of an elbo reference case (src/bench/workload.ts referenceCase)."""
    import numpy as np
    case = json.load(open(path))
    blob = torch.from_numpy(np.fromfile(case["bin"], dtype=np.float32))
    at = lambda o, shape: blob[o:o + math.prod(shape)].view(*shape)  # noqa: E731
    name = case["workload"]
    if name == "gvae-conv":
        raise SystemExit("gvae-conv has no loss check (its images and filters are laid out differently in PyTorch)")
    s = SPECS[name]
    draws = at(case["draws"]["offset"], [case["draws"]["n"]])
    used = 0

    def randn(shape):
        nonlocal used
        n = math.prod(shape)
        if used + n > draws.numel():
            raise SystemExit(f"{name}: the twin draws more normals than elbo did ({used + n} > {draws.numel()})")
        v = draws[used:used + n].view(*shape)
        used += n
        return v

    nets, loss_fn = WORKLOADS[name](s, randn)
    values = {p["name"]: at(p["offset"], p["shape"]) for p in case["params"]}
    for net, seq in nets.items():
        load_mlp(seq, net, values)
    if values:
        raise SystemExit(f"{name}: elbo parameters the twin has no place for: {sorted(values)}")
    x = at(case["x"]["offset"], case["x"]["shape"])
    y = torch.tensor([v for v in case["y"] if v >= 0], dtype=torch.long) if case["y"] is not None else None
    with torch.no_grad():
        value = float(loss_fn(x, y))
    print(json.dumps({"workload": name, "loss": value, "draws": draws.numel(), "used": used}))


def run(step, steps, min_s, max_s):
    t0 = time.perf_counter()
    n, last = 0, None
    while n < 2 or not ((n >= steps and time.perf_counter() - t0 >= min_s) or time.perf_counter() - t0 >= max_s):
        last = step(n)
        n += 1
    value = float(last)  # the one read-back
    return n, time.perf_counter() - t0, value


if a.check:
    check(a.check)
    raise SystemExit(0)

for name in a.workloads.split(","):
    s = SPECS[name]
    B, NL = s["batch"], s["labelled"]
    nets, loss_fn = WORKLOADS[name](s, lambda shape: torch.randn(shape))
    pool = torch.rand(4, B, 3, 32, 32) if name == "gvae-conv" else torch.rand(4, B, D)
    labels = torch.arange(NL) % C

    if s.get("evaluate"):
        def step(i):
            return loss_fn(pool[i % 4], None)
    else:
        opt = torch.optim.Adam([q for m in nets.values() for q in m.parameters()], lr=1e-3)

        def step(i):
            loss = loss_fn(pool[i % 4], labels)
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
