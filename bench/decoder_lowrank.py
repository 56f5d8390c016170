"""Experiment (issue 16): the split decoder's prompt side with the per-prompt image tokens kept factored.

    PYTHONPATH=sw:models:hw:. .venv/bin/python -m bench.decoder_lowrank [--image-size 1024] [--batches 1,4,16,64]
        [--rounds 3] [--threads 2] [--out bench/results/decoder_lowrank]

Measured, not shipped: exact, but only 1.07-1.17x faster than ``decoder_prompt.onnx`` on this CPU (figures in
bench/results/decoder_lowrank.md and docs/everything_speed.md), so the bundles keep the split graph. The model is
here, beside its measurement, rather than in the exporter.

After the first image-to-token attention every prompt has its own image tokens (B, hw, C), but they differ from the
shared image tokens ``X`` (``src``, (1, hw, C)) only by low-rank updates and layer norms: an attention update is
``P (V_h W_o,h)`` with P (B, hw, H n) softmax weights over the n prompt tokens of H heads, and a layer norm scales
each token by a scalar, shifts it by a multiple of a constant vector and scales the channels by constants. So the
tokens of every layer have the exact form

    T_i = d_i (X_i * g) + e_i R,        i = 1 .. hw

with d (B, hw, 1) a per-token scale, g (C,) a constant channel scale, e (B, hw, r) coefficients and R (B, r, C) few
rows (r = H n per attention update + 2 per layer norm + 1 per output bias): in ``Tokens``, R is kept as groups
``f_k w_k`` with f_k the per-prompt factor and w_k constant. Every use of T is a product with a constant matrix W
(the attention projections, then contracted with the few prompt tokens) or a layer norm's statistics:

    (T W^T)_i = d_i ((X * g) W^T)_i + e_i (R W^T)

where ``(X * g) W^T`` does not depend on the prompt: it is computed once per image (``PerImage``: recorded by
running this model once, then made by the image side graph and read here as inputs), and ``R W^T`` is (r, Ci). The
layer norm's mean and variance of each token follow from per-image sums of ``X * g`` and its products with the
rows' constant factors, plus the (r, r) Gram matrix of R. Per prompt the image tokens are never formed: the largest
per-prompt tensors are (B, hw, r) instead of (B, hw, C), and the products cost hw x r x (H n) instead of hw x C x
(H n). The mask side forms ``T W_1^T`` (the first upscaling product) from the factors for the prompts whose masks
are wanted.

Exact: the same function with the products in another order and the layer norms' statistics expanded (no
approximation); tests/test_decoder_lowrank.py checks it against ``PromptSideModel`` in float64 at 1e-10.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from samfpga.models.export.decoder_split import PromptSideModel, _heads, _recombine, layer0_tokens
from samfpga.models.sam import Sam
from samfpga.models.two_way_transformer import Attention


@dataclass(frozen=True)
class PerImageSpec:
    """One per-image tensor: ``kind`` "proj" -> (src or pos) @ const^T (1, hw, K); "mean" -> mean over channels of
    src * const (1, hw, 1); "ssq" -> sum over channels of (src * const - mean)^2 (1, hw, 1)."""

    source: str  # "x" (the shared image tokens) or "pos" (the dense positional encoding)
    kind: str
    const: torch.Tensor  # (K, C) for "proj", (C,) for "mean"/"ssq"


def per_image_tensor(spec: PerImageSpec, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Evaluate one spec on x, pos (1, hw, C)."""
    src = x if spec.source == "x" else pos
    if spec.kind == "proj":
        return src @ spec.const.transpose(0, 1)
    xg = src * spec.const
    mean = xg.mean(dim=-1, keepdim=True)
    if spec.kind == "mean":
        return mean
    return ((xg - mean) ** 2).sum(dim=-1, keepdim=True)


class PerImage:
    """The per-image products the prompt side asks for, in the order it asks.

    Record mode (``x`` and ``pos`` given): each request is computed and its spec appended to ``specs``. Replay mode
    (``inputs`` given): each request returns the next input tensor, so the prompt-side graph reads what the image
    side computed from the same specs.
    """

    def __init__(self, x: torch.Tensor | None = None, pos: torch.Tensor | None = None,
                 inputs: tuple[torch.Tensor, ...] | None = None) -> None:
        self.x, self.pos, self.inputs = x, pos, inputs
        self.specs: list[PerImageSpec] = []
        self.used = 0

    def _get(self, spec: PerImageSpec) -> torch.Tensor:
        if self.inputs is not None:
            if self.used >= len(self.inputs):
                raise ValueError(f"the prompt side asked for per-image tensor {self.used}, the image side made "
                                 f"{len(self.inputs)}")
            out = self.inputs[self.used]
            self.used += 1
            return out
        self.specs.append(spec)
        return per_image_tensor(spec, self.x, self.pos)

    def proj(self, source: str, g: torch.Tensor | None, w: torch.Tensor) -> torch.Tensor:
        """(source * g) @ w^T: w (K, C) -> (1, hw, K)."""
        const = w if g is None else w * g
        return self._get(PerImageSpec(source, "proj", const.detach().clone()))

    def mean(self, g: torch.Tensor | None, channels: int) -> torch.Tensor:
        const = torch.ones(channels) if g is None else g
        return self._get(PerImageSpec("x", "mean", const.detach().clone()))

    def ssq(self, g: torch.Tensor | None, channels: int) -> torch.Tensor:
        const = torch.ones(channels) if g is None else g
        return self._get(PerImageSpec("x", "ssq", const.detach().clone()))


@dataclass
class Group:
    """Rows ``R_k`` (B, H n, C) of the low-rank part, kept as per-prompt f (B, H, n, dk) times constant w (H, dk, C)
    (f None: the rows are w itself, H = 1), with their coefficients e (B, hw, H n)."""

    e: torch.Tensor
    f: torch.Tensor | None
    w: torch.Tensor

    def rows(self, batch: int) -> torch.Tensor:
        """R_k (B, H n, C)."""
        if self.f is None:
            return self.w.reshape(1, -1, self.w.shape[-1]).expand(batch, -1, -1)
        b, h, n, _ = self.f.shape
        return (self.f @ self.w).reshape(b, h * n, -1)

    def times(self, wt: torch.Tensor, batch: int) -> torch.Tensor:
        """R_k @ wt for a constant wt (C, K) -> (B, H n, K), the constant product w @ wt formed first."""
        ww = self.w @ wt  # (H, dk, K): a constant of the graph
        if self.f is None:
            return ww.reshape(1, -1, wt.shape[-1]).expand(batch, -1, -1)
        b, h, n, _ = self.f.shape
        return (self.f @ ww).reshape(b, h * n, -1)

    def mixed(self, pre: PerImage, g: torch.Tensor | None) -> torch.Tensor:
        """sum_j e_j ((X * g) . R_k,j) for every token: (B, hw, 1), from the per-image (X * g) w^T (one product
        with the heads' factors laid out block-diagonally, so no per-head transposes of (hw, .) tensors)."""
        h, dk, c = self.w.shape
        xw = pre.proj("x", g, self.w.reshape(h * dk, c))  # (1, hw, H dk)
        if self.f is None:
            return (self.e * xw).sum(dim=-1, keepdim=True)
        b, _, n, _ = self.f.shape
        eye = torch.eye(h, dtype=self.f.dtype).reshape(1, h, 1, h, 1)
        fbd = (self.f.transpose(2, 3).unsqueeze(3) * eye).reshape(b, h * dk, h * n)  # blockdiag(f_h^T)
        return ((xw @ fbd) * self.e).sum(dim=-1, keepdim=True)


@dataclass
class Tokens:
    """Per-prompt image tokens T = d (X * g) + sum_k e_k R_k + c (see the module docstring); d None means 1,
    g None means 1, c (C,) is a constant row every token has with coefficient one (biases, layer-norm shifts)."""

    batch: int
    channels: int
    d: torch.Tensor | None = None
    g: torch.Tensor | None = None
    groups: list[Group] = field(default_factory=list)
    c: torch.Tensor | None = None
    _e: torch.Tensor | None = None

    def coefficients(self) -> torch.Tensor:
        """E (B, hw, r): every group's coefficients side by side (formed once)."""
        if self._e is None:
            self._e = torch.cat([grp.e for grp in self.groups], dim=-1)
        return self._e

    def rows(self) -> torch.Tensor:
        """R (B, r, C)."""
        return torch.cat([grp.rows(self.batch) for grp in self.groups], dim=1)

    def constant(self) -> torch.Tensor:
        return torch.zeros(self.channels) if self.c is None else self.c

    def add_attention(self, p: torch.Tensor, v: torch.Tensor, out_proj: nn.Linear) -> Tokens:
        """T + out_proj(recombine(P_h v_h)): p (B, hw, H n) softmax weights, v (B, H, n, d) value heads."""
        h, d = v.shape[1], v.shape[3]
        c = out_proj.out_features
        w = out_proj.weight.reshape(c, h, d).permute(1, 2, 0)  # (H, d, C)
        return Tokens(self.batch, c, self.d, self.g, [*self.groups, Group(p, v, w)], self.constant() + out_proj.bias)

    def layer_norm(self, norm: nn.LayerNorm, pre: PerImage) -> Tokens:
        """LayerNorm over the channels of every token, in the factored form (statistics from per-image sums and
        the rows' Gram matrix; see the module docstring)."""
        c = self.channels
        b = self.batch
        mx = pre.mean(self.g, c)  # (1, hw, 1) mean of X * g
        sx = pre.ssq(self.g, c)  # (1, hw, 1) sum of (X * g - mean)^2
        const = self.constant()
        cc = const - const.mean()
        e = self.coefficients()  # (B, hw, r)
        r = self.rows()  # (B, r, C)
        rbar = r.mean(dim=-1)  # (B, r)
        rc = r - rbar.unsqueeze(-1)
        # (X * g - mean) . (R - rbar) = (X * g) . R - C mean rbar, since the centred rows sum to zero
        mixed = sum(grp.mixed(pre, self.g) for grp in self.groups) - c * mx * (e @ rbar.unsqueeze(-1))
        xc = pre.proj("x", self.g, cc.reshape(1, c))  # (1, hw, 1): (X * g) . (c - cbar)
        gram = rc @ rc.transpose(1, 2)  # (B, r, r)
        # |E Rc + cc|^2 = E gram E^T + 2 E (Rc cc) + |cc|^2, the last two folded into one product and a constant
        rcc = (rc @ cc.reshape(c, 1)).transpose(1, 2)  # (B, 1, r)
        low = ((e @ gram + 2.0 * rcc) * e).sum(dim=-1, keepdim=True) + (cc * cc).sum()
        mu_e = e @ rbar.unsqueeze(-1) + const.mean()  # (B, hw, 1)
        if self.d is None:
            mu = mx + mu_e
            ssq = sx + 2.0 * (mixed + xc) + low
        else:
            mu = self.d * mx + mu_e
            ssq = self.d * self.d * sx + 2.0 * self.d * (mixed + xc) + low
        inv = torch.rsqrt(ssq / c + norm.eps)  # (B, hw, 1)
        gamma = norm.weight
        d = inv if self.d is None else self.d * inv
        g = gamma if self.g is None else self.g * gamma
        groups = [Group(grp.e * inv, grp.f, grp.w * gamma) for grp in self.groups]
        # the constant row and the mean subtraction become rows (const gamma, gamma) with coefficients (inv, -mu inv)
        groups.append(Group(torch.cat([inv, -mu * inv], dim=-1), None, torch.stack([const * gamma, gamma]).reshape(1, 2, c)))
        return Tokens(b, c, d, g, groups, norm.bias)

    def project(self, lin: nn.Linear, pre: PerImage, with_pos: bool) -> Projection:
        """The factored ``lin(T)`` (or ``lin(T + pos)``) for contraction with prompt tokens."""
        wt = lin.weight.transpose(0, 1)  # (C, Ci)
        base = pre.proj("x", self.g, lin.weight)  # (1, hw, Ci)
        pos = pre.proj("pos", None, lin.weight) if with_pos else None
        gmat = torch.cat([grp.times(wt, self.batch) for grp in self.groups], dim=1)  # (B, r, Ci)
        return Projection(self.d, base, self.coefficients(), gmat, pos, lin(self.constant()))


@dataclass
class Projection:
    """lin(T) (+ lin(pos)) = d base + E G + pos + bias with base, pos (1, hw, Ci), E (B, hw, r), G (B, r, Ci)."""

    d: torch.Tensor | None
    base: torch.Tensor
    e: torch.Tensor
    gmat: torch.Tensor
    pos: torch.Tensor | None
    bias: torch.Tensor

    def scores_tokens_first(self, q: torch.Tensor) -> torch.Tensor:
        """q (B, H, n, dh) . lin(T)_h for every token -> (B, H, n, hw) (token-to-image attention scores)."""
        b, h, n, dh = q.shape
        hw = self.base.shape[1]
        out = q @ _heads(self.base, h).transpose(2, 3)  # (B, H, n, hw)
        if self.d is not None:
            out = out * self.d.reshape(b, 1, 1, hw)
        gq = _heads(self.gmat, h) @ q.transpose(2, 3)  # (B, H, r, n)
        gq = gq.permute(0, 1, 3, 2).reshape(b, h * n, -1)  # (B, H n, r)
        out = out + (gq @ self.e.transpose(1, 2)).reshape(b, h, n, hw)
        if self.pos is not None:
            out = out + q @ _heads(self.pos, h).transpose(2, 3)
        return out + q @ self.bias.reshape(h, dh, 1)

    def scores_image_first(self, k: torch.Tensor) -> torch.Tensor:
        """lin(T)_h for every token . k (B, H, n, dh) -> (B, hw, H, n) (image-to-token attention scores)."""
        b, h, n, dh = k.shape
        hw = self.base.shape[1]
        out = (_heads(self.base, h) @ k.transpose(2, 3)).transpose(1, 2)  # (B, hw, H, n)
        if self.d is not None:
            out = out * self.d.reshape(b, hw, 1, 1)
        if self.pos is not None:
            out = out + (_heads(self.pos, h) @ k.transpose(2, 3)).transpose(1, 2)
        gk = (_heads(self.gmat, h) @ k.transpose(2, 3)).permute(0, 2, 1, 3).reshape(b, -1, h * n)  # (B, r, H n)
        out = out + (self.e @ gk).reshape(b, hw, h, n)
        return out + (k @ self.bias.reshape(h, dh, 1)).reshape(b, 1, h, n)

    def weighted(self, p: torch.Tensor) -> torch.Tensor:
        """sum over tokens of p (B, H, n, hw) times lin(T)_h -> (B, H, n, dh); rows of p sum to one."""
        b, h, n, hw = p.shape
        pd = p if self.d is None else p * self.d.reshape(b, 1, 1, hw)
        out = pd @ _heads(self.base, h)  # (B, H, n, dh)
        pe = (p.reshape(b, h * n, hw) @ self.e).reshape(b, h, n, -1)  # (B, H, n, r)
        out = out + pe @ _heads(self.gmat, h)
        if self.pos is not None:
            out = out + p @ _heads(self.pos, h)
        return out + self.bias.reshape(1, h, 1, -1)


def _tokens_to_image(attn: Attention, queries: torch.Tensor, tokens: Tokens, pre: PerImage) -> torch.Tensor:
    """attn(q=queries, k=T + pos, v=T): queries (B, n, C) -> (B, n, C)."""
    q = _heads(attn.q_proj(queries), attn.num_heads)
    scores = tokens.project(attn.k_proj, pre, with_pos=True).scores_tokens_first(q)
    p = torch.softmax(scores / math.sqrt(q.shape[-1]), dim=-1)
    return attn.out_proj(_recombine(tokens.project(attn.v_proj, pre, with_pos=False).weighted(p)))


def _image_to_tokens(attn: Attention, tokens: Tokens, keys: torch.Tensor, values: torch.Tensor,
                     pre: PerImage) -> Tokens:
    """T + attn(q=T + pos, k=keys, v=values) with keys and values (B, n, C) prompt tokens."""
    h = attn.num_heads
    k = _heads(attn.k_proj(keys), h)
    scores = tokens.project(attn.q_proj, pre, with_pos=True).scores_image_first(k)  # (B, hw, H, n)
    b, hw = scores.shape[0], scores.shape[1]
    p = torch.softmax(scores / math.sqrt(k.shape[-1]), dim=-1).reshape(b, hw, -1)
    return tokens.add_attention(p, _heads(attn.v_proj(values), h), attn.out_proj)


class LowRankPromptSideModel(nn.Module):
    """Prompt side with factored image tokens: l0_k, l0_v, l0_q (1, hw, Ci), the per-image tensors of
    ``per_image_specs`` (in order), point_coords (B, N, 2), point_labels (B, N) -> iou_predictions (B, T),
    hyper_in (B, T, C/8), tok_d (B, hw, 1), tok_e (B, hw, r), tok_r (B, r, C) (the final image tokens
    ``tok_d * (src * g) + tok_e @ tok_r``, g = ``final_scale``).

    ``forward`` takes the per-image tensors after the point inputs (``*per_image``), so the export lists them by
    name; ``record`` runs the model once on an embedding to learn which it needs.
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.split = PromptSideModel(sam)  # layer 0 and the prompt embedding, shared with the split graph
        self.decoder = sam.mask_decoder
        self.channels = sam.mask_decoder.transformer_dim
        self.specs: list[PerImageSpec] | None = None
        self.final_scale: torch.Tensor | None = None

    def record(self, src: torch.Tensor, pos: torch.Tensor, l0: tuple[torch.Tensor, ...],
               point_coords: torch.Tensor, point_labels: torch.Tensor) -> list[PerImageSpec]:
        """Run once in record mode (src, pos (1, hw, C)); sets and returns ``specs``."""
        pre = PerImage(src, pos)
        with torch.no_grad():
            self._run(pre, *l0, point_coords, point_labels)
        self.specs = pre.specs
        return self.specs

    def forward(self, l0_k: torch.Tensor, l0_v: torch.Tensor, l0_q: torch.Tensor, point_coords: torch.Tensor,
                point_labels: torch.Tensor, *per_image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.specs is None or len(per_image) != len(self.specs):
            raise ValueError(f"expected {0 if self.specs is None else len(self.specs)} per-image tensors after "
                             f"the point inputs (call record first), got {len(per_image)}")
        return self._run(PerImage(inputs=per_image), l0_k, l0_v, l0_q, point_coords, point_labels)

    def _run(self, pre: PerImage, l0_k: torch.Tensor, l0_v: torch.Tensor, l0_q: torch.Tensor,
             point_coords: torch.Tensor, point_labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        md = self.decoder
        tf = md.transformer
        sparse = self.split.prompts._embed_points(point_coords, point_labels)
        b = sparse.shape[0]
        output_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)
        pe = torch.cat((output_tokens.unsqueeze(0).expand(b, -1, -1), sparse), dim=1)  # (B, n, C)
        tokens = Tokens(b, self.channels)
        queries = pe
        for i, layer in enumerate(tf.layers):
            if i == 0:
                queries, tokens = self._layer0(layer, queries, pe, tokens, l0_k, l0_v, l0_q, pre)
            else:
                queries = layer.norm1(queries + layer.self_attn(q=queries + pe, k=queries + pe, v=queries))
                queries = layer.norm2(queries + _tokens_to_image(layer.cross_attn_token_to_image, queries + pe,
                                                                 tokens, pre))
                queries = layer.norm3(queries + layer.mlp(queries))
                tokens = _image_to_tokens(layer.cross_attn_image_to_token, tokens, queries + pe, queries, pre)
            tokens = tokens.layer_norm(layer.norm4, pre)
        queries = tf.norm_final_attn(queries + _tokens_to_image(tf.final_attn_token_to_image, queries + pe, tokens,
                                                                pre))
        iou = md.iou_prediction_head(queries[:, 0, :])
        hyper_in = torch.stack([mlp(queries[:, 1 + i, :]) for i, mlp in enumerate(md.output_hypernetworks_mlps)],
                               dim=1)
        self.final_scale = tokens.g.detach().clone()
        d = tokens.d if tokens.d is not None else torch.ones_like(tokens.groups[0].e[..., :1])
        # the constant row as one more row, with a ones column
        e = torch.cat([tokens.coefficients(), torch.ones_like(d)], dim=-1)
        r = torch.cat([tokens.rows(), tokens.constant().reshape(1, 1, -1).expand(b, -1, -1)], dim=1)
        return iou, hyper_in, d, e, r

    @staticmethod
    def _layer0(layer: nn.Module, queries: torch.Tensor, pe: torch.Tensor, tokens: Tokens, l0_k: torch.Tensor,
                l0_v: torch.Tensor, l0_q: torch.Tensor, pre: PerImage) -> tuple[torch.Tensor, Tokens]:
        """The first layer with the image side's projections given (``decoder_split.layer0_tokens``); its
        image-token update factored."""
        queries, scores = layer0_tokens(layer, queries, pe, l0_k, l0_v, l0_q)
        b, hw = scores.shape[0], scores.shape[1]
        p = torch.softmax(scores, dim=-1).reshape(b, hw, -1)
        i2t = layer.cross_attn_image_to_token
        return queries, tokens.add_attention(p, _heads(i2t.v_proj(queries), i2t.num_heads), i2t.out_proj)


def export_pair(sam: Sam, out_dir, batch: int = 2) -> tuple[dict, dict, list[str], torch.Tensor]:
    """Export ``decoder_prompt`` (the split graph) and the factored prompt side to ``out_dir``; returns the feeds
    of each (without the point inputs), the factored graph's per-image input names and the final channel scale."""
    from pathlib import Path

    from samfpga.models.export.bundle import _export
    from samfpga.models.export.decoder_split import ImageSideModel, PromptSideModel, split_example_inputs

    out_dir = Path(out_dir)
    ex = split_example_inputs(sam, batch=batch, points=2)
    coords, labels = ex["point_coords"], ex["point_labels"]
    with torch.no_grad():
        ims = ImageSideModel(sam).eval()
        src, k, v, q = ims(ex["image_embeddings"])
        lr = LowRankPromptSideModel(sam).eval()
        specs = lr.record(src, ims.pos, (k, v, q), coords, labels)
        per_image = [per_image_tensor(s, src, ims.pos) for s in specs]
        names = [f"per_image_{i}" for i in range(len(per_image))]
        dyn = {"point_coords": {0: "batch", 1: "num_points"}, "point_labels": {0: "batch", 1: "num_points"}}
        _export(PromptSideModel(sam).eval(), (src, k, v, q, coords, labels), out_dir / "split.onnx",
                ["src", "l0_k", "l0_v", "l0_q", "point_coords", "point_labels"],
                ["iou_predictions", "hyper_in", "image_tokens"], dyn, 17)
        _export(lr, (k, v, q, coords, labels, *per_image), out_dir / "lowrank.onnx",
                ["l0_k", "l0_v", "l0_q", "point_coords", "point_labels", *names],
                ["iou_predictions", "hyper_in", "tok_d", "tok_e", "tok_r"], dyn, 17)
    l0 = {"l0_k": k.numpy(), "l0_v": v.numpy(), "l0_q": q.numpy()}
    split_feeds = {"src": src.numpy(), **l0}
    lowrank_feeds = {**l0, **{n: t.numpy() for n, t in zip(names, per_image)}}
    return split_feeds, lowrank_feeds, names, src * lr.final_scale


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import os
    import platform
    import sys
    import tempfile
    import time
    from pathlib import Path

    import numpy as np

    from samfpga.backends.ort_session import make_session
    from samfpga.models import build_sam

    root = Path(__file__).resolve().parents[1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--image-size", type=int, default=1024)
    p.add_argument("--batches", default="1,4,16,64")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=root / "bench" / "results" / "decoder_lowrank")
    args = p.parse_args(argv)

    torch.manual_seed(0)
    sam = build_sam("vit_t", image_size=args.image_size).eval()  # seeded, as bench.everything_breakdown's vit_t
    size = args.image_size
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        split_feeds, lowrank_feeds, _, base = export_pair(sam, tmp)
        base = base.numpy()
        split = make_session(Path(tmp) / "split.onnx", args.threads)
        lowrank = make_session(Path(tmp) / "lowrank.onnx", args.threads)
        for b in [int(x) for x in args.batches.split(",")]:
            points = {"point_coords": rng.uniform(0, size, (b, 2, 2)).astype(np.float32),
                      "point_labels": np.tile(np.array([[1.0, -1.0]], np.float32), (b, 1))}
            fs, fl = {**split_feeds, **points}, {**lowrank_feeds, **points}
            ref, got = split.run(None, fs), lowrank.run(None, fl)
            tokens = got[2] * base + got[3] @ got[4]  # the factors multiplied out
            err = {name: float(np.abs(a - g).max() / max(1.0, float(np.abs(a).max())))
                   for name, a, g in zip(("iou_predictions", "hyper_in", "image_tokens"), ref, (*got[:2], tokens))}
            ms = {"split": [], "lowrank": []}
            calls = max(1, 64 // b)
            for _ in range(args.rounds):  # interleaved, fastest round kept
                for name, sess, feeds in (("split", split, fs), ("lowrank", lowrank, fl)):
                    t0 = time.perf_counter()
                    for _ in range(calls):
                        sess.run(None, feeds)
                    ms[name].append((time.perf_counter() - t0) / (calls * b) * 1e3)
            row = {"batch": b, "split_ms": min(ms["split"]), "lowrank_ms": min(ms["lowrank"]),
                   "speedup": min(ms["split"]) / min(ms["lowrank"]), "rel_err": err, "rank": int(got[3].shape[-1])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    meta = {"command": "python -m bench.decoder_lowrank " + " ".join(argv if argv is not None else sys.argv[1:]),
            "machine": f"{platform.machine()} {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}",
            "model": f"vit_t {size}², seeded", "threads": args.threads, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    lines = ["# Factored image tokens vs the split decoder's prompt side (issue 16; measured, not shipped)", "",
             f"`{meta['command']}`  ", f"{meta['machine']}; {meta['model']}; {args.threads} threads; fastest of "
             f"{args.rounds} interleaved rounds; the factored graph's rank r = {rows[0]['rank']}", "",
             "| batch | split ms/prompt | factored ms/prompt | speedup | max rel. error (iou, hyper_in, tokens) |",
             "|---|---|---|---|---|"]
    for r in rows:
        e = r["rel_err"]
        lines.append(f"| {r['batch']} | {r['split_ms']:.2f} | {r['lowrank_ms']:.2f} | {r['speedup']:.2f}x | "
                     f"{e['iou_predictions']:.1e}, {e['hyper_in']:.1e}, {e['image_tokens']:.1e} |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(args.out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
