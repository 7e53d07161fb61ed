"""dsmini: a mini DeepSeek (MLA + DeepSeekMoE + MTP) for names, and the pieces to explore it.

The public API, re-exported; README.md (Layout) says where each module sits in the data flow.
"""

from .checkpoint import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from .config import PRESETS, ModelConfig, TrainConfig, preset
from .data import CharTokenizer, CorpusError, UnknownCharacterError, list_corpora, load_corpus, prepare_corpus
from .decoding import generate, speculative_decode
from .model import DSMini, ModelOutput
from .training import StepMetrics, Trainer, evaluate, pick_device, train
from .version import __version__

__all__ = [
    "__version__", "CharTokenizer", "CheckpointError", "CorpusError", "DSMini", "ModelConfig", "ModelOutput", "PRESETS",
    "StepMetrics", "TrainConfig", "Trainer", "UnknownCharacterError", "evaluate", "generate", "list_checkpoints",
    "list_corpora", "load_checkpoint", "load_corpus", "pick_device", "prepare_corpus", "preset", "save_checkpoint",
    "speculative_decode", "train",
]
