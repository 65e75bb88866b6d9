#!/usr/bin/python3
"""Reference training trajectories of a small dense head with torch.optim.SGD
and CrossEntropyLoss(label_smoothing=...), for sgd_test.go.

Head: Dense(h1, relu) -> ... -> Dense(classes) -> softmax, kernels
Glorot-uniform and biases zero (drawn here with numpy and stored), as in
/work/shared/golden/head_ref.py. Each case trains a copy of the same initial
head on the same batches, taken in order without shuffling (batch s holds
rows (s*B) % N ... + B - 1), with

    opt = torch.optim.SGD(params, lr, momentum, nesterov=..., weight_decay=...)

whose learning rate is multiplied by 0.1 before step --lr-drop (as StepLR
does, through param_groups), and the loss

    smoothed = F.cross_entropy(z, y, label_smoothing=eps, reduction="none")
    loss = (w[y] * smoothed).mean()      with class weights w (Keras' rule)
    loss = F.cross_entropy(z, y, label_smoothing=eps)   without

Computed in float64, stored as float32, in sgd_ref.npz:
  x (N,D), y (N,) as float32, init/<param>
  <case>/losses (steps,)  each step's loss before its update
  <case>/<param>          the parameters after all steps
  <case>/sgd_momentum/<param>   torch's momentum_buffer (momentum > 0 only)
  <case>/grad0/<param>    the gradients of the first step
and the settings in sgd_ref.json. Needs Debian's python3-torch and numpy:
    /usr/bin/python3 sgd_ref.py   (in this folder)
"""
import json

import numpy as np
import torch
import torch.nn.functional as F

DIM, HIDDEN, CLASSES, N, BATCH, STEPS, LR_DROP, SEED = 12, [10, 6], 3, 48, 16, 30, 20, 3

CASES = [
    # the PyTorch transfer-learning tutorial's optimizer, at a larger rate
    dict(name="momentum", lr=0.05, momentum=0.9, nesterov=False, weight_decay=0.0, label_smoothing=0.0, class_weight=None),
    dict(name="nesterov_decay_smoothing", lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01, label_smoothing=0.1, class_weight=None),
    dict(name="plain_decay_smoothing_weighted", lr=0.2, momentum=0.0, nesterov=False, weight_decay=0.02, label_smoothing=0.3,
         class_weight=[0.5, 2.0, 1.25]),
]


def main():
    rng = np.random.default_rng(SEED)
    x = np.maximum(rng.standard_normal((N, DIM)), 0).astype(np.float32)
    y = rng.integers(0, CLASSES, N)
    sizes = [DIM] + HIDDEN + [CLASSES]
    init = {}
    for i in range(len(sizes) - 1):
        lim = np.sqrt(6.0 / (sizes[i] + sizes[i + 1]))
        init[f"dense_{i}/kernel"] = rng.uniform(-lim, lim, (sizes[i], sizes[i + 1])).astype(np.float32)
        init[f"dense_{i}/bias"] = np.zeros(sizes[i + 1], np.float32)
    names = list(init)
    out = {"x": x, "y": y.astype(np.float32)}
    out.update({f"init/{k}": v for k, v in init.items()})
    X, Y = torch.tensor(x, dtype=torch.float64), torch.tensor(y)
    layers = len(sizes) - 1
    for c in CASES:
        params = [torch.tensor(init[k], dtype=torch.float64, requires_grad=True) for k in names]
        opt = torch.optim.SGD(params, lr=c["lr"], momentum=c["momentum"], nesterov=c["nesterov"], weight_decay=c["weight_decay"])
        w = None if c["class_weight"] is None else torch.tensor(c["class_weight"], dtype=torch.float64)
        losses = []
        for step in range(STEPS):
            if step == LR_DROP:
                for g in opt.param_groups:
                    g["lr"] *= 0.1
            lo = (step * BATCH) % N
            h = X[lo:lo + BATCH]
            for i in range(layers):
                h = h @ params[2 * i] + params[2 * i + 1]
                if i < layers - 1:
                    h = torch.relu(h)
            yb = Y[lo:lo + BATCH]
            if w is None:
                loss = F.cross_entropy(h, yb, label_smoothing=c["label_smoothing"])
            else:
                loss = (w[yb] * F.cross_entropy(h, yb, label_smoothing=c["label_smoothing"], reduction="none")).mean()
            losses.append(loss.item())
            opt.zero_grad()
            loss.backward()
            if step == 0:
                out.update({f"{c['name']}/grad0/{k}": p.grad.float().numpy().copy() for k, p in zip(names, params)})
            opt.step()
        p = c["name"]
        out[f"{p}/losses"] = np.array(losses, np.float32)
        out.update({f"{p}/{k}": v.detach().float().numpy() for k, v in zip(names, params)})
        if c["momentum"] > 0:
            out.update({f"{p}/sgd_momentum/{k}": opt.state[v]["momentum_buffer"].float().numpy() for k, v in zip(names, params)})
    np.savez("sgd_ref.npz", **out)
    meta = dict(dim=DIM, hidden=HIDDEN, classes=CLASSES, n=N, batch=BATCH, steps=STEPS, lr_drop=LR_DROP, seed=SEED,
                torch=torch.__version__, cases=CASES)
    with open("sgd_ref.json", "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
