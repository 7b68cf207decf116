"""LSP latency: llmref against a bare pygls server, both over stdio, with a real LSP client.

    python benchmarks/lsp_latency.py [--quick] [--json] [--requests N] [--cold-starts N]

Both servers are spawned the same way (``python …`` with the same environment) and driven by
pygls' ``LanguageClient`` over stdio. The baseline is a bare pygls server (inline below) that
answers every hover with one static MarkupContent and every completion with a small static
list, so the ratios measure what llmref adds on top of pygls + JSON-RPC + process start.

Measured, for each server:

* hover and completion latency (request sent -> response parsed by the client), one request
  at a time, after a warm-up pass, over a mix of positions in two realistic documents (a
  ~200-line modeling_llama.py-style file and a markdown note in Chinese); p50 and p99;
* cold start: spawn -> initialize -> first hover card. For llmref the hover is retried until
  the card holds a real Q&A (``---``; before the index is loaded it says "Indexing the
  corpus…"), on a warm index cache (llmref is run once beforehand to build it); for the
  baseline it is the first hover. Repeated, median taken.

Targets (llmref / baseline): hover p99 <= 1.5x, completion p99 <= 2x, cold start <= 2x. Each
is reported PASS or MISS; the exit status is 0 regardless (speed is reported, not asserted).
Nothing is downloaded; the documents are written to a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]

TARGETS = {  # metric -> max ratio llmref / baseline
    "hover_p99": 1.5,
    "completion_p99": 2.0,
    "cold_start": 2.0,
}

# --- the baseline server ---------------------------------------------------------------------------

BASELINE_SERVER = r"""
from lsprotocol import types
from pygls.lsp.server import LanguageServer

server = LanguageServer("baseline", "0", text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
CARD = types.MarkupContent(
    kind=types.MarkupKind.Markdown,
    value="**RMS Norm** · 均方根归一化\n\nNormalizes by the root mean square.\n\n---\n\n#### 什么是 RMSNorm？\n\nRMSNorm 只做缩放，不做平移。",
)
ITEMS = [
    types.CompletionItem(label=label, kind=types.CompletionItemKind.Keyword, detail="static")
    for label in ("RMSNorm", "KV cache", "FlashAttention", "RoPE", "旋转位置编码")
]


@server.feature(types.TEXT_DOCUMENT_HOVER)
def hover(ls, params):
    return types.Hover(contents=CARD)


@server.feature(types.TEXT_DOCUMENT_COMPLETION)
def completion(ls, params):
    return types.CompletionList(is_incomplete=False, items=ITEMS)


server.start_io()
"""

# --- the documents ---------------------------------------------------------------------------------

MODELING_PY = '''\
# coding=utf-8
# Copyright 2022 EleutherAI and the HuggingFace Inc. team. All rights reserved.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""PyTorch LLaMA model (a trimmed copy in the style of transformers' modeling_llama.py)."""

import math
from typing import List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from ...activations import ACT2FN
from ...cache_utils import Cache, DynamicCache, StaticCache
from ...modeling_flash_attention_utils import _flash_attention_forward
from ...modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast
from ...modeling_utils import PreTrainedModel
from .configuration_llama import LlamaConfig

try:
    from flash_attn import flash_attn_func, flash_attn_varlen_func
except ImportError:  # flash-attention is optional
    flash_attn_func = flash_attn_varlen_func = None


class LlamaRMSNorm(nn.Module):
    def __init__(self, hidden_size, eps=1e-6):
        """LlamaRMSNorm is equivalent to T5LayerNorm."""
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, hidden_states):
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


class LlamaRotaryEmbedding(nn.Module):
    def __init__(self, dim, max_position_embeddings=2048, base=10000, device=None):
        super().__init__()
        self.dim = dim
        self.max_position_embeddings = max_position_embeddings
        self.base = base  # rope_theta in the config
        inv_freq = 1.0 / (self.base ** (torch.arange(0, self.dim, 2).float().to(device) / self.dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @torch.no_grad()
    def forward(self, x, position_ids):
        inv_freq_expanded = self.inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
        position_ids_expanded = position_ids[:, None, :].float()
        freqs = (inv_freq_expanded @ position_ids_expanded).transpose(1, 2)
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)


def rotate_half(x):
    """Rotates half the hidden dims of the input."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2 :]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, position_ids=None, unsqueeze_dim=1):
    """Applies Rotary Position Embedding (旋转位置编码) to the query and key tensors."""
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    q_embed = (q * cos) + (rotate_half(q) * sin)
    k_embed = (k * cos) + (rotate_half(k) * sin)
    return q_embed, k_embed


class LlamaMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.hidden_size = config.hidden_size
        self.intermediate_size = config.intermediate_size
        self.gate_proj = nn.Linear(self.hidden_size, self.intermediate_size, bias=False)
        self.up_proj = nn.Linear(self.hidden_size, self.intermediate_size, bias=False)
        self.down_proj = nn.Linear(self.intermediate_size, self.hidden_size, bias=False)
        self.act_fn = ACT2FN[config.hidden_act]  # SwiGLU: silu(gate) * up

    def forward(self, x):
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """The equivalent of torch.repeat_interleave(x, dim=1, repeats=n_rep) for GQA."""
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


class LlamaAttention(nn.Module):
    """Multi-headed attention from 'Attention Is All You Need' paper, with grouped-query attention."""

    def __init__(self, config: LlamaConfig, layer_idx: Optional[int] = None):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.attention_dropout = config.attention_dropout
        self.hidden_size = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = self.hidden_size // self.num_heads
        self.num_key_value_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.rope_theta = config.rope_theta
        self.is_causal = True
        self.q_proj = nn.Linear(self.hidden_size, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(self.hidden_size, self.num_key_value_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(self.hidden_size, self.num_key_value_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.hidden_size, self.hidden_size, bias=False)
        self.rotary_emb = LlamaRotaryEmbedding(self.head_dim, base=self.rope_theta)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.LongTensor] = None,
        past_key_values: Optional[Cache] = None,
        use_cache: bool = False,
        cache_position: Optional[torch.LongTensor] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Optional[Cache]]:
        bsz, q_len, _ = hidden_states.size()
        query_states = self.q_proj(hidden_states).view(bsz, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        key_states = self.k_proj(hidden_states).view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)
        value_states = self.v_proj(hidden_states).view(bsz, q_len, self.num_key_value_heads, self.head_dim).transpose(1, 2)

        cos, sin = self.rotary_emb(value_states, position_ids)
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)

        if past_key_values is not None:
            # the KV cache: keys and values of earlier tokens are stored, not recomputed
            cache_kwargs = {"sin": sin, "cos": cos, "cache_position": cache_position}
            key_states, value_states = past_key_values.update(key_states, value_states, self.layer_idx, cache_kwargs)

        key_states = repeat_kv(key_states, self.num_key_value_groups)
        value_states = repeat_kv(value_states, self.num_key_value_groups)

        attn_weights = torch.matmul(query_states, key_states.transpose(2, 3)) / math.sqrt(self.head_dim)
        if attention_mask is not None:  # the causal mask
            attn_weights = attn_weights + attention_mask[:, :, :, : key_states.shape[-2]]
        attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query_states.dtype)
        attn_weights = nn.functional.dropout(attn_weights, p=self.attention_dropout, training=self.training)
        attn_output = torch.matmul(attn_weights, value_states)
        attn_output = attn_output.transpose(1, 2).contiguous().reshape(bsz, q_len, -1)
        return self.o_proj(attn_output), attn_weights, past_key_values


class LlamaFlashAttention2(LlamaAttention):
    """Uses flash_attn_func when attn_implementation == "flash_attention_2"."""

    def forward(self, hidden_states, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False, cache_position=None):
        bsz, q_len, _ = hidden_states.size()
        query_states = self.q_proj(hidden_states).view(bsz, q_len, self.num_heads, self.head_dim)
        key_states = self.k_proj(hidden_states).view(bsz, q_len, self.num_key_value_heads, self.head_dim)
        value_states = self.v_proj(hidden_states).view(bsz, q_len, self.num_key_value_heads, self.head_dim)
        cos, sin = self.rotary_emb(value_states, position_ids)
        query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin, unsqueeze_dim=2)
        kv_cache = past_key_values
        if kv_cache is not None:
            key_states, value_states = kv_cache.update(key_states, value_states, self.layer_idx)
        attn_output = _flash_attention_forward(
            query_states, key_states, value_states, attention_mask, q_len, dropout=0.0, is_causal=self.is_causal
        )
        return self.o_proj(attn_output.reshape(bsz, q_len, -1)), None, past_key_values


class LlamaDecoderLayer(nn.Module):
    def __init__(self, config: LlamaConfig, layer_idx: int):
        super().__init__()
        self.self_attn = LlamaAttention(config=config, layer_idx=layer_idx)
        self.mlp = LlamaMLP(config)
        self.input_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, hidden_states, attention_mask=None, position_ids=None, past_key_values=None, use_cache=False):
        residual = hidden_states  # pre-norm residual connection
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, self_attn_weights, present = self.self_attn(
            hidden_states, attention_mask, position_ids, past_key_values, use_cache
        )
        hidden_states = residual + hidden_states
        residual = hidden_states
        hidden_states = self.post_attention_layernorm(hidden_states)
        hidden_states = residual + self.mlp(hidden_states)
        return hidden_states, self_attn_weights, present


class LlamaForCausalLM(PreTrainedModel):
    _supports_flash_attn_2 = True
    _supports_cache_class = True

    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = LlamaRMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.gradient_checkpointing = False

    def forward(self, input_ids=None, attention_mask=None, past_key_values=None, labels=None, use_cache=None):
        if use_cache and past_key_values is None:
            past_key_values = DynamicCache()
        hidden_states = self.embed_tokens(input_ids)
        for decoder_layer in self.layers:
            hidden_states, _, past_key_values = decoder_layer(hidden_states, attention_mask, None, past_key_values, use_cache)
        logits = self.lm_head(self.norm(hidden_states)).float()
        loss = None
        if labels is not None:  # next-token cross entropy
            shift_logits = logits[..., :-1, :].contiguous()
            loss = F.cross_entropy(shift_logits.view(-1, shift_logits.size(-1)), labels[..., 1:].reshape(-1))
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=past_key_values)

    @torch.no_grad()
    def sample_next(self, logits, temperature=1.0, top_p=0.9, top_k=50):
        """Temperature, top_k and top_p (nucleus) sampling of the next token."""
        logits = logits[:, -1, :] / temperature
        probs = F.softmax(logits, dim=-1)
        return torch.multinomial(probs, num_samples=1)


def _being_typed(config, hidden_states, past_key_values):
    # what the buffer holds while someone is typing (completion positions)
    norm = RMSN
    cache = kv_ca
    attn = flash
    states = repeat_
    q, k = apply_rot
    cache = past_key
    heads = num_key
    mask = causal
    lora = LoraCon
    return norm, cache, attn, states, q, k, heads, mask, lora
'''

NOTE_MD = """\
# 读书笔记：LLaMA 结构与推理优化

这份笔记整理了 LLaMA 系列模型的结构细节，以及推理阶段常见的优化手段。

## 归一化

LLaMA 使用 RMSNorm（均方根归一化）代替 LayerNorm：只做缩放，不减均值，计算更省。
在 transformers 里对应的类是 `LlamaRMSNorm`，超参数是 `rms_norm_eps`。
采用 Pre-Norm 结构，即在注意力和前馈层之前做归一化，训练更稳定。

## 位置编码

旋转位置编码（RoPE）把位置信息写进 query 和 key 的旋转角度里，内积只依赖相对位置。
实现上是 `apply_rotary_pos_emb` 和 `rotate_half`，频率由 `rope_theta` 决定。
长上下文扩展常用 NTK 插值、YaRN 等方法，对旋转位置编码做缩放。

## 注意力

分组查询注意力（GQA）让多个 query 头共享一组 key/value 头，`repeat_kv` 负责把 KV 头复制对齐。
多查询注意力（MQA）是它的极端情况：所有 query 头共享同一组 KV。
FlashAttention 通过分块计算和重计算减少显存读写，`flash_attn_func` 是它的入口。

## 推理

KV cache 缓存历史 token 的 key 和 value，避免每一步重复计算；代价是显存随序列长度线性增长。
transformers 中通过 `past_key_values` 传递，新版本用 `DynamicCache`。
PagedAttention 把 KV 缓存按页管理，vLLM 用它减少显存碎片。
投机解码（speculative decoding）用小模型起草、大模型验证，加速自回归生成。

## 训练

混合精度训练用 bf16 或 fp16 计算、fp32 保存主权重，配合梯度缩放。
LoRA 只训练低秩增量矩阵，`LoraConfig` 里设置秩 r 和 `lora_alpha`。
ZeRO 把优化器状态、梯度和参数切分到多张卡上，DeepSpeed 实现了它。
梯度检查点（gradient checkpointing）用重计算换显存。

## 采样

温度（temperature）调节分布的尖锐程度，top-k 和 top-p（核采样）截断候选集合。
重复惩罚（repetition penalty）降低已出现 token 的概率。

## 对齐

RLHF 先训练奖励模型，再用 PPO 优化策略；DPO 直接用偏好数据优化，不需要奖励模型。
SFT（监督微调）是对齐的第一步。

## 待整理（正在输入）

- 旋转
- KV ca
- 混合
- 分组查询
- flash
- 投机
- 键值
"""

# what to hover: (document, needle, offset into the needle)
HOVERS = [
    ("py", "class LlamaRMSNorm", 8),
    ("py", "LlamaRMSNorm(config.hidden_size", 3),
    ("py", "def repeat_kv", 6),
    ("py", "key_states = repeat_kv", 16),
    ("py", "def apply_rotary_pos_emb", 10),
    ("py", "key_states = apply_rotary_pos_emb", 30),
    ("py", "if past_key_values is not None", 6),
    ("py", "kv_cache = past_key_values", 2),
    ("py", "kv_cache.update", 1),
    ("py", "import flash_attn_func", 9),
    ("py", "class LlamaRotaryEmbedding", 10),
    ("py", 'register_buffer("inv_freq"', 19),
    ("py", "self.rope_theta = config", 7),
    ("py", "num_key_value_heads = config", 5),
    ("py", "the KV cache", 8),  # a comment in code: llmref gives no card here
    ("py", "_supports_flash_attn_2", 4),
    ("py", "DynamicCache()", 3),
    ("py", "top_p=0.9", 2),
    ("py", "(旋转位置编码)", 2),
    ("py", "self.gate_proj", 7),  # SwiGLU, a card without a Q&A
    ("py", "hidden_states.pow", 4),  # no term
    ("py", "torch.rsqrt", 3),  # no term
    ("md", "旋转位置编码（RoPE）", 2),
    ("md", "对旋转位置编码做缩放", 5),
    ("md", "分组查询注意力", 3),
    ("md", "KV cache 缓存", 1),
    ("md", "混合精度训练", 2),
    ("md", "`past_key_values`", 4),
    ("md", "均方根归一化", 2),
    ("md", "投机解码", 1),
    ("md", "FlashAttention 通过", 5),
    ("md", "梯度检查点", 2),
    ("md", "这份笔记整理了", 3),  # no term
    ("md", "读书笔记", 1),  # no term
]

# where to complete: (document, needle, offset) -- the cursor sits after needle[:offset]
COMPLETIONS = [
    ("py", "norm = RMSN", 11),
    ("py", "cache = kv_ca", 13),
    ("py", "attn = flash", 12),
    ("py", "states = repeat_", 16),
    ("py", "q, k = apply_rot", 16),
    ("py", "cache = past_key\n", 16),
    ("py", "heads = num_key\n", 15),
    ("py", "mask = causal", 13),
    ("py", "lora = LoraCon", 14),
    ("py", "class LlamaRMSNorm", 14),  # mid-identifier: "LlamaRMS"
    ("py", "key_states = repeat_kv", 19),  # "repe"
    ("py", "inv_freq_expanded", 6),  # "inv_f"
    ("md", "- 旋转", 4),
    ("md", "- KV ca", 7),
    ("md", "- 混合", 4),
    ("md", "- 分组查询", 6),
    ("md", "- flash", 7),
    ("md", "- 投机", 4),
    ("md", "- 键值", 4),
    ("md", "LLaMA 使用 RMSN", 14),
]

COLD_HOVER = ("py", "class LlamaRMSNorm", 8)


def position_of(text: str, needle: str, offset: int) -> types.Position:
    """The LSP position (UTF-16 columns) of ``needle``'s start + offset characters."""
    at = text.find(needle)
    if at < 0:
        raise ValueError(f"not in the document: {needle!r}")
    at += offset
    line = text.count("\n", 0, at)
    col_text = text[text.rfind("\n", 0, at) + 1 : at]
    return types.Position(line=line, character=len(col_text.encode("utf-16-le")) // 2)


# --- a session with one server ---------------------------------------------------------------------


@dataclass
class ServerSpec:
    name: str
    argv: list[str]
    env: dict[str, str]


@dataclass
class Docs:
    folder: Path
    uris: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    languages: dict[str, str] = field(default_factory=dict)

    @classmethod
    def write(cls, folder: Path) -> Docs:
        docs = cls(folder)
        for key, name, language, text in (
            ("py", "modeling_llama.py", "python", MODELING_PY),
            ("md", "notes.md", "markdown", NOTE_MD),
        ):
            path = folder / name
            path.write_text(text, encoding="utf-8")
            docs.uris[key] = path.as_uri()
            docs.texts[key] = text
            docs.languages[key] = language
        return docs

    def hover_params(self, spec: tuple[str, str, int]) -> types.HoverParams:
        key, needle, offset = spec
        return types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=self.uris[key]),
            position=position_of(self.texts[key], needle, offset),
        )

    def completion_params(self, spec: tuple[str, str, int]) -> types.CompletionParams:
        key, needle, offset = spec
        return types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=self.uris[key]),
            position=position_of(self.texts[key], needle, offset),
            context=types.CompletionContext(trigger_kind=types.CompletionTriggerKind.Invoked),
        )


def client_capabilities() -> types.ClientCapabilities:
    """Roughly what VS Code announces for the features measured here."""
    return types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            synchronization=types.TextDocumentSyncClientCapabilities(did_save=True),
            hover=types.HoverClientCapabilities(
                content_format=[types.MarkupKind.Markdown, types.MarkupKind.PlainText]
            ),
            completion=types.CompletionClientCapabilities(
                completion_item=types.ClientCompletionItemOptions(
                    snippet_support=True,
                    documentation_format=[types.MarkupKind.Markdown, types.MarkupKind.PlainText],
                    resolve_support=types.ClientCompletionItemResolveOptions(
                        properties=["documentation", "detail"]
                    ),
                ),
                context_support=True,
            ),
        ),
        workspace=types.WorkspaceClientCapabilities(
            configuration=True,
            workspace_folders=True,
            did_change_watched_files=types.DidChangeWatchedFilesClientCapabilities(
                dynamic_registration=True
            ),
        ),
        window=types.WindowClientCapabilities(work_done_progress=True),
        general=types.GeneralClientCapabilities(
            position_encodings=[types.PositionEncodingKind.Utf16]
        ),
    )


class Session:
    """One spawned server and a pygls LanguageClient talking to it over stdio."""

    def __init__(self, spec: ServerSpec, docs: Docs) -> None:
        self.spec = spec
        self.docs = docs
        self.client = LanguageClient("lsp_latency", "1")
        self.stderr = bytearray()
        self._drain: asyncio.Task | None = None
        client = self.client

        # answer what the server asks of an editor, as an editor would
        @client.feature(types.WINDOW_WORK_DONE_PROGRESS_CREATE)
        def _progress_create(_params):
            return None

        @client.feature(types.CLIENT_REGISTER_CAPABILITY)
        def _register(_params):
            return None

        @client.feature(types.WORKSPACE_CONFIGURATION)
        def _configuration(params):
            return [None for _ in params.items]

        for note in (types.PROGRESS, types.WINDOW_LOG_MESSAGE, types.WINDOW_SHOW_MESSAGE):
            client.feature(note)(lambda *_a: None)

    async def spawn(self) -> None:
        await self.client.start_io(*self.spec.argv, env=self.spec.env)
        self._drain = asyncio.create_task(self._drain_stderr())

    async def _drain_stderr(self) -> None:
        stream = self.client._server.stderr if self.client._server else None  # noqa: SLF001
        if stream is None:
            return
        while chunk := await stream.read(65536):
            self.stderr += chunk
            del self.stderr[:-20000]

    async def initialize(self) -> types.InitializeResult:
        folder = self.docs.folder
        return await self.client.initialize_async(
            types.InitializeParams(
                process_id=os.getpid(),
                capabilities=client_capabilities(),
                root_uri=folder.as_uri(),
                workspace_folders=[types.WorkspaceFolder(uri=folder.as_uri(), name=folder.name)],
                initialization_options={},
                client_info=types.ClientInfo(name="lsp_latency", version="1"),
            )
        )

    def initialized_and_open(self) -> None:
        self.client.initialized(types.InitializedParams())
        for key, uri in self.docs.uris.items():
            self.client.text_document_did_open(
                types.DidOpenTextDocumentParams(
                    text_document=types.TextDocumentItem(
                        uri=uri,
                        language_id=self.docs.languages[key],
                        version=1,
                        text=self.docs.texts[key],
                    )
                )
            )

    async def start(self) -> None:
        await self.spawn()
        await self.initialize()
        self.initialized_and_open()

    def server_cpu_s(self) -> float | None:
        """CPU time (user + system, all threads) the server process has used so far (Linux)."""
        server = self.client._server  # noqa: SLF001
        try:
            fields = Path(f"/proc/{server.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (AttributeError, OSError, ValueError, IndexError):
            return None

    async def hover(self, params: types.HoverParams) -> str | None:
        result = await self.client.text_document_hover_async(params)
        if result is None:
            return None
        contents = result.contents
        return contents.value if isinstance(contents, types.MarkupContent) else str(contents)

    async def complete(self, params: types.CompletionParams) -> int:
        result = await self.client.text_document_completion_async(params)
        if result is None:
            return 0
        items = result.items if isinstance(result, types.CompletionList) else result
        return len(items)

    async def wait_indexed(self, timeout: float) -> None:
        """Until llmref.search answers with a list (the corpus is loaded)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = await self.client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="llmref.search", arguments=["KV cache"])
            )
            if isinstance(result, list):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(
            f"{self.spec.name}: the corpus did not load in {timeout:.0f}s{self.stderr_tail()}"
        )

    def stderr_tail(self) -> str:
        text = self.stderr.decode("utf-8", "replace").strip()
        return f"\nserver stderr:\n{text[-2000:]}" if text else ""

    async def close(self) -> None:
        try:
            await stop_client(self.client)
        finally:
            if self._drain is not None:
                self._drain.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._drain


async def stop_client(client: LanguageClient) -> None:
    """shutdown + exit, then the process is stopped; killed if it does not go in 5 s."""
    server = client._server  # noqa: SLF001
    try:
        if server is not None and server.returncode is None:
            await asyncio.wait_for(client.shutdown_async(None), 5)
            client.exit(None)
            await asyncio.wait_for(client.stop(), 5)
    except Exception:  # a server that is gone or stuck: killed below
        pass
    finally:
        if server is not None and server.returncode is None:
            server.kill()
            with contextlib.suppress(Exception):
                await server.wait()


# --- measurements ----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    data = sorted(values)
    if not data:
        return float("nan")
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary(values_s: list[float]) -> dict:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
    }


async def measure_latency(specs: list[ServerSpec], docs: Docs, requests: int) -> dict:
    """Hover and completion latency of each server, the servers running side by side and
    asked in turn (one request in flight at a time), so that drifts in machine load hit all
    of them alike."""
    hover_params = [docs.hover_params(h) for h in HOVERS]
    completion_params = [docs.completion_params(c) for c in COMPLETIONS]
    sessions = [Session(spec, docs) for spec in specs]
    times: dict[str, dict[str, list[float]]] = {
        s.spec.name: {"hover": [], "completion": [], "hover_first": [], "completion_first": []}
        for s in sessions
    }
    stats: dict[str, dict] = {s.spec.name: {"hover_hits": 0, "items": 0} for s in sessions}

    async def timed(session: Session, kind: str, params) -> object:
        t = time.perf_counter()
        if kind == "hover":
            result: object = await session.hover(params)
        else:
            result = await session.complete(params)
        times[session.spec.name][kind].append(time.perf_counter() - t)
        return result

    try:
        for session in sessions:
            await session.start()
            if session.spec.name == "llmref":
                await session.wait_indexed(120)
        # warm-up: every position once (first cards rendered, lazy imports done), timed apart
        for session in sessions:
            for params in hover_params:
                text = await timed(session, "hover", params)
                stats[session.spec.name]["hover_hits"] += text is not None
            for params in completion_params:
                stats[session.spec.name]["items"] += await timed(session, "completion", params)
            for kind in ("hover", "completion"):
                times[session.spec.name][f"{kind}_first"] = times[session.spec.name][kind]
                times[session.spec.name][kind] = []
        gc.collect()
        gc.disable()  # the client's collector would add its pauses to either server's numbers
        try:
            for kind, plist in (("hover", hover_params), ("completion", completion_params)):
                for i in range(requests):
                    params = plist[i % len(plist)]
                    order = sessions if i % 2 == 0 else sessions[::-1]
                    for session in order:
                        await timed(session, kind, params)
        finally:
            gc.enable()
    finally:
        for session in sessions:
            await session.close()
    return {
        name: {
            **{kind: summary(values) for kind, values in t.items()},
            "hover_positions": len(hover_params),
            "hover_hits": stats[name]["hover_hits"],
            "completion_positions": len(completion_params),
            "completion_items_per_request": stats[name]["items"] / len(completion_params),
        }
        for name, t in times.items()
    }


async def cold_start(spec: ServerSpec, docs: Docs, *, need_qa: bool, timeout: float = 60) -> dict:
    """spawn -> initialize -> first hover card (with a Q&A part when need_qa)."""
    params = docs.hover_params(COLD_HOVER)
    session = Session(spec, docs)
    try:
        t0 = time.perf_counter()
        await session.spawn()
        await session.initialize()
        t_init = time.perf_counter() - t0
        session.initialized_and_open()
        t_first = None
        tries = 0
        while True:
            text = await session.hover(params)
            tries += 1
            now = time.perf_counter() - t0
            if text and t_first is None:
                t_first = now
            if text and (not need_qa or "\n---\n" in text):
                t_card = now
                cpu = session.server_cpu_s()
                break
            if now > timeout:
                raise TimeoutError(
                    f"{spec.name}: no hover card after {timeout:.0f}s{session.stderr_tail()}"
                )
            await asyncio.sleep(0.01)
    finally:
        await session.close()
    return {
        "initialize_s": t_init,
        "first_hover_s": t_first,
        "card_s": t_card,
        "server_cpu_s": cpu,
        "tries": tries,
    }


def server_env(cache: Path, pycache: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "server")
    env["LLMREF_CACHE_DIR"] = str(cache)
    env["LLMREF_CONFIG"] = str(cache / "no-config.yaml")  # does not exist: defaults
    env.pop("LLMREF_CORPUS", None)
    env.pop("LLMREF_DATABASE", None)  # never a team database the caller happens to have
    if pycache is not None:
        # compiled bytecode kept (in a temporary folder, not in the checkout), as it would be
        # for an installed package, even where PYTHONDONTWRITEBYTECODE is set
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def llmref_spec(env: dict[str, str]) -> ServerSpec:
    return ServerSpec("llmref", [sys.executable, "-m", "llmref", "serve", "--stdio"], env)


def baseline_spec(env: dict[str, str]) -> ServerSpec:
    # the same interpreter, the same environment
    return ServerSpec("baseline", [sys.executable, "-c", BASELINE_SERVER], env)


async def run(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="llmref-lsp-latency-"))
    cache = Path(args.cache_dir) if args.cache_dir else work / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    docs_dir = work / "workspace"
    docs_dir.mkdir()
    docs = Docs.write(docs_dir)
    env = server_env(cache, None if args.no_pycache else work / "pycache")
    llmref, baseline = llmref_spec(env), baseline_spec(env)
    progress = (
        (lambda msg: print(msg, file=sys.stderr, flush=True))
        if not args.json
        else (lambda msg: None)
    )
    try:
        started = time.perf_counter()
        progress("building / loading the llmref index (warm cache for the cold starts)…")
        warm = Session(llmref, docs)
        try:
            await warm.start()
            await warm.wait_indexed(300)
        finally:
            await warm.close()
        build_s = time.perf_counter() - started

        progress(f"latency: {args.requests} hovers + {args.requests} completions per server…")
        latency = await measure_latency([llmref, baseline], docs, args.requests)

        progress(f"cold start × {args.cold_starts} per server…")
        colds: dict[str, list[dict]] = {"baseline": [], "llmref": []}
        for _ in range(args.cold_starts):  # interleaved, so drifts hit both alike
            colds["baseline"].append(await cold_start(baseline, docs, need_qa=False))
            colds["llmref"].append(await cold_start(llmref, docs, need_qa=True))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    servers: dict[str, dict] = {}
    for name in ("llmref", "baseline"):
        runs = colds[name]
        servers[name] = {
            **latency[name],
            "cold_start": {
                "runs": len(runs),
                "median_ms": statistics.median(r["card_s"] for r in runs) * 1000,
                "max_ms": max(r["card_s"] for r in runs) * 1000,
                "initialize_median_ms": statistics.median(r["initialize_s"] for r in runs) * 1000,
                "first_hover_median_ms": statistics.median(r["first_hover_s"] for r in runs) * 1000,
                "hover_tries_median": statistics.median(r["tries"] for r in runs),
                "server_cpu_median_ms": (
                    statistics.median(r["server_cpu_s"] for r in runs) * 1000
                    if all(r["server_cpu_s"] is not None for r in runs)
                    else None
                ),
                "card_ms": [r["card_s"] * 1000 for r in runs],
            },
        }
    values = {
        "hover_p99": lambda s: s["hover"]["p99_ms"],
        "completion_p99": lambda s: s["completion"]["p99_ms"],
        "cold_start": lambda s: s["cold_start"]["median_ms"],
    }
    targets = {}
    for metric, limit in TARGETS.items():
        ours, base = values[metric](servers["llmref"]), values[metric](servers["baseline"])
        ratio = ours / base if base else float("inf")
        targets[metric] = {
            "llmref_ms": ours,
            "baseline_ms": base,
            "ratio": ratio,
            "max_ratio": limit,
            "pass": ratio <= limit,
        }
    return {
        "config": {
            "requests": args.requests,
            "cold_starts": args.cold_starts,
            "quick": args.quick,
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "index_warmup_s": build_s,
        },
        "servers": servers,
        "targets": targets,
    }


def print_table(report: dict) -> None:
    s = report["servers"]
    L, B = s["llmref"], s["baseline"]
    rows = [
        ("hover p50", L["hover"]["p50_ms"], B["hover"]["p50_ms"], None),
        ("hover p99", L["hover"]["p99_ms"], B["hover"]["p99_ms"], "hover_p99"),
        ("completion p50", L["completion"]["p50_ms"], B["completion"]["p50_ms"], None),
        ("completion p99", L["completion"]["p99_ms"], B["completion"]["p99_ms"], "completion_p99"),
        ("first hover per position p50", L["hover_first"]["p50_ms"], B["hover_first"]["p50_ms"], None),
        ("first hover per position p99", L["hover_first"]["p99_ms"], B["hover_first"]["p99_ms"], None),
        ("cold start: initialize (median)", L["cold_start"]["initialize_median_ms"],
         B["cold_start"]["initialize_median_ms"], None),
        ("cold start: first hover (median)", L["cold_start"]["first_hover_median_ms"],
         B["cold_start"]["first_hover_median_ms"], None),
        ("cold start: first Q&A card (median)", L["cold_start"]["median_ms"],
         B["cold_start"]["median_ms"], "cold_start"),
        ("cold start: first Q&A card (max)", L["cold_start"]["max_ms"], B["cold_start"]["max_ms"], None),
    ]  # fmt: skip
    if L["cold_start"]["server_cpu_median_ms"] and B["cold_start"]["server_cpu_median_ms"]:
        rows.append(("cold start: server CPU until card (median)",
                     L["cold_start"]["server_cpu_median_ms"], B["cold_start"]["server_cpu_median_ms"], None))  # fmt: skip
    cfg = report["config"]
    print(
        f"LSP latency over stdio — {cfg['requests']} requests per feature, "
        f"{cfg['cold_starts']} cold starts, Python {cfg['python']}, {cfg['cpus']} CPUs"
    )
    print(
        f"positions: {L['hover_positions']} hover ({L['hover_hits']} with a llmref card), "
        f"{L['completion_positions']} completion "
        f"(llmref {L['completion_items_per_request']:.1f} items/request)"
    )
    print()
    header = f"{'':42} {'llmref ms':>10} {'baseline ms':>12} {'ratio':>7}  target"
    print(header)
    print("-" * len(header) + "-" * 8)
    for label, ours, base, metric in rows:
        ratio = ours / base if base else float("inf")
        line = f"{label:42} {ours:10.2f} {base:12.2f} {ratio:6.2f}x"
        if metric:
            t = report["targets"][metric]
            line += f"  <= {t['max_ratio']:.1f}x {'PASS' if t['pass'] else 'MISS'}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50 requests, 2 cold starts")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--requests", type=int, help="requests per feature (default 400)")
    parser.add_argument("--cold-starts", type=int, help="cold starts per server (default 5)")
    parser.add_argument(
        "--no-pycache",
        action="store_true",
        help="leave the bytecode cache settings of the environment alone",
    )
    parser.add_argument(
        "--cache-dir", help="llmref index cache (default: a temporary one, built first)"
    )
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = 50 if args.quick else 400
    if args.cold_starts is None:
        args.cold_starts = 2 if args.quick else 5
    report = asyncio.run(run(args))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_table(report)
    return 0  # speed is reported, not asserted


if __name__ == "__main__":
    sys.exit(main())
