"""PyTorch peers for benchmarks/pergrad.py: exact torch replicas of datadiet's small CNN and
CIFAR ResNet-18 loaded with a Flax model's weights and BatchNorm statistics, and the PyTorch
per-sample-norm methods (torch.func vmap, Opacus GradSampleModule hooks, Opacus fast gradient
clipping and ghost clipping). Needs `pip install -e ".[bench]"` (torch CPU + opacus).

BatchNorm: the torch batch gradient and torch.func use nn.BatchNorm2d/1d in eval mode with our
running statistics. Opacus refuses modules with buffers (and its hooks only fire in train mode),
so its replica replaces every BatchNorm by `FrozenBatchNorm`: the same eval-mode function,
(x - mean) / sqrt(var + eps) * weight + bias, with mean and var as plain constant tensors (not
buffers) and weight/bias trainable; Opacus computes its per-sample gradients with its functorch
fallback. The numbers are the same function of the same parameters.

`python benchmarks/torch_peers.py --serve` is how benchmarks/pergrad.py runs them: a process of
its own (one process per framework), driven over stdin / stdout by pickled requests (`serve`).
"""
import os
import pickle
import sys

import numpy as np
import torch
import torch.nn.functional as F
from timing import timed_call
from torch import nn


class FrozenBatchNorm(nn.Module):
    """Eval-mode BatchNorm over dim 1 with constant (non-buffer) statistics."""

    def __init__(self, bn):
        super().__init__()
        self.weight = nn.Parameter(bn.weight.detach().clone())
        self.bias = nn.Parameter(bn.bias.detach().clone())
        self.mean = bn.running_mean.detach().clone()
        self.invstd = torch.rsqrt(bn.running_var.detach() + bn.eps)

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return ((x - self.mean.view(shape)) * self.invstd.view(shape) * self.weight.view(shape)
                + self.bias.view(shape))


def _conv(cin, cout, k, stride):
    return nn.Conv2d(cin, cout, k, stride, padding=k // 2, bias=False)


class SmallCNN(nn.Module):
    """datadiet.models.small.SmallCNN; flatten in NHWC order like the Flax model."""

    def __init__(self, shape, width=16, hidden=128, classes=10):
        super().__init__()
        h, w, c = shape
        self.conv1, self.bn1 = _conv(c, width, 3, 1), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = _conv(width, 2 * width, 3, 1), nn.BatchNorm2d(2 * width)
        self.pool1 = min(h, w) >= 2
        h, w = (h // 2, w // 2) if self.pool1 else (h, w)
        self.pool2 = min(h, w) >= 2
        h, w = (h // 2, w // 2) if self.pool2 else (h, w)
        self.dense = nn.Linear(h * w * 2 * width, hidden, bias=False)
        self.dense_bn = nn.BatchNorm1d(hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.max_pool2d(x, 2) if self.pool1 else x
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.max_pool2d(x, 2) if self.pool2 else x
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        return self.head(F.relu(self.dense_bn(self.dense(x))))


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1, self.bn1 = _conv(cin, planes, 3, stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv(planes, planes, 3, 1), nn.BatchNorm2d(planes)
        self.shortcut_conv = self.shortcut_bn = None
        if stride != 1 or cin != planes:
            self.shortcut_conv, self.shortcut_bn = _conv(cin, planes, 1, stride), nn.BatchNorm2d(planes)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.shortcut_conv is None else self.shortcut_bn(self.shortcut_conv(x))
        return F.relu(y + s)


class ResNet18(nn.Module):
    def __init__(self, shape, width=64, classes=10):
        super().__init__()
        self.stem_conv, self.stem_bn = _conv(shape[-1], width, 3, 1), nn.BatchNorm2d(width)
        blocks, cin = [], width
        for stage in range(4):
            for i in range(2):
                blocks.append(BasicBlock(cin, width * 2**stage, 2 if stage and not i else 1))
                cin = width * 2**stage
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.stem_bn(self.stem_conv(x)))
        for b in self.blocks:
            x = b(x)
        return self.head(x.mean(dim=(2, 3)))


REPLICAS = {"small_cnn": SmallCNN, "resnet18": ResNet18}


def load_flax(module, flat_params, flat_stats):
    """Copy weights from {path tuple: array} dicts (nnx.to_flat_state of params / batch_stats)."""
    def get(d, path):
        return torch.from_numpy(np.array(d[path], dtype=np.float32))
    with torch.no_grad():
        for name, m in module.named_modules():
            path = tuple(int(p) if p.isdigit() else p for p in name.split(".")) if name else ()
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(get(flat_params, path + ("kernel",)).permute(3, 2, 0, 1))
            elif isinstance(m, nn.Linear):
                m.weight.copy_(get(flat_params, path + ("kernel",)).T)
                if m.bias is not None:
                    m.bias.copy_(get(flat_params, path + ("bias",)))
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(get(flat_params, path + ("scale",)))
                m.bias.copy_(get(flat_params, path + ("bias",)))
                m.running_mean.copy_(get(flat_stats, path + ("mean",)))
                m.running_var.copy_(get(flat_stats, path + ("var",)))
                m.eps = 1e-5
    return module.eval()


def freeze_batchnorm(module):
    """Replace every BatchNorm (in place) by FrozenBatchNorm: Opacus refuses buffers."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            setattr(module, name, FrozenBatchNorm(child))
        else:
            freeze_batchnorm(child)
    return module


def make_peers(name, shape, flat_params, flat_stats, x_nhwc, y):
    """{method: fn() -> per-example norms (np) or the batch gradient}, torch side."""
    from opacus import GradSampleModule  # heavy optional dependency
    from opacus.grad_sample import GradSampleModuleFastGradientClipping

    def build():
        return load_flax(REPLICAS[name](shape), flat_params, flat_stats)

    x = torch.from_numpy(np.array(x_nhwc, dtype=np.float32)).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(np.array(y, dtype=np.int64))
    model = build()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def batch_grad():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        return [p.grad for p in model.parameters()]

    def one_loss(p, x1, y1):
        out = torch.func.functional_call(model, (p, buffers), (x1[None],))
        return F.cross_entropy(out, y1[None])

    vgrad = torch.func.vmap(torch.func.grad(one_loss), in_dims=(None, 0, 0))

    def func_vmap():
        g = vgrad(params, x, y)
        return torch.sqrt(sum(v.pow(2).flatten(1).sum(1) for v in g.values()))

    hooks = GradSampleModule(freeze_batchnorm(build()).train(), loss_reduction="sum")

    def opacus_hooks():
        hooks.zero_grad(set_to_none=True)
        F.cross_entropy(hooks(x), y, reduction="sum").backward()
        return torch.sqrt(sum(p.grad_sample.pow(2).flatten(1).sum(1)
                              for p in hooks.parameters() if p.requires_grad))

    def clipping(ghost):
        gsm = GradSampleModuleFastGradientClipping(
            freeze_batchnorm(build()).train(), loss_reduction="sum", use_ghost_clipping=ghost)

        def run():
            gsm.zero_grad(set_to_none=True)
            F.cross_entropy(gsm(x), y, reduction="sum").backward()
            return gsm.get_norm_sample()
        return run

    return {"torch_batch_grad": batch_grad, "torch_func_vmap": func_vmap,
            "opacus_hooks": opacus_hooks, "opacus_fast_clipping": clipping(False),
            "opacus_ghost_clipping": clipping(True)}


def serve(out):
    """Answer pickled requests from stdin on `out` until EOF: first ("setup", name, shape,
    flat_params, flat_stats, x, y, threads) -> the peers' names; then ("run", method) -> (norms as
    numpy, or None for the batch gradient; seconds of the call; minor page faults during it)."""
    peers = None
    while True:
        try:
            request = pickle.load(sys.stdin.buffer)
        except EOFError:
            return
        if request[0] == "setup":
            name, shape, flat_params, flat_stats, x, y, threads = request[1:]
            if threads is not None:
                torch.set_num_threads(threads)
                torch.set_num_interop_threads(1)
            peers = make_peers(name, shape, flat_params, flat_stats, x, y)
            reply = list(peers)
        else:
            result, seconds, faults = timed_call(peers[request[1]])
            norms = None if request[1] == "torch_batch_grad" else result.detach().numpy()
            reply = (norms, seconds, faults)
        pickle.dump(reply, out)
        out.flush()


if __name__ == "__main__":
    if sys.argv[1:] != ["--serve"]:
        sys.exit("usage: python benchmarks/torch_peers.py --serve (run by benchmarks/pergrad.py)")
    # replies go to the original stdout; anything a library prints goes to stderr instead
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(replies)
