"""Names in, tensors out: the built-in and uploaded corpora (corpora, builtin), the tokenizer that frames a
name, seeded splits, and a corpus prepared as encoded splits and batches (batches)."""

from .batches import (
    CorpusData,
    EncodedSplit,
    HeldOut,
    HeldOutCharacterError,
    corpus_tokenizer,
    count_target_tokens,
    get_batch,
    prepare_corpus,
    validation_set,
)
from .builtin import list_corpora, list_corpus_domains
from .corpora import MAX_NAME_LEN, Corpus, Dropped, corpus_from_bytes, line_of, load_corpus
from .file_kind import file_kind
from .splits import split_names
from .tokenizer import (
    BOUNDARY_ID,
    BOUNDARY_SYMBOL,
    IGNORE_INDEX,
    CharTokenizer,
    CorpusError,
    CorpusStats,
    LabelledNames,
    UnknownCharacterError,
    corpus_stats,
    default_block_size,
    encode_names,
    nfc,
)

__all__ = [
    "BOUNDARY_ID",
    "BOUNDARY_SYMBOL",
    "CharTokenizer",
    "Corpus",
    "CorpusData",
    "CorpusError",
    "CorpusStats",
    "Dropped",
    "EncodedSplit",
    "HeldOut",
    "HeldOutCharacterError",
    "IGNORE_INDEX",
    "LabelledNames",
    "MAX_NAME_LEN",
    "UnknownCharacterError",
    "corpus_from_bytes",
    "corpus_stats",
    "corpus_tokenizer",
    "count_target_tokens",
    "default_block_size",
    "encode_names",
    "file_kind",
    "get_batch",
    "line_of",
    "list_corpora",
    "list_corpus_domains",
    "load_corpus",
    "nfc",
    "prepare_corpus",
    "split_names",
    "validation_set",
]
