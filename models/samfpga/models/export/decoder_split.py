"""The mask decoder as three graphs: what depends only on the image runs once per image, the rest per prompt.

``DecoderOnnxModel`` (one graph, segment-anything's ``SamOnnxModel`` convention) repeats the image-side work for
every prompt of a batch: the embedding is broadcast over the batch before the two-way transformer, so the first
layer's key/value projections of the image tokens (token-to-image attention) and query projection (image-to-token
attention) are computed B times. The split computes the same function in three graphs:

``ImageSideModel`` (once per image, no mask prompt)
    image_embeddings (1, C, h, w) -> src (1, hw, C) = embedding + no-mask dense embedding, flattened;
    l0_k (1, hw, Ci), l0_v (1, hw, Ci): layer 0 token-to-image key/value projections of src + pe and src;
    l0_q (1, hw, Ci): layer 0 image-to-token query projection of src + pe. (Ci = C / attention downsample.)
``PromptSideModel`` (per prompt batch; each residual layer norm, with its bias and residual adds, fused into one
onnxruntime ``SkipLayerNormalization`` after export: ``onnx_fusion``)
    src, l0_k, l0_v, l0_q, point_coords (B, N, 2), point_labels (B, N) ->
    iou_predictions (B, T), hyper_in (B, T, C/8) (the hypernetwork outputs of the T mask tokens),
    image_tokens (B, hw, C) (the transformer's image tokens, raster order: the upscaling's input).
    Attention over the image tokens after layer 0 is re-associated so the (hw, C) x (C, Ci) projections of
    the image tokens are never formed: with few prompt tokens (N_t = 1 + T + N) and H heads,
    ``softmax(q W_k k^T) (k W_v^T)`` is computed as ``softmax((q W_k) k^T) k W_v^T``, which costs
    H * N_t * C per image token instead of C * Ci (the same products in another order: equal up to float32
    rounding). The positional encoding of the image is a constant of this graph.
``MaskSideModel`` (per prompt whose masks are wanted)
    image_tokens (B, hw, C), hyper_in (B, T', C/8) -> low_res_masks (B, T', 4h, 4w): output upscaling and the
    hypernetwork product, for any subset T' of the mask tokens.

Segment-everything needs the masks only of prompts with a predicted IoU above its threshold, so it runs the
mask side on those alone. tests/test_decoder_split.py checks the three graphs against ``DecoderOnnxModel``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from samfpga.bundle import (
    DECODER_SPLIT_FILES,
    IMAGE_SIDE_OUTPUTS,
    MASK_SIDE_INPUTS,
    MASK_SIDE_OUTPUTS,
    PROMPT_SIDE_INPUTS,
    PROMPT_SIDE_OUTPUTS,
)

from ..sam import Sam
from ..two_way_transformer import Attention
from .onnx_models import DecoderOnnxModel


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, Ci) -> (B, H, N, Ci / H)."""
    b, n, c = x.shape
    return x.reshape(b, n, num_heads, c // num_heads).transpose(1, 2)


def _recombine(x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, d) -> (B, N, H d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _tokens_to_image(attn: Attention, q_tok: torch.Tensor, k_img: torch.Tensor, v_img: torch.Tensor) -> torch.Tensor:
    """``attn(q=q_tok, k=k_img, v=v_img)`` for few queries: q_tok (B, Nt, C), k_img and v_img (B, hw, C) ->
    (B, Nt, C), without projecting the hw image tokens: scores (q W_k^T + b)... folded as (Q_h W_k,h) k^T and
    (P_h v) W_v,h^T (softmax rows sum to one, so the value bias passes through unchanged). The key bias adds
    q . b_k to a whole row of scores, to which the softmax over the image tokens is blind, so it is left out; the
    1 / sqrt(d) scale is applied to the few queries, not to the (B, H, Nt, hw) scores."""
    h = attn.num_heads
    b, nt, c = q_tok.shape
    ci = attn.internal_dim
    d = ci // h
    q = _heads(attn.q_proj(q_tok), h) * (1.0 / math.sqrt(d))  # (B, H, Nt, d)
    wk = attn.k_proj.weight.reshape(h, d, c)
    qw = (q @ wk).reshape(b, h * nt, c)  # (B, H Nt, C)
    p = torch.softmax((qw @ k_img.transpose(1, 2)).reshape(b, h, nt, -1), dim=-1)
    pv = (p.reshape(b, h * nt, -1) @ v_img).reshape(b, h, nt, c)  # (B, H, Nt, C)
    out = pv @ attn.v_proj.weight.reshape(h, d, c).transpose(1, 2) + attn.v_proj.bias.reshape(h, 1, d)
    return attn.out_proj(_recombine(out))


def _image_to_tokens_out(attn: Attention, scores: torch.Tensor, v_tok: torch.Tensor) -> torch.Tensor:
    """Softmax over the tokens and the output projection: scores (B, hw, H, Nt) already scaled by 1 / sqrt(d),
    v_tok (B, Nt, C) -> (B, hw, C), as ``out_proj(recombine(P_h (v W_v,h^T)))`` folded to ``P (V_h W_o,h)`` (no
    (hw, Ci) tensor)."""
    h = attn.num_heads
    b, hw, _, nt = scores.shape
    c = attn.embedding_dim
    d = attn.internal_dim // h
    p = torch.softmax(scores, dim=-1).reshape(b, hw, h * nt)
    v = _heads(attn.v_proj(v_tok), h)  # (B, H, Nt, d)
    wo = attn.out_proj.weight.reshape(c, h, d).permute(1, 2, 0)  # (H, d, C)
    vw = (v @ wo).reshape(b, h * nt, c)  # (B, H Nt, C)
    return p @ vw + attn.out_proj.bias


def _image_to_tokens(attn: Attention, q_img: torch.Tensor, k_tok: torch.Tensor, v_tok: torch.Tensor) -> torch.Tensor:
    """``attn(q=q_img, k=k_tok, v=v_tok)`` with q_img (B, hw, C), k_tok and v_tok (B, Nt, C) -> (B, hw, C), the
    image-token query projection folded into the tokens' keys: (q W_q,h^T + b_q,h) K_h^T = q (W_q,h^T K_h^T) +
    b_q,h K_h^T."""
    h = attn.num_heads
    b, nt, c = k_tok.shape
    d = attn.internal_dim // h
    k = _heads(attn.k_proj(k_tok), h) * (1.0 / math.sqrt(d))  # (B, H, Nt, d), the score scale applied here
    wq = attn.q_proj.weight.reshape(h, d, c)
    wk = (wq.transpose(1, 2) @ k.transpose(2, 3))  # (B, H, C, Nt)
    wk = wk.permute(0, 2, 1, 3).reshape(b, c, h * nt)
    bk = (attn.q_proj.bias.reshape(h, 1, d) @ k.transpose(2, 3)).reshape(b, 1, h, nt)
    scores = (q_img @ wk).reshape(b, -1, h, nt) + bk
    return _image_to_tokens_out(attn, scores, v_tok)


def layer0_tokens(layer: nn.Module, queries: torch.Tensor, pe: torch.Tensor, l0_k: torch.Tensor, l0_v: torch.Tensor,
                  l0_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The first two-way layer up to its image-to-token scores, with the image side's projections given: the prompt
    tokens after self-attention, token-to-image attention and MLP (B, Nt, C), and the image-to-token scores
    (B, hw, H, Nt), already scaled by 1 / sqrt(d)."""
    if layer.skip_first_layer_pe:
        queries = layer.self_attn(q=queries, k=queries, v=queries)
    else:
        q = queries + pe
        queries = queries + layer.self_attn(q=q, k=q, v=queries)
    queries = layer.norm1(queries)
    t2i = layer.cross_attn_token_to_image
    h = t2i.num_heads
    q = _heads(t2i.q_proj(queries + pe), h)  # (B, H, Nt, d)
    scores = q @ _heads(l0_k, h).transpose(2, 3)  # (B, H, Nt, hw)
    p = torch.softmax(scores / math.sqrt(q.shape[-1]), dim=-1)
    queries = layer.norm2(queries + t2i.out_proj(_recombine(p @ _heads(l0_v, h))))
    queries = layer.norm3(queries + layer.mlp(queries))
    i2t = layer.cross_attn_image_to_token
    k = _heads(i2t.k_proj(queries + pe), i2t.num_heads)  # (B, H, Nt, d)
    k = k * (1.0 / math.sqrt(k.shape[-1]))  # the score scale on the few keys
    return queries, (_heads(l0_q, i2t.num_heads) @ k.transpose(2, 3)).transpose(1, 2)


class ImageSideModel(nn.Module):
    """The prompt-independent part of the decoder (no mask prompt): see the module docstring."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.prompt_encoder = sam.prompt_encoder
        layer0 = sam.mask_decoder.transformer.layers[0]
        self.t2i = layer0.cross_attn_token_to_image
        self.i2t = layer0.cross_attn_image_to_token
        pe = sam.prompt_encoder.get_dense_pe().detach().clone()
        self.register_buffer("pos", pe.flatten(2).permute(0, 2, 1).contiguous(), persistent=False)

    def forward(self, image_embeddings: torch.Tensor) -> tuple[torch.Tensor, ...]:
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        src = (image_embeddings + no_mask).flatten(2).permute(0, 2, 1)  # (1, hw, C)
        src_pos = src + self.pos
        return src, self.t2i.k_proj(src_pos), self.t2i.v_proj(src), self.i2t.q_proj(src_pos)


class PromptSideModel(nn.Module):
    """The per-prompt part of the decoder up to the hypernetwork outputs: see the module docstring."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.prompts = DecoderOnnxModel(sam)  # its point embedding (the bundle's prompt contract)
        self.decoder = sam.mask_decoder
        pe = sam.prompt_encoder.get_dense_pe().detach().clone()
        self.register_buffer("pos", pe.flatten(2).permute(0, 2, 1).contiguous(), persistent=False)

    def forward(self, src: torch.Tensor, l0_k: torch.Tensor, l0_v: torch.Tensor, l0_q: torch.Tensor,
                point_coords: torch.Tensor, point_labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        md = self.decoder
        tf = md.transformer
        sparse = self.prompts._embed_points(point_coords, point_labels)
        nb = sparse.shape[0]
        output_tokens = torch.cat([md.iou_token.weight, md.mask_tokens.weight], dim=0)
        pe = torch.cat((output_tokens.unsqueeze(0).expand(nb, -1, -1), sparse), dim=1)  # (B, Nt, C)
        queries = pe
        keys = src
        for i, layer in enumerate(tf.layers):
            if i == 0:
                queries, keys = self._layer0(layer, queries, pe, src, l0_k, l0_v, l0_q)
            else:
                queries, keys = self._layer(layer, queries, keys, pe)
        q = queries + pe
        queries = tf.norm_final_attn(queries + _tokens_to_image(tf.final_attn_token_to_image, q, keys + self.pos, keys))
        iou = md.iou_prediction_head(queries[:, 0, :])
        hyper_in = torch.stack([mlp(queries[:, 1 + i, :]) for i, mlp in enumerate(md.output_hypernetworks_mlps)],
                               dim=1)
        return iou, hyper_in, keys

    @staticmethod
    def _layer0(layer: nn.Module, queries: torch.Tensor, pe: torch.Tensor, src: torch.Tensor, l0_k: torch.Tensor,
                l0_v: torch.Tensor, l0_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``TwoWayAttentionBlock.forward`` of the first layer with the image-side projections given."""
        queries, scores = layer0_tokens(layer, queries, pe, l0_k, l0_v, l0_q)
        keys = layer.norm4(src + _image_to_tokens_out(layer.cross_attn_image_to_token, scores, queries))
        return queries, keys

    def _layer(self, layer: nn.Module, queries: torch.Tensor, keys: torch.Tensor,
               pe: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``TwoWayAttentionBlock.forward`` of a later layer, image-token projections folded (see above)."""
        q = queries + pe
        queries = layer.norm1(queries + layer.self_attn(q=q, k=q, v=queries))
        keys_pos = keys + self.pos
        queries = layer.norm2(queries + _tokens_to_image(layer.cross_attn_token_to_image, queries + pe, keys_pos, keys))
        queries = layer.norm3(queries + layer.mlp(queries))
        keys = layer.norm4(keys + _image_to_tokens(layer.cross_attn_image_to_token, keys_pos, queries + pe, queries))
        return queries, keys


class MaskSideModel(nn.Module):
    """Output upscaling and hypernetwork product: image_tokens (B, hw, C) (raster order), hyper_in (B, T', C/8)
    -> (B, T', 4h, 4w).

    The two stride-2, 2x2 transposed convolutions of ``output_upscaling`` touch each input pixel once, so each is
    a per-pixel matrix product (C_in -> C_out x 2 x 2) and a pixel shuffle; computed channels-last, the
    LayerNorm2d is a LayerNorm over the last axis, and both pixel shuffles are done once, after the hypernetwork
    product has reduced the 32 channels to T' (the same sums as the module's, in another order).
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        up = sam.mask_decoder.output_upscaling
        conv1, norm, act1, conv2, act2 = up[0], up[1], up[2], up[3], up[4]
        for conv in (conv1, conv2):
            if tuple(conv.kernel_size) != (2, 2) or tuple(conv.stride) != (2, 2) or tuple(conv.padding) != (0, 0):
                raise ValueError(f"output upscaling: expected 2x2 stride-2 transposed convolutions, got {conv}")
        self.norm, self.act1, self.act2 = norm, act1, act2
        self.grid = tuple(int(v) for v in sam.prompt_encoder.image_embedding_size)
        self.c1, self.c2 = conv1.out_channels, conv2.out_channels
        # (C_in, C_out, 2, 2) -> (C_in, 2, 2, C_out): column (di, dj, co), so the output is channels-last
        self.register_buffer("w1", conv1.weight.detach().permute(0, 2, 3, 1).reshape(conv1.in_channels, -1).clone(),
                             persistent=False)
        self.register_buffer("b1", conv1.bias.detach().repeat(4).clone(), persistent=False)
        self.register_buffer("w2", conv2.weight.detach().permute(0, 2, 3, 1).reshape(conv2.in_channels, -1).clone(),
                             persistent=False)
        self.register_buffer("b2", conv2.bias.detach().repeat(4).clone(), persistent=False)

    def forward(self, image_tokens: torch.Tensor, hyper_in: torch.Tensor) -> torch.Tensor:
        b = image_tokens.shape[0]
        h, w = self.grid
        x = image_tokens @ self.w1 + self.b1  # (B, hw, 2*2*C1): columns (di, dj, c1)
        x = x.reshape(b, h * w * 4, self.c1)
        x = self.act1(torch.nn.functional.layer_norm(x, (self.c1,), self.norm.weight, self.norm.bias, self.norm.eps))
        x = self.act2(x @ self.w2 + self.b2)  # (B, hw*4, 2*2*C2): rows (i, j, di, dj), columns (ei, ej, c2)
        t = hyper_in.shape[1]
        m = x.reshape(b, h * w * 16, self.c2) @ hyper_in.transpose(1, 2)  # (B, hw*16, T')
        # rows (i, j, di, dj, ei, ej) -> output pixel (4i + 2di + ei, 4j + 2dj + ej)
        m = m.reshape(b, h, w, 2, 2, 2, 2, t).permute(0, 7, 1, 3, 5, 2, 4, 6)
        return m.reshape(b, t, 4 * h, 4 * w)


def split_example_inputs(sam: Sam, batch: int = 2, points: int = 3) -> dict[str, torch.Tensor]:
    """Example inputs of the three graphs, keyed by input name."""
    from .bundle import decoder_example_inputs

    emb, coords, labels, _, _ = decoder_example_inputs(sam, batch, points)
    with torch.no_grad():
        src, k, v, q = ImageSideModel(sam).eval()(emb)
        _, hyper, tokens = PromptSideModel(sam).eval()(src, k, v, q, coords, labels)
    return {"image_embeddings": emb, "src": src, "l0_k": k, "l0_v": v, "l0_q": q, "point_coords": coords,
            "point_labels": labels, "image_tokens": tokens, "hyper_in": hyper}


def export_decoder_split(sam: Sam, out_dir: str | Path, opset: int) -> dict[str, Path]:
    """Write the three graphs (file names ``samfpga.bundle.DECODER_SPLIT_FILES``) into ``out_dir``."""
    from .bundle import _export

    out_dir = Path(out_dir)
    ex = split_example_inputs(sam)
    paths = {key: out_dir / name for key, name in DECODER_SPLIT_FILES.items()}
    batch = {0: "batch"}
    with torch.no_grad():
        _export(ImageSideModel(sam).eval(), (ex["image_embeddings"],), paths["decoder_image"], ["image_embeddings"],
                list(IMAGE_SIDE_OUTPUTS), None, opset)
        _export(PromptSideModel(sam).eval(), tuple(ex[k] for k in PROMPT_SIDE_INPUTS), paths["decoder_prompt"],
                list(PROMPT_SIDE_INPUTS), list(PROMPT_SIDE_OUTPUTS),
                {"point_coords": {0: "batch", 1: "num_points"}, "point_labels": {0: "batch", 1: "num_points"},
                 **{k: batch for k in PROMPT_SIDE_OUTPUTS}}, opset)
        _export(MaskSideModel(sam).eval(), tuple(ex[k] for k in MASK_SIDE_INPUTS), paths["decoder_masks"],
                list(MASK_SIDE_INPUTS), list(MASK_SIDE_OUTPUTS),
                {"image_tokens": batch, "hyper_in": {0: "batch", 1: "tokens"},
                 "low_res_masks": {0: "batch", 1: "tokens"}}, opset)
    fuse_prompt_side(paths["decoder_prompt"], len(sam.mask_decoder.transformer.layers))
    return paths


def fuse_prompt_side(path: Path, depth: int) -> None:
    """Fuse every residual layer norm of the two-way transformer (bias add, residual add, layer norm) into one
    ``SkipLayerNormalization`` (``onnx_fusion``): the image tokens' norm4 of each layer, where it saves two passes
    over (B, hw, C), and the prompt tokens' norms (harmless). A depth-L transformer has 4 L of them (norm1-4 of each
    layer and the final norm, less the first layer's norm1, which has no residual); a graph where another number
    fuses is refused, so an exporter change that breaks the pattern is noticed rather than silently slower."""
    import onnx

    from .onnx_fusion import fuse_skip_layer_norm

    model = onnx.load(str(path))
    fused = fuse_skip_layer_norm(model)
    if fused != 4 * depth:
        raise RuntimeError(f"{path}: fused {fused} residual layer norms into SkipLayerNormalization, expected "
                           f"{4 * depth} for a depth-{depth} transformer")
    onnx.save(model, str(path))
