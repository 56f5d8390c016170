"""The encoder's compute layers with their shapes, read from the model definition (not from tables).

``encoder_layers(cfg)`` builds ``samfpga.models`` TinyViT on torch's meta device (no memory, no arithmetic), runs one
forward pass with hooks on every Conv2d / Linear / MatMul and on every unit module (stem, each block, each patch
merging, neck), and returns one ``Layer`` per multiply-accumulate layer in execution order, each tagged with its unit
(``patch_embed``, ``layers.2.blocks``, ``layers.2.downsample``, ``neck``) and block index.

Shapes are FINN's matrix view: a layer computes ``vectors`` output vectors of ``mh`` values, each a dot product of
``mw`` inputs (conv: mw = C_in/groups * k * k; depthwise conv: one channel per row, FINN's VVAU view with
``mh`` = channels, ``mw`` = k * k; attention matmul: mw = the inner dimension, weights come from the stream).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Layer:
    """One multiply-accumulate layer. MACs = vectors * mw * mh (depthwise: vectors * mw * mh as well: mh channels,
    mw taps). ``weights``: stored parameters (0 for the attention matmuls, whose second operand is streamed);
    ``out_elems``: elements of its output tensor; ``in_width``: image width of its input (line buffers)."""

    name: str
    kind: str  # "conv" | "dwconv" | "linear" | "matmul"
    unit: str
    block: int  # index within the unit's repeated blocks (0 for units without blocks)
    mw: int
    mh: int
    vectors: int
    weights: int
    kernel: int = 1
    in_width: int = 0
    in_channels: int = 0
    out_elems: int = 0

    @property
    def macs(self) -> int:
        return self.vectors * self.mw * self.mh

    @property
    def dynamic(self) -> bool:
        return self.kind == "matmul"

    def shape_key(self) -> tuple:
        """Everything but the name and block: two blocks are identical when their layers' keys are."""
        return (self.kind, self.mw, self.mh, self.vectors, self.weights, self.kernel, self.in_width, self.in_channels)

    def to_dict(self) -> dict:
        return {**asdict(self), "macs": self.macs}


@dataclass(frozen=True)
class Unit:
    """A stage of the encoder: its layers per block (one block for non-repeated units), and the feature map it
    hands on (``out_elems`` elements)."""

    name: str
    blocks: tuple[tuple[Layer, ...], ...]
    out_elems: int
    in_elems: int
    window: int = 0  # attention window side (0: no attention in the unit)
    grid: int = 0  # side of the unit's token grid (its feature map)
    channels: int = 0  # channels of the feature map it hands on

    @property
    def repeats(self) -> int:
        return len(self.blocks)

    @property
    def identical(self) -> bool:
        """All blocks have the same layer shapes (one hardware body can run them in turn)."""
        keys = [tuple(x.shape_key() for x in b) for b in self.blocks]
        return all(k == keys[0] for k in keys)

    @property
    def layers(self) -> list[Layer]:
        return [x for b in self.blocks for x in b]

    @property
    def macs(self) -> int:
        return sum(x.macs for x in self.layers)

    @property
    def weights(self) -> int:
        return sum(x.weights for x in self.layers)


def hardware_variant(variant: str, image_size: int, window_sizes: tuple[int, ...] | None, activation: str | None):
    """The TinyViTConfig of ``variant`` at ``image_size`` with the hardware variant's windows and activation (None:
    the variant's own), as the FINN flow builds it."""
    from samfpga.models.build import variant_config

    over = {}
    if window_sizes is not None:
        over["window_sizes"] = list(window_sizes)
    if activation is not None:
        over["activation"] = activation
    return variant_config(variant, image_size=image_size, **over).encoder_config


def _unit_of(path: str) -> tuple[str, int]:
    parts = path.split(".")
    if parts[0] == "layers" and len(parts) > 3 and parts[2] == "blocks":
        return ".".join(parts[:3]), int(parts[3])
    if parts[0] == "layers" and len(parts) > 2 and parts[2] == "downsample":
        return ".".join(parts[:3]), 0
    return parts[0], 0


def encoder_layers(cfg) -> list[Unit]:
    """Units of the TinyViT encoder of ``cfg`` (a ``TinyViTConfig``), in execution order."""
    import torch
    from torch import nn

    from samfpga.models.image_encoder.tiny_vit import MatMul, TinyViT

    with torch.device("meta"):
        enc = TinyViT(cfg).eval()
    rows: list[dict] = []
    unit_io: dict[str, list[int]] = {}
    hooks = []

    def layer_hook(name: str, mod: nn.Module):
        def fn(m, inp, out):
            unit, block = _unit_of(name)
            if isinstance(m, nn.Conv2d):
                k = m.kernel_size[0]
                cin, cout = m.in_channels, m.out_channels
                pix = out.shape[0] * out.shape[2] * out.shape[3]
                dw = m.groups == cin and cin == cout and m.groups > 1
                kind = "dwconv" if dw else "conv"
                mw = k * k if dw else cin // m.groups * k * k
                rows.append(dict(name=name, kind=kind, unit=unit, block=block, mw=mw, mh=cout, vectors=pix,
                                 weights=m.weight.numel(), kernel=k, in_width=int(inp[0].shape[-1]),
                                 in_channels=cin, out_elems=out.numel()))
            elif isinstance(m, nn.Linear):
                vec = out.numel() // m.out_features
                rows.append(dict(name=name, kind="linear", unit=unit, block=block, mw=m.in_features,
                                 mh=m.out_features, vectors=vec, weights=m.weight.numel(), in_channels=m.in_features,
                                 out_elems=out.numel()))
            elif isinstance(m, MatMul):
                a, b = inp
                vec = a.numel() // a.shape[-1]
                rows.append(dict(name=name, kind="matmul", unit=unit, block=block, mw=a.shape[-1], mh=b.shape[-1],
                                 vectors=vec, weights=0, in_channels=a.shape[-1], out_elems=out.numel()))
        return fn

    def unit_hook(name: str):
        def fn(m, inp, out):
            x = inp[0]
            unit_io.setdefault(name, [x.numel(), 0])[1] = out.numel()
        return fn

    for name, mod in enc.named_modules():
        if name.startswith(("head", "norm_head")):
            continue
        if isinstance(mod, (nn.Conv2d, nn.Linear, MatMul)):
            hooks.append(mod.register_forward_hook(layer_hook(name, mod)))
        parts = name.split(".")
        if name in ("patch_embed", "neck") or (len(parts) == 3 and parts[0] == "layers" and parts[2] == "downsample") \
                or (len(parts) == 4 and parts[0] == "layers" and parts[2] == "blocks"):
            hooks.append(mod.register_forward_hook(unit_hook(name)))
    with torch.no_grad():
        enc(torch.empty(1, cfg.in_chans, cfg.img_size, cfg.img_size, device="meta"))
    for h in hooks:
        h.remove()
    res = cfg.stage_resolutions()
    units: dict[str, dict[int, list[Layer]]] = {}
    for r in rows:
        units.setdefault(r["unit"], {}).setdefault(r["block"], []).append(Layer(**r))
    out = []
    for u, blocks in units.items():
        ids = sorted(blocks)
        keys = [u if u in unit_io else f"{u}.{i}" for i in ids]
        first, last = unit_io[keys[0]], unit_io[keys[-1]]
        window = grid = 0
        parts = u.split(".")
        if len(parts) == 3 and parts[2] == "blocks":
            stage = int(parts[1])
            grid = res[stage]
            window = cfg.window_sizes[stage] if stage > 0 else 0
        last_layer = blocks[ids[-1]][-1]
        out.append(Unit(u, tuple(tuple(blocks[i]) for i in ids), out_elems=int(last[1]), in_elems=int(first[0]),
                        window=window, grid=grid, channels=last_layer.mh))
    return out
