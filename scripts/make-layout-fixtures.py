#!/usr/bin/env python3
"""Tiny vision transformers in the graph layouts their exporters write, for tests (test/fixtures/layouts/).

Each model is written the way its library writes the module (timm / DeiT, Hugging Face ViT and Swin,
torchvision ViT with nn.MultiheadAttention, torchvision Swin behind a ZeroPad2d), at toy size
(1×28×28 input, 10 classes, random weights with a fixed seed), and exported by PyTorch's own
torch.onnx.export with a dynamic batch axis. The modules are re-typed here from the libraries'
public structure (timm and transformers are not installable here); what matters to swinq is the
exported node pattern, which follows from the module code: fused qkv + Reshape/Transpose + Split
(timm, unbind) or Gather (DeiT, indexing); separate query/key/value Linear + view/permute and a
division by sqrt(dh) (Hugging Face); in_proj + bmm (nn.MultiheadAttention); torch.roll shifts and
window partition (Hugging Face Swin); LayerNormalization (opset 17) or decomposed (opset 13).

Needs Debian's python3-torch and python3-torchvision (`apt-get install python3-torch python3-torchvision`):
  /usr/bin/python3 scripts/make-layout-fixtures.py --out test/fixtures/layouts
"""
import argparse, json, math, os
import torch, torch.nn as nn, torch.nn.functional as F

IMG, CH, CLASSES = 28, 1, 10


# ---------------------------------------------------------------- timm / DeiT ViT
class TimmAttention(nn.Module):
    def __init__(self, dim, heads, index_split):
        super().__init__()
        self.heads, self.scale, self.index_split = heads, (dim // heads) ** -0.5, index_split
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        if self.index_split:  # DeiT / older timm: qkv[0], qkv[1], qkv[2] → Gather
            q, k, v = qkv[0], qkv[1], qkv[2]
        else:                 # timm: unbind → Split
            q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * self.scale
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class TimmBlock(nn.Module):
    def __init__(self, dim, heads, mlp, index_split, tanh_gelu):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = TimmAttention(dim, heads, index_split)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.fc1, self.fc2 = nn.Linear(dim, mlp), nn.Linear(mlp, dim)
        self.act = nn.GELU(approximate='tanh' if tanh_gelu else 'none')

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class TimmViT(nn.Module):
    def __init__(self, dim=32, depth=2, heads=2, mlp=64, patch=4, index_split=False, tanh_gelu=False):
        super().__init__()
        self.patch_embed = nn.Conv2d(CH, dim, patch, patch)
        n = (IMG // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = nn.Sequential(*[TimmBlock(dim, heads, mlp, index_split, tanh_gelu) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, CLASSES)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        x = self.norm(self.blocks(x))
        return self.head(x[:, 0])


# ---------------------------------------------------------------- Hugging Face ViT
class HFSelfAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.dh = heads, dim // heads
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)

    def split(self, x):
        return x.view(x.size()[:-1] + (self.heads, self.dh)).permute(0, 2, 1, 3)

    def forward(self, x, mask=None):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh)
        if mask is not None:
            scores = scores + mask
        probs = nn.functional.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.heads * self.dh,))


class HFLayer(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.layernorm_before = nn.LayerNorm(dim, eps=1e-12)
        self.attention = HFSelfAttention(dim, heads)
        self.output = nn.Linear(dim, dim)
        self.layernorm_after = nn.LayerNorm(dim, eps=1e-12)
        self.intermediate, self.out2 = nn.Linear(dim, mlp), nn.Linear(mlp, dim)

    def forward(self, x):
        x = self.output(self.attention(self.layernorm_before(x))) + x
        return self.out2(F.gelu(self.intermediate(self.layernorm_after(x)))) + x


class HFViT(nn.Module):
    def __init__(self, dim=32, depth=2, heads=2, mlp=64, patch=4):
        super().__init__()
        self.projection = nn.Conv2d(CH, dim, patch, patch)
        n = (IMG // patch) ** 2
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.position_embeddings = nn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.layer = nn.Sequential(*[HFLayer(dim, heads, mlp) for _ in range(depth)])
        self.layernorm = nn.LayerNorm(dim, eps=1e-12)
        self.classifier = nn.Linear(dim, CLASSES)

    def forward(self, pixel_values):
        x = self.projection(pixel_values).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.position_embeddings
        x = self.layernorm(self.layer(x))
        return self.classifier(x[:, 0, :])


# ---------------------------------------------------------------- Hugging Face Swin
def window_partition(x, w):
    B, H, W, C = x.shape
    x = x.view(B, H // w, w, W // w, w, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, w, w, C)


def window_reverse(win, w, H, W):
    C = win.shape[-1]
    x = win.view(-1, H // w, W // w, w, w, C)
    return x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, H, W, C)


class HFSwinAttention(HFSelfAttention):
    def __init__(self, dim, heads, w):
        super().__init__(dim, heads)
        self.relative_position_bias_table = nn.Parameter(torch.randn((2 * w - 1) ** 2, heads) * 0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing='ij')).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (w - 1)
        self.register_buffer('relative_position_index', rel[:, :, 0] * (2 * w - 1) + rel[:, :, 1])
        self.w = w

    def forward(self, x, mask=None):
        B, N, C = x.shape
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.dh)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)].view(N, N, -1)
        scores = scores + bias.permute(2, 0, 1).contiguous().unsqueeze(0)
        if mask is not None:
            nw = mask.shape[0]
            scores = scores.view(B // nw, nw, self.heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            scores = scores.view(-1, self.heads, N, N)
        probs = nn.functional.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(B, N, C)


class HFSwinLayer(nn.Module):
    def __init__(self, dim, heads, w, shift, res):
        super().__init__()
        self.w, self.shift, self.res = w, shift, res
        self.layernorm_before = nn.LayerNorm(dim, eps=1e-5)
        self.attention = HFSwinAttention(dim, heads, w)
        self.output = nn.Linear(dim, dim)
        self.layernorm_after = nn.LayerNorm(dim, eps=1e-5)
        self.intermediate, self.out2 = nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)
        if shift:
            img = torch.zeros(1, res, res, 1)
            cnt = 0
            for hs in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
                for ws in (slice(0, -w), slice(-w, -shift), slice(-shift, None)):
                    img[:, hs, ws, :] = cnt
                    cnt += 1
            mw = window_partition(img, w).view(-1, w * w)
            m = mw.unsqueeze(1) - mw.unsqueeze(2)
            self.register_buffer('attn_mask', m.masked_fill(m != 0, -100.0).masked_fill(m == 0, 0.0))
        else:
            self.attn_mask = None

    def forward(self, x):
        B, L, C = x.shape
        H = W = self.res
        sc = x
        x = self.layernorm_before(x).view(B, H, W, C)
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        win = window_partition(x, self.w).view(-1, self.w * self.w, C)
        a = self.output(self.attention(win, self.attn_mask)).view(-1, self.w, self.w, C)
        x = window_reverse(a, self.w, H, W)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        x = sc + x.view(B, H * W, C)
        return x + self.out2(F.gelu(self.intermediate(self.layernorm_after(x))))


class HFSwin(nn.Module):
    def __init__(self, dim=32, heads=2, w=7, patch=2):
        super().__init__()
        res = IMG // patch
        self.projection = nn.Conv2d(CH, dim, patch, patch)
        self.embed_norm = nn.LayerNorm(dim)
        self.layers = nn.Sequential(HFSwinLayer(dim, heads, w, 0, res), HFSwinLayer(dim, heads, w, w // 2, res))
        self.layernorm = nn.LayerNorm(dim)
        self.classifier = nn.Linear(dim, CLASSES)

    def forward(self, pixel_values):
        x = self.embed_norm(self.projection(pixel_values).flatten(2).transpose(1, 2))
        x = self.layernorm(self.layers(x))
        return self.classifier(x.mean(dim=1))  # AdaptiveAvgPool1d over tokens exports as ReduceMean


# ---------------------------------------------------------------- torchvision layouts
def torchvision_vit():
    from torchvision.models.vision_transformer import VisionTransformer
    net = VisionTransformer(image_size=IMG, patch_size=4, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                            num_classes=CLASSES)
    net.conv_proj = nn.Conv2d(CH, 32, 4, 4)
    nn.init.normal_(net.heads.head.weight, std=0.02)
    return net


class PaddedSwin(nn.Module):
    """torchvision Swin behind a ZeroPad2d (28 → 32 pixels, window 4, three stages)."""

    def __init__(self):
        super().__init__()
        from torchvision.models.swin_transformer import SwinTransformer
        self.pad = nn.ZeroPad2d(2)
        self.swin = SwinTransformer(patch_size=[2, 2], embed_dim=16, depths=[2, 2, 2], num_heads=[2, 2, 4],
                                    window_size=[4, 4], num_classes=CLASSES)
        self.swin.features[0][0] = nn.Conv2d(CH, 16, kernel_size=2, stride=2)

    def forward(self, x):
        return self.swin(self.pad(x))


MODELS = {
    # name: (constructor, opset, layout description)
    'timm-vit': (lambda: TimmViT(), 13, 'timm ViT: fused qkv, unbind (Split), scale after q·kᵀ, decomposed LayerNorm'),
    'deit-vit': (lambda: TimmViT(index_split=True, tanh_gelu=True), 14, 'DeiT: fused qkv, qkv[i] (Gather), tanh GELU'),
    'hf-vit': (lambda: HFViT(), 17, 'Hugging Face ViT: separate query/key/value, / sqrt(dh), LayerNormalization'),
    'hf-swin': (lambda: HFSwin(), 17, 'Hugging Face Swin: separate q/k/v, torch.roll shifts, relative bias, mask'),
    'tv-vit': (torchvision_vit, 13, 'torchvision ViT: nn.MultiheadAttention (in_proj, bmm), class token'),
    'tv-swin-pad': (lambda: PaddedSwin(), 17, 'torchvision Swin behind ZeroPad2d, window 4, three stages'),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', default='test/fixtures/layouts')
    ap.add_argument('--only', nargs='*')
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    index = {}
    for name, (make, opset, desc) in MODELS.items():
        if a.only and name not in a.only:
            continue
        torch.manual_seed(0)
        net = make().eval()
        x = torch.randn(2, CH, IMG, IMG)
        path = os.path.join(a.out, f'{name}.onnx')
        with torch.no_grad():
            y = net(x)
        # outside no_grad: nn.MultiheadAttention's inference fast path has no ONNX export
        torch.onnx.export(net, x, path, opset_version=opset, input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, do_constant_folding=True)
        index[name] = {'opset': opset, 'layout': desc, 'input': [CH, IMG, IMG],
                       'probe_input_seed': 0, 'probe_logits_row0': [round(float(v), 6) for v in y[0]]}
        print('exported', path, f'({os.path.getsize(path)} bytes)')
    with open(os.path.join(a.out, 'index.json'), 'w') as f:
        json.dump(index, f, indent=1)


if __name__ == '__main__':
    main()
