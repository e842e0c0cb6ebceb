"""PyTorch's torch.optim (SGD, AdamW) and Lion's published update, run in float64 on the quadratic loss of
test/train/optimizers.test.ts, for the optimizer tests to compare with tunelab's compiled step.

Reads a JSON list of cases on stdin; for each case and step it prints the parameters after the step and the
gradient norm before clipping. Per micro-batch the loss is sum(coef * p + 0.5 * quad * p^2) over its rows; the
gradients of all micro-batches are summed and divided by their total row count, then clipped and applied.
"""
import json
import sys

import torch


class Lion(torch.optim.Optimizer):
    """Lion (Chen et al. 2023): c = b1*m + (1-b1)*g; p <- p - lr*(sign(c) + wd*p); m <- b2*m + (1-b2)*g."""

    def __init__(self, params, lr, betas, weight_decay):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p)
                m = state["exp_avg"]
                c = b1 * m + (1 - b1) * p.grad
                p.sub_(group["lr"] * (torch.sign(c) + group["weight_decay"] * p))
                m.mul_(b2).add_((1 - b2) * p.grad)


def optimizer(spec, params, lr):
    name = spec["name"]
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=spec.get("momentum", 0), weight_decay=spec.get("weightDecay", 0))
    if name == "adamw":
        betas = (spec.get("beta1", 0.9), spec.get("beta2", 0.999))
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=spec.get("eps", 1e-8), weight_decay=spec.get("weightDecay", 0))
    if name == "lion":
        return Lion(params, lr=lr, betas=(spec.get("beta1", 0.9), spec.get("beta2", 0.99)), weight_decay=spec.get("weightDecay", 0))
    raise ValueError(name)


def run(case):
    names = list(case["shapes"])
    params = {n: torch.tensor(case["init"][n], dtype=torch.float64).reshape(case["shapes"][n]).requires_grad_() for n in names}
    opt = optimizer(case["optim"], [params[n] for n in names], case["steps"][0]["lr"])
    out = []
    for step in case["steps"]:
        opt.zero_grad()
        total = 0
        for micro in step["micro"]:
            rows = micro["rows"]
            total += rows
            loss = 0
            for n in names:
                shape = [rows] + case["shapes"][n]
                coef = torch.tensor(micro["coef"][n], dtype=torch.float64).reshape(shape)
                quad = torch.tensor(micro["quad"][n], dtype=torch.float64).reshape(shape)
                loss = loss + (coef * params[n] + 0.5 * quad * params[n] ** 2).sum()
            loss.backward()
        for n in names:
            params[n].grad /= total
        grads = [params[n].grad for n in names]
        if case["maxGradNorm"] > 0:
            norm = torch.nn.utils.clip_grad_norm_([params[n] for n in names], case["maxGradNorm"])
        else:
            norm = torch.norm(torch.stack([torch.norm(g) for g in grads]))
        for group in opt.param_groups:
            group["lr"] = step["lr"]
        opt.step()
        out.append({"gradNorm": float(norm), "params": {n: params[n].detach().flatten().tolist() for n in names}})
    return out


print(json.dumps([run(case) for case in json.load(sys.stdin)]))
