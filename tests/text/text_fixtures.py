"""Tiny text data and a tiny Hugging Face model folder, made on the spot (nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # any attempt to reach the hub fails fast instead of hanging
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

POSITIVE = ["great", "excellent", "love", "wonderful", "superb", "happy", "fantastic", "enjoyed"]
NEGATIVE = ["awful", "terrible", "hate", "boring", "poor", "sad", "broken", "disappointing"]
FILLER = [
    "the",
    "a",
    "this",
    "that",
    "film",
    "movie",
    "book",
    "story",
    "plot",
    "actor",
    "it",
    "was",
    "is",
    "very",
    "quite",
    "really",
    "and",
    "but",
    "with",
    "some",
    "of",
    "for",
    "on",
    "in",
    "my",
    "our",
    "their",
    "time",
    "day",
    "night",
    "one",
    "two",
    "first",
    "last",
    "end",
    "scene",
    "part",
    "music",
    "café",
    "naïve",
    "東京",
    "ünïcödé",
    "🙂",
]


def make_text_table(rows: int = 600, seed: int = 0, noise: float = 0.05) -> pd.DataFrame:
    """Reviews whose label is the majority of positive vs negative words, with ``noise`` of labels flipped.

    Also a numeric ``stars_hint`` (weakly informative) and a categorical ``shop`` for mixed-table tests.
    """
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(rows):
        positive, negative = rng.integers(0, 4, 2)
        if positive == negative:
            positive += 1
        words = list(rng.choice(FILLER, rng.integers(3, 12)))
        words += list(rng.choice(POSITIVE, positive)) + list(rng.choice(NEGATIVE, negative))
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
        labels.append("pos" if positive > negative else "neg")
    flip = rng.random(rows) < noise
    labels = [
        ("neg" if label == "pos" else "pos") if f else label for label, f in zip(labels, flip, strict=True)
    ]
    return pd.DataFrame(
        {
            "review": texts,
            "stars_hint": rng.normal(0, 1, rows).round(2),
            "shop": rng.choice(["north", "south"], rows),
            "label": labels,
        }
    )


def make_tiny_bert(folder: Path, texts: list[str], *, vocab_size: int = 400) -> Path:
    """A 2-layer, 32-wide BERT with random weights and a WordPiece tokenizer trained on ``texts``.

    Saved with ``save_pretrained`` so it loads through the same ``from_pretrained`` path as a real model.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special)
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    fast.save_pretrained(folder)
    save_tiny_bert_weights(folder, tokenizer.get_vocab_size(), positions=64)
    return folder


def save_tiny_bert_weights(folder: Path, vocab_size: int, *, positions: int) -> None:
    """Random weights (seed 0) of a 2-layer, 32-wide BERT, saved as ``from_pretrained`` reads them."""
    import torch
    from transformers import BertConfig, BertModel

    config = BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=vocab_size,
        max_position_embeddings=positions,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(folder)
