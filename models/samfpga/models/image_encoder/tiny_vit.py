"""TinyViT image encoder, state-dict compatible with MobileSAM's ``vit_t`` and TinySAM.

Data flow for the default 1024x1024 configuration (``TinyViTConfig()``):

    image (B,3,1024,1024)
      -> patch_embed: 2x Conv3x3/s2 + BN, GELU between       (B,64,256,256)
      -> layers[0]: ConvLayer, 2 MBConv + PatchMerging(s2)     (B,128*128,128)
      -> layers[1]: 2 TinyViT blocks (window 7) + PatchMerging (B,64*64,160)
      -> layers[2]: 6 TinyViT blocks (window 14) + PatchMerging with stride 1 (B,64*64,320)
      -> layers[3]: 2 TinyViT blocks (window 7)                (B,64*64,320)
      -> neck: 1x1 conv, LN2d, 3x3 conv, LN2d                  (B,256,64,64)

The classifier head (``norm_head``, ``head``) is unused but kept so official checkpoints load strictly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..common import LayerNorm2d

ACTIVATIONS: dict[str, type[nn.Module]] = {"gelu": nn.GELU, "relu": nn.ReLU}


@dataclass
class TinyViTConfig:
    """Architecture of a TinyViT encoder. Defaults are TinySAM / MobileSAM ``vit_t`` at 1024x1024."""

    img_size: int = 1024
    in_chans: int = 3
    embed_dims: list[int] = field(default_factory=lambda: [64, 128, 160, 320])
    depths: list[int] = field(default_factory=lambda: [2, 2, 6, 2])
    num_heads: list[int] = field(default_factory=lambda: [2, 4, 5, 10])
    window_sizes: list[int] = field(default_factory=lambda: [7, 7, 14, 7])
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    local_conv_size: int = 3
    out_chans: int = 256
    num_classes: int = 1000  # unused classifier head, present in official checkpoints
    activation: str = "gelu"

    def __post_init__(self) -> None:
        n = len(self.depths)
        for name in ("embed_dims", "num_heads", "window_sizes"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"TinyViTConfig.{name} has {len(getattr(self, name))} entries, depths has {n}")
        if n < 2:
            raise ValueError("TinyViTConfig needs at least two stages (a conv stage and a transformer stage)")
        for dim, heads in zip(self.embed_dims[1:], self.num_heads[1:]):
            if dim % heads:
                raise ValueError(f"embed dim {dim} is not divisible by its head count {heads}")
        if self.img_size % (4 * 2 ** (n - 2)):
            raise ValueError(f"img_size {self.img_size} must be a multiple of {4 * 2 ** (n - 2)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} is not one of {sorted(ACTIVATIONS)}")

    def stage_resolutions(self) -> list[int]:
        """Side length of the token grid each stage works on (the last patch merging keeps resolution)."""
        base = self.img_size // 4
        n = len(self.depths)
        return [base // 2 ** (i - 1 if i == n - 1 else i) for i in range(n)]

    @property
    def embedding_size(self) -> int:
        """Side length of the output embedding (img_size / 16 for four stages)."""
        return self.stage_resolutions()[-1]


class Conv2d_BN(nn.Sequential):
    """Bias-free convolution followed by BatchNorm (keys ``c.*`` and ``bn.*``)."""

    def __init__(
        self,
        a: int,
        b: int,
        ks: int = 1,
        stride: int = 1,
        pad: int = 0,
        dilation: int = 1,
        groups: int = 1,
        bn_weight_init: float = 1.0,
    ) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(a, b, ks, stride, pad, dilation, groups, bias=False))
        bn = nn.BatchNorm2d(b)
        nn.init.constant_(bn.weight, bn_weight_init)
        nn.init.constant_(bn.bias, 0)
        self.add_module("bn", bn)


class PatchEmbed(nn.Module):
    """Stem: two stride-2 3x3 conv+BN with an activation between. (B,3,H,W) -> (B,C,H/4,W/4)."""

    def __init__(self, in_chans: int, embed_dim: int, activation: type[nn.Module]) -> None:
        super().__init__()
        n = embed_dim
        self.seq = nn.Sequential(Conv2d_BN(in_chans, n // 2, 3, 2, 1), activation(), Conv2d_BN(n // 2, n, 3, 2, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand, 3x3 depthwise, 1x1 project, residual add, activation."""

    def __init__(self, in_chans: int, out_chans: int, expand_ratio: float, activation: type[nn.Module]) -> None:
        super().__init__()
        self.hidden_chans = int(in_chans * expand_ratio)
        self.conv1 = Conv2d_BN(in_chans, self.hidden_chans, ks=1)
        self.act1 = activation()
        self.conv2 = Conv2d_BN(self.hidden_chans, self.hidden_chans, 3, 1, 1, groups=self.hidden_chans)
        self.act2 = activation()
        self.conv3 = Conv2d_BN(self.hidden_chans, out_chans, ks=1, bn_weight_init=0.0)
        self.act3 = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.act1(self.conv1(x))
        x = self.act2(self.conv2(x))
        x = self.conv3(x)
        return self.act3(x + shortcut)


class PatchMerging(nn.Module):
    """1x1 conv, depthwise 3x3 (stride 2, or 1 for the last merge), 1x1 conv; returns tokens (B, L, out_dim)."""

    def __init__(
        self, input_resolution: tuple[int, int], dim: int, out_dim: int, activation: type[nn.Module], stride: int
    ) -> None:
        super().__init__()
        self.input_resolution = input_resolution
        self.dim = dim
        self.out_dim = out_dim
        self.act = activation()
        self.conv1 = Conv2d_BN(dim, out_dim, 1, 1, 0)
        self.conv2 = Conv2d_BN(out_dim, out_dim, 3, stride, 1, groups=out_dim)
        self.conv3 = Conv2d_BN(out_dim, out_dim, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:  # tokens (B, L, C) from a transformer stage
            h, w = self.input_resolution
            x = x.view(x.shape[0], h, w, -1).permute(0, 3, 1, 2)
        x = self.act(self.conv1(x))
        x = self.act(self.conv2(x))
        x = self.conv3(x)
        return x.flatten(2).transpose(1, 2)


class ConvLayer(nn.Module):
    """Stage 0: MBConv blocks on an NCHW map, then patch merging to tokens."""

    def __init__(
        self,
        dim: int,
        depth: int,
        activation: type[nn.Module],
        conv_expand_ratio: float,
        downsample: nn.Module | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([MBConv(dim, dim, conv_expand_ratio, activation) for _ in range(depth)])
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class Mlp(nn.Module):
    """Pre-norm feed-forward: LayerNorm, fc1, activation, fc2."""

    def __init__(self, in_features: int, hidden_features: int, activation: type[nn.Module]) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_features)
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.act = activation()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


def relative_position_index(window: int) -> torch.Tensor:
    """Index into the per-head bias table for every (query, key) pair of a window, (N, N) int64.

    Offsets (|dy|, |dx|) are numbered in first-seen order, as the official TinyViT does, so the
    ``attention_biases`` table of a checkpoint lines up.
    """
    points = list(itertools.product(range(window), range(window)))
    offsets: dict[tuple[int, int], int] = {}
    idxs = []
    for p1 in points:
        for p2 in points:
            off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
            if off not in offsets:
                offsets[off] = len(offsets)
            idxs.append(offsets[off])
    n = len(points)
    return torch.tensor(idxs, dtype=torch.long).view(n, n)


class MatMul(nn.Module):
    """``a @ b`` as a module, so quantization can wrap both operands of attention matmuls."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


class Attention(nn.Module):
    """Windowed multi-head self-attention with a learned relative-position bias.

    Input and output: tokens ``(B*, N, C)`` with N = window**2.
    """

    def __init__(self, dim: int, key_dim: int, num_heads: int, attn_ratio: float, resolution: tuple[int, int]) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = key_dim**-0.5
        self.key_dim = key_dim
        self.nh_kd = key_dim * num_heads
        self.d = int(attn_ratio * key_dim)
        self.dh = self.d * num_heads
        self.attn_ratio = attn_ratio
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, self.dh + self.nh_kd * 2)
        self.proj = nn.Linear(self.dh, dim)
        assert resolution[0] == resolution[1], "square windows only"
        idx = relative_position_index(resolution[0])
        # every (|dy|, |dx|) offset of a square window occurs: window**2 table entries per head
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, resolution[0] * resolution[1]))
        self.register_buffer("attention_bias_idxs", idx, persistent=False)
        self.matmul_qk = MatMul()
        self.matmul_av = MatMul()
        self.softmax = nn.Softmax(dim=-1)

    def bias(self) -> torch.Tensor:
        """Relative-position bias, (heads, N, N). Gathered on every call (no cache that can go stale)."""
        return self.attention_biases[:, self.attention_bias_idxs]

    def attention_weights(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T * scale + bias): q, k (B*, heads, N, key_dim) -> (B*, heads, N, N). A method of its own so
        the quantized model's integer softmax (samfpga.models.quant.int_norm) replaces exactly this."""
        attn = self.matmul_qk(q, k.transpose(-2, -1)) * self.scale + self.bias()
        return self.softmax(attn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        x = self.norm(x)
        qkv = self.qkv(x)
        q, k, v = qkv.view(b, n, self.num_heads, -1).split([self.key_dim, self.key_dim, self.d], dim=3)
        q, k, v = q.permute(0, 2, 1, 3), k.permute(0, 2, 1, 3), v.permute(0, 2, 1, 3)
        x = self.matmul_av(self.attention_weights(q, k), v).transpose(1, 2).reshape(b, n, self.dh)
        return self.proj(x)


class TinyViTBlock(nn.Module):
    """Window attention + residual, depthwise local conv, MLP + residual. Tokens (B, H*W, C) in and out."""

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        local_conv_size: int,
        activation: type[nn.Module],
    ) -> None:
        super().__init__()
        self.dim = dim
        self.input_resolution = input_resolution
        self.num_heads = num_heads
        self.window_size = window_size
        self.mlp_ratio = mlp_ratio
        head_dim = dim // num_heads
        self.attn = Attention(dim, head_dim, num_heads, attn_ratio=1, resolution=(window_size, window_size))
        self.mlp = Mlp(dim, int(dim * mlp_ratio), activation)
        self.local_conv = Conv2d_BN(dim, dim, ks=local_conv_size, stride=1, pad=local_conv_size // 2, groups=dim)

    def window_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Partition (zero-padding bottom/right), attend per window, reverse. (B, L, C) -> (B, L, C)."""
        h, w = self.input_resolution
        b, L, c = x.shape
        ws = self.window_size
        if h == ws and w == ws:
            return self.attn(x)
        x = x.view(b, h, w, c)
        pad_b = (ws - h % ws) % ws
        pad_r = (ws - w % ws) % ws
        if pad_b or pad_r:
            x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
        ph, pw = h + pad_b, w + pad_r
        nh, nw = ph // ws, pw // ws
        x = x.view(b, nh, ws, nw, ws, c).transpose(2, 3).reshape(b * nh * nw, ws * ws, c)
        x = self.attn(x)
        x = x.view(b, nh, nw, ws, ws, c).transpose(2, 3).reshape(b, ph, pw, c)
        if pad_b or pad_r:
            x = x[:, :h, :w].contiguous()
        return x.view(b, L, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = self.input_resolution
        b, L, c = x.shape
        if L != h * w:
            raise ValueError(f"TinyViTBlock expected {h}x{w}={h * w} tokens, got {L}")
        x = x + self.window_attention(x)
        x = x.transpose(1, 2).reshape(b, c, h, w)
        x = self.local_conv(x)
        x = x.view(b, c, L).transpose(1, 2)
        return x + self.mlp(x)


class BasicLayer(nn.Module):
    """A transformer stage: TinyViT blocks, then an optional patch merging."""

    def __init__(
        self,
        dim: int,
        input_resolution: tuple[int, int],
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        local_conv_size: int,
        activation: type[nn.Module],
        downsample: nn.Module | None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [
                TinyViTBlock(dim, input_resolution, num_heads, window_size, mlp_ratio, local_conv_size, activation)
                for _ in range(depth)
            ]
        )
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class TinyViT(nn.Module):
    """TinyViT image encoder with SAM's neck. ``forward``: (B,3,S,S) float normalised -> (B,256,S/16,S/16)."""

    def __init__(self, config: TinyViTConfig | None = None) -> None:
        super().__init__()
        cfg = config or TinyViTConfig()
        self.config = cfg
        self.img_size = cfg.img_size
        act = ACTIVATIONS[cfg.activation]
        dims = cfg.embed_dims
        res = cfg.stage_resolutions()
        n = len(cfg.depths)
        self.patch_embed = PatchEmbed(cfg.in_chans, dims[0], act)
        self.layers = nn.ModuleList()
        for i in range(n):
            downsample = None
            if i < n - 1:
                # The last merge keeps resolution (stride 1), so the embedding is img_size/16 as in SAM.
                stride = 1 if i == n - 2 else 2
                downsample = PatchMerging((res[i], res[i]), dims[i], dims[i + 1], act, stride)
            if i == 0:
                layer: nn.Module = ConvLayer(dims[0], cfg.depths[0], act, cfg.mbconv_expand_ratio, downsample)
            else:
                layer = BasicLayer(
                    dims[i], (res[i], res[i]), cfg.depths[i], cfg.num_heads[i], cfg.window_sizes[i],
                    cfg.mlp_ratio, cfg.local_conv_size, act, downsample,
                )
            self.layers.append(layer)
        self.norm_head = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], cfg.num_classes) if cfg.num_classes > 0 else nn.Identity()
        self.apply(_init_weights)
        self.neck = nn.Sequential(
            nn.Conv2d(dims[-1], cfg.out_chans, kernel_size=1, bias=False),
            LayerNorm2d(cfg.out_chans),
            nn.Conv2d(cfg.out_chans, cfg.out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(cfg.out_chans),
        )

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Stem and all stages: (B,3,S,S) -> tokens (B, (S/16)**2, embed_dims[-1])."""
        x = self.patch_embed(x)
        for layer in self.layers:
            x = layer(x)
        return x

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.config.in_chans or x.shape[-2:] != (self.img_size, self.img_size):
            raise ValueError(
                f"TinyViT expects (B,{self.config.in_chans},{self.img_size},{self.img_size}), got {tuple(x.shape)}"
            )

    def _to_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, s*s, C) tokens -> (B, C, s, s) at the embedding resolution."""
        s = self.config.embedding_size
        return tokens.view(tokens.shape[0], s, s, tokens.shape[-1]).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        return self.neck(self._to_map(self.forward_tokens(x)))

    @property
    def early_channels(self) -> int:
        """Channels of the early feature of ``forward_with_early`` (embed_dims[2])."""
        res = self.config.stage_resolutions()
        if len(self.config.depths) < 4 or res[2] != self.config.embedding_size:
            raise ValueError("TinyViT early features (HQ-SAM) need four stages, the third at the embedding "
                             f"resolution; this encoder's stage grids are {res}")
        return int(self.config.embed_dims[2])

    def forward_with_early(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedding and HQ-SAM's early feature: (B,3,S,S) -> ((B, out_chans, s, s), (B, embed_dims[2], s, s)).

        The early feature is the output of ``layers[1]`` (after its patch merging), as Light HQ-SAM's TinyViT
        returns it in ``interm_embeddings[0]`` (there channels-last)."""
        self._check_input(x)
        if self.early_channels <= 0:  # the property raises for encoders without an early feature
            raise AssertionError("unreachable")
        x = self.patch_embed(x)
        x = self.layers[1](self.layers[0](x))
        early = self._to_map(x)
        for layer in self.layers[2:]:
            x = layer(x)
        return self.neck(self._to_map(x)), early


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.LayerNorm):
        nn.init.constant_(m.bias, 0)
        nn.init.constant_(m.weight, 1.0)
