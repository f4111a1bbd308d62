"""QueryOpt's attention maps: the decoder's own weights, on the right
cells, drawn over the right pixels (issue #15)."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.registry import init_default_scope
from PIL import Image

from conftest import tiny_digits_cfg
from mmqueryopt.analysis.attention import save_attention_overlay
from mmqueryopt.models import QueryHashHead
from mmqueryopt.models.heads.query_hash_head import tokens_to_grid
from mmqueryopt.models.necks.subtle_feature_neck import LevelTokens
from mmqueryopt.registry import MODELS
from mmqueryopt.retrieval.grid import PAD_PX, TITLE_PX, grid_size


def tiny_model():
    init_default_scope('mmqueryopt')
    cfg = tiny_digits_cfg('unused', 'unused')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


def reference_maps(model, images):
    """Float64 softmax(q k^T / sqrt(d_h)) averaged over heads, then each
    coarse token's weight shared out over its fine cells, by loops."""
    feats = model.neck(model.backbone(images))
    memory, pos = (t.double() for t in feats)
    attn = model.head.decoder_layer.cross_attn
    dims, heads = attn.embed_dim, attn.num_heads
    weight, bias = attn.in_proj_weight.double(), attn.in_proj_bias.double()
    queries = model.head.query_embed.weight.double()
    q = queries @ weight[:dims].T + bias[:dims]                 # (k, d)
    k = (memory + pos) @ weight[dims:2 * dims].T + bias[dims:2 * dims]
    head_dims = dims // heads
    probs = 0
    for h in range(heads):
        part = slice(h * head_dims, (h + 1) * head_dims)
        logits = q[:, part] @ k[..., part].transpose(1, 2) / head_dims**0.5
        probs = probs + torch.softmax(logits, dim=-1) / heads  # (B, k, T)
    (h3, w3), (h4, w4) = feats.level_shapes
    f = h3 // h4
    grid = torch.zeros(probs.shape[0], probs.shape[1], h3, w3,
                       dtype=torch.float64)
    for r in range(h3):
        for c in range(w3):
            grid[..., r, c] = (probs[..., r * w3 + c] +
                               probs[..., h3 * w3 + (r // f) * w4 + c // f]
                               / f**2)
    return grid


def test_maps_are_the_decoders_attention():
    model = tiny_model()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        maps = model.attention_maps(images)
        expected = reference_maps(model, images)
    # ResNet_CIFAR's stages 3 and 4 at strides 4 and 8: P3 is 8 x 8.
    assert maps.shape == (2, 12, 8, 8)
    assert (maps >= 0).all()
    torch.testing.assert_close(maps.sum((-2, -1)), torch.ones(2, 12))
    torch.testing.assert_close(maps.double(), expected, rtol=0, atol=1e-6)


def test_neck_output_is_still_the_pair():
    model = tiny_model()
    with torch.no_grad():
        feats = model.neck(model.backbone(torch.randn(1, 3, 32, 32)))
    tokens, pos = feats
    assert isinstance(feats, tuple) and len(feats) == 2
    assert tokens.shape == pos.shape == (1, 64 + 16, 32)
    assert feats.level_shapes == ((8, 8), (4, 4))
    again = pickle.loads(pickle.dumps(feats))
    assert again.level_shapes == feats.level_shapes
    torch.testing.assert_close(again[0], tokens)


def test_tokens_are_the_maps_cells_row_major():
    """Token t of a level is cell (t // w, t % w) of that level's map: the
    order the maps are put back in (no encoder layer, so that each token
    is its cell's projection alone)."""
    model = tiny_model()
    neck = MODELS.build(
        dict(type='SubtleFeatureNeck', in_channels=(32, 64), embed_dims=32,
             top_down_channels=16, num_heads=2, ffn_dims=32, num_layers=0))
    neck.eval()
    with torch.no_grad():
        c3, c4 = model.backbone(torch.randn(1, 3, 32, 24))
        tokens, _ = feats = neck((c3, c4))
        p3 = neck.lateral(c3) + neck.top_down(c4)
        levels = [neck.input_projs[0](p3)[0], neck.input_projs[1](c4)[0]]
    # A 32 x 24 input: 8 x 6 and 4 x 3 grids, rows and columns differ.
    assert feats.level_shapes == ((8, 6), (4, 3))
    t = 0
    for level, (h, w) in zip(levels, feats.level_shapes):
        for r in range(h):
            for c in range(w):
                torch.testing.assert_close(tokens[0, t], level[:, r, c])
                t += 1
    assert t == tokens.shape[1]


def marked_head():
    """Three queries, one head, identity projections: query j attends to
    the tokens whose content is 100 * e_j (and evenly to all if none is)."""
    head = QueryHashHead(3, relaxed_dims=3, embed_dims=6, num_heads=1,
                         ffn_dims=4)
    attn = head.decoder_layer.cross_attn
    with torch.no_grad():
        attn.in_proj_weight.copy_(torch.cat([torch.eye(6)] * 3))
        attn.in_proj_bias.zero_()
        head.query_embed.weight.copy_(torch.eye(3, 6))
    # Grids: 4 x 4 (tokens 0..15), then 2 x 2 (tokens 16..19).
    memory = torch.zeros(1, 20, 6)
    memory[0, 1 * 4 + 2, 0] = 100.0      # level 0, row 1, column 2
    memory[0, 16 + 0 * 2 + 1, 1] = 100.0  # level 1, row 0, column 1
    feats = LevelTokens(memory, torch.zeros_like(memory), [(4, 4), (2, 2)])
    return head.eval(), feats


def test_maps_put_a_token_on_its_cells():
    head, feats = marked_head()
    with torch.no_grad():
        maps = head.attention_maps(feats)[0].double()
    assert maps.shape == (3, 4, 4)
    # Logit 100 / sqrt(6) against 19 of 0: the marked token takes it all.
    assert maps[0, 1, 2] > 1 - 1e-7
    # A coarse token covers a 2 x 2 block of fine cells: a quarter each.
    block = torch.zeros(4, 4, dtype=torch.float64)
    block[0:2, 2:4] = 0.25
    torch.testing.assert_close(maps[1], block, rtol=0, atol=1e-7)
    # Even attention over the 20 tokens is even over the 16 cells: 1/20
    # from a fine token plus a quarter of 1/20 from its coarse one.
    torch.testing.assert_close(maps[2], torch.full((4, 4), 1 / 16,
                                                   dtype=torch.float64),
                               rtol=0, atol=1e-7)


def test_overlay_draws_the_map_over_its_pixels(tmp_path):
    head, feats = marked_head()
    with torch.no_grad():
        maps = head.attention_maps(feats)[0].numpy()
    image = np.full((64, 64, 3), 128, np.uint8)
    out = str(tmp_path / 'overlay.png')
    thumb, ncols = 64, 4
    save_attention_overlay(out, image, maps, ['a', 'b', 'c'], thumb, ncols,
                           alpha=0.8, interpolation='nearest')
    with Image.open(out) as png:
        assert png.format == 'PNG' and png.size == grid_size(4, thumb,
                                                               ncols)
        pixels = np.asarray(png.convert('RGB')).astype(int)
    cell_w = thumb + 2 * PAD_PX
    top = TITLE_PX + PAD_PX

    def panel(n):
        left = n * cell_w + PAD_PX
        return pixels[top:top + thumb, left:left + thumb]

    # Jet's top is red, its bottom blue: red minus blue says how hot.
    heat = panel(1)[..., 0] - panel(1)[..., 2]
    # Cell (1, 2) of the 4 x 4 grid is rows 16-31, columns 32-47 of the
    # 64 x 64 image; one image pixel is one figure pixel here.
    inside = heat[18:30, 34:46]
    outside = np.zeros_like(heat, bool)
    outside[2:-2, 2:-2] = True  # inside the axes' frame
    outside[14:34, 30:50] = False
    assert inside.min() > 90 and heat[outside].max() < -90
    heat = panel(2)[..., 0] - panel(2)[..., 2]
    assert heat[2:30, 34:62].min() > 90          # the 2 x 2 block
    assert heat[34:62, 2:62].max() < -90
    assert heat[2:62, 2:30].max() < -90
    # The first panel is the image alone.
    assert np.abs(panel(0)[4:60, 4:60] - 128).max() <= 2


def test_maps_need_the_token_grid():
    head, feats = marked_head()
    with pytest.raises(ValueError, match='level_shapes'):
        head.attention_maps(tuple(feats))
    with pytest.raises(ValueError, match='hold 21 tokens'):
        tokens_to_grid(torch.ones(1, 1, 20), [(4, 4), (1, 5)])
    with pytest.raises(ValueError, match='does not divide'):
        tokens_to_grid(torch.ones(1, 1, 25), [(4, 4), (3, 3)])
