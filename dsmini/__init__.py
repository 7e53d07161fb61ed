"""dsmini: a mini DeepSeek (MLA + DeepSeekMoE + MTP) for names, and the pieces to explore it.

The public API, re-exported; README.md (Layout) says where each module sits in the data flow.
"""

__version__ = "0.1.0"

from .builtin_corpora import list_corpora
from .checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from .checkpoint_errors import CheckpointError
from .config import PRESETS, ModelConfig, TrainConfig, preset
from .corpora import load_corpus
from .data import CharTokenizer, CorpusError, UnknownCharacterError, prepare_corpus
from .device import pick_device
from .generate import generate
from .model import DSMini, ModelOutput
from .speculative import speculative_decode
from .train import StepMetrics, Trainer, evaluate, train

__all__ = [
    "CharTokenizer", "CheckpointError", "CorpusError", "DSMini", "ModelConfig", "ModelOutput", "PRESETS",
    "StepMetrics", "TrainConfig", "Trainer", "UnknownCharacterError", "evaluate", "generate", "list_checkpoints",
    "list_corpora", "load_checkpoint", "load_corpus", "pick_device", "prepare_corpus", "preset", "save_checkpoint",
    "speculative_decode", "train",
]
