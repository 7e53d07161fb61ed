"""Nothing crashes, nothing is lost: every field of a checkpoint corrupted in turn (CASES), a save killed
at each of its steps, shipped checkpoints read-only, and the app's picker around all of it."""

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from app import PAGES
from dsmini.checkpoint import (
    CheckpointError,
    CheckpointExistsError,
    atomic,
    copy_checkpoint,
    corpus_reference,
    load_checkpoint,
    save_checkpoint,
    scan_checkpoints,
)
from dsmini.checkpoint.names import next_free_name
from dsmini.config import TrainConfig, preset
from dsmini.data import CharTokenizer, prepare_corpus
from dsmini.i18n import t
from dsmini.model import DSMini
from pages import _ui_models as ui_models
from tests.helpers import SHIPPED, app_test

SHIPPED_NAMES = ["en-names", "ru-en-names", "ru-en-noisy", "ru-en-softmax", "ru-full-names", "ru-names",
                 "ru-names-mtp2"]
CHARS = list("abcdefghijk")
WORDS = [a + b + c for a in "abcd" for b in "efgh" for c in "ijk"]


def make_model(seed: int) -> DSMini:
    torch.manual_seed(seed)
    return DSMini(preset("tiny", vocab_size=len(CHARS) + 1, block_size=16))


def history_rows(n: int = 3) -> list[dict]:
    """Rows with every StepMetrics key (dsmini.training.trainer), as a labelled run records them."""
    return [
        {"step": i, "loss": 3.0 - 0.1 * i, "main_loss": 2.9, "mtp_losses": [3.1], "aux_loss": 0.0, "lr": 1e-3,
         "grad_norm": 0.5, "tokens": 40, "tokens_per_sec": 1000.0, "elapsed": 0.1 * i,
         "expert_load": [[10, 12, 9, 9]], "dropped": [0], "val_loss": 2.8 if i == n else None,
         "samples": ["abc"] if i == n else None, "domain_mi": [0.1 * i], "domain_mi_initial": [0.05]}
        for i in range(1, n + 1)
    ]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """One checkpoint with every field filled: optimizer state, RNG, history, labelled corpus, train config."""
    model = make_model(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randint(len(CHARS) + 1, (2, 8))
    model(x, targets=x).loss.backward()
    opt.step()
    domains = ["vowel" if w[0] == "a" else "consonant" for w in WORDS]
    corpus = corpus_reference(prepare_corpus(WORDS, 4, 42, corpus_name="my-names", domains=domains))
    return save_checkpoint(
        tmp_path_factory.mktemp("base"), "base", model, CharTokenizer(CHARS), train_config=TrainConfig(steps=3),
        corpus=corpus, history=history_rows(), summary={"steps": 3, "val_loss": 2.8, "best_val_loss": 2.8,
                                                      "train_seconds": 1.5, "stop_reason": "completed"},
        step=3, optimizer_states={"adamw": opt.state_dict()}, rng_states={"batches": torch.Generator().get_state()},
    )


# the case table ---------------------------------------------------------------------------------------
#
# Each case corrupts one thing in a copy of `base` ("victim", beside an untouched "bystander") and names
# the outcome it must have:
#   REFUSED   listing skips it with a reason and loading raises CheckpointError, both naming the file and
#             `text` (the field); the bystander is still listed
#   AT_LOAD   the JSON is fine, the data is not (found only by hashing or reading tensors): listed, but
#             loading raises CheckpointError naming `text`
#   ACCEPTED  a generous reading of something a newer writer may add: listed and loaded, weights intact
# Anything else (another exception type, a refusal with no field, an accepted corruption) fails the test.

REFUSED, AT_LOAD, ACCEPTED = "refused", "refused at load", "accepted"


@dataclass(frozen=True)
class Case:
    id: str
    corrupt: Callable[[Path], None]  # changes the checkpoint folder it is given
    outcome: str
    text: str = ""  # what the error message must contain (the field)


def meta_edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A corruption of checkpoint.json: `change` edits the parsed JSON in place."""

    def corrupt(path: Path) -> None:
        meta = json.loads((path / "checkpoint.json").read_text())
        change(meta)
        (path / "checkpoint.json").write_text(json.dumps(meta))  # allow_nan: a NaN case writes a NaN literal

    return corrupt


def setter(*keys, value):
    """meta[k1][k2]... = value (a key that is missing is created)."""

    def change(meta):
        node = meta
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return meta_edit(change)


def deleter(*keys):
    def change(meta):
        node = meta
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]

    return meta_edit(change)


def write_bytes(data: bytes, file_name: str = "checkpoint.json"):
    return lambda path: (path / file_name).write_bytes(data)


def flip_byte(file_name: str):
    def corrupt(path: Path) -> None:
        data = bytearray((path / file_name).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (path / file_name).write_bytes(bytes(data))

    return corrupt


def truncate(file_name: str):
    return lambda path: (path / file_name).write_bytes((path / file_name).read_bytes()[:100])


def remove(file_name: str):
    return lambda path: (path / file_name).unlink()


def appended(text: str):
    """checkpoint.json with `text` added as its last member (raw: json.dumps would refuse some of it)."""
    def corrupt(path: Path) -> None:
        data = (path / "checkpoint.json").read_text().rstrip()
        (path / "checkpoint.json").write_text(data[:-1] + ", " + text + "}")

    return corrupt


def replaced_by(make: Callable[[Path], None], file_name: str):
    """`file_name` replaced by what `make(path)` creates there (a FIFO, a link to a device)."""
    def corrupt(path: Path) -> None:
        (path / file_name).unlink()
        make(path / file_name)

    return corrupt


def rename_tensor_in_tree(meta):
    """Point the first optimizer tensor reference at a name the optimizer file does not have."""
    def walk(node):
        if isinstance(node, dict):
            if "tensor" in node:
                node["tensor"] = "adamw/state/999/exp_avg"
                return True
            return any(walk(v) for v in node.values())
        if isinstance(node, list):
            return any(walk(v) for v in node)
        return False

    assert walk(meta["optimizer"]["states"])


CASES = [
    # the whole file
    Case("json-not-json", write_bytes(b"{not json"), REFUSED, "not valid JSON"),
    Case("json-not-utf8", write_bytes(b'{"format": "\xff\xfe"}'), REFUSED, "not valid JSON"),
    Case("json-a-list", write_bytes(b"[1, 2]"), REFUSED, "not a dsmini checkpoint"),
    Case("json-nested-too-deep", write_bytes(b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), REFUSED,
         "not valid JSON"),
    Case("json-unknown-top-level-field", setter("notes", value={"by": "a newer dsmini"}), ACCEPTED),
    # the adversary's findings: a key given twice (json keeps the last), a number Python will not convert
    Case("json-duplicate-key", appended('"step": 999999'), REFUSED, "duplicate key 'step'"),
    Case("json-5001-digit-integer", appended('"notes": ' + "9" * 5001), REFUSED, "not valid JSON: Exceeds the limit"),
    Case("json-a-fifo", replaced_by(os.mkfifo, "checkpoint.json"), REFUSED, "a FIFO (named pipe), not a regular file"),
    Case("json-link-to-dev-zero", replaced_by(lambda p: p.symlink_to("/dev/zero"), "checkpoint.json"), REFUSED,
         "a character device, not a regular file (through a link)"),
    # format / version
    Case("format-missing", deleter("format"), REFUSED, "not a dsmini checkpoint"),
    Case("format-foreign", setter("format", value="keras"), REFUSED, "format 'keras'"),
    Case("version-string", setter("format_version", value="1"), REFUSED, "format_version '1'"),
    Case("version-true", setter("format_version", value=True), REFUSED, "format_version True"),
    Case("version-future", setter("format_version", value=2), REFUSED, "another version of dsmini"),
    # model_config
    Case("model-config-missing", deleter("model_config"), REFUSED, "'model_config' is missing"),
    Case("model-config-a-list", setter("model_config", value=[1]), REFUSED, "'model_config' must be an object"),
    Case("model-config-d-model-text", setter("model_config", "d_model", value="abc"), REFUSED,
         "'model_config.d_model' must be int"),
    Case("model-config-d-model-float", setter("model_config", "d_model", value=32.5), REFUSED,
         "'model_config.d_model' must be int"),
    Case("model-config-n-layers-bool", setter("model_config", "n_layers", value=True), REFUSED,
         "'model_config.n_layers' must be int"),
    Case("model-config-dropout-text", setter("model_config", "dropout", value="none"), REFUSED,
         "'model_config.dropout' must be float"),
    Case("model-config-capacity-text", setter("model_config", "capacity_factor", value="big"), REFUSED,
         "'model_config.capacity_factor'"),
    Case("model-config-top-k-out-of-range", setter("model_config", "top_k", value=99), REFUSED, "ModelConfig.top_k"),
    Case("model-config-unknown-field", setter("model_config", "turbo", value=1), REFUSED, "unknown ModelConfig fields"),
    Case("model-config-vocab-mismatch", setter("model_config", "vocab_size", value=20), REFUSED,
         "model_config.vocab_size is 20"),
    Case("model-config-huge-block-size", setter("model_config", "block_size", value=10**9), REFUSED,
         "too big a model: block_size is 1,000,000,000"),  # refused before a 10^9-position RoPE table is built
    Case("model-config-huge-width", setter("model_config", "d_model", value=10**6), REFUSED, "too big a model"),
    Case("model-config-shape-mismatch", setter("model_config", "d_ff", value=40), AT_LOAD,
         "does not fit its model_config"),
    # train_config
    Case("train-config-text", setter("train_config", value="fast"), REFUSED, "'train_config' must be an object"),
    Case("train-config-lr-text", setter("train_config", "lr", value="high"), REFUSED,
         "'train_config.lr' must be float"),
    Case("train-config-betas-one", setter("train_config", "betas", value=[0.9]), REFUSED, "'train_config.betas'"),
    Case("train-config-steps-zero", setter("train_config", "steps", value=0), REFUSED, "TrainConfig.steps"),
    Case("train-config-null", setter("train_config", value=None), ACCEPTED),
    # tokenizer
    Case("tokenizer-missing", deleter("tokenizer"), REFUSED, "'tokenizer' is missing"),
    Case("tokenizer-chars-text", setter("tokenizer", "chars", value="abc"), REFUSED,
         "'tokenizer.chars' must be a list"),
    Case("tokenizer-chars-long", setter("tokenizer", "chars", value=list("abcdefghij") + ["kk"]), REFUSED,
         "'tokenizer.chars[10]' must be a single character"),
    Case("tokenizer-chars-repeated", setter("tokenizer", "chars", value=list("abcdefghija")), REFUSED,
         "'tokenizer' is an invalid configuration: tokenizer characters must be unique"),
    Case("tokenizer-type-bpe", setter("tokenizer", "type", value="bpe"), REFUSED, "'tokenizer' is an invalid"),
    Case("tokenizer-boundary-text", setter("tokenizer", "boundary_id", value="0"), REFUSED, "'tokenizer.boundary_id'"),
    # corpus
    Case("corpus-a-list", setter("corpus", value=[1]), REFUSED, "'corpus' must be an object"),
    Case("corpus-name-number", setter("corpus", "name", value=5), REFUSED, "corpus field 'name'"),
    Case("corpus-split-seed-text", setter("corpus", "split_seed", value="x"), REFUSED, "corpus field 'split_seed'"),
    Case("corpus-block-size-zero", setter("corpus", "block_size", value=0), REFUSED, "corpus field 'block_size'"),
    Case("corpus-n-val-negative", setter("corpus", "n_val", value=-1), REFUSED, "corpus field 'n_val'"),
    Case("corpus-val-names-numbers", setter("corpus", "val_names", value=[1, 2]), REFUSED, "corpus field 'val_names'"),
    Case("corpus-val-domains-short", setter("corpus", "val_domains", value=["vowel"]), REFUSED,
         "corpus field 'val_domains' has 1 labels"),
    Case("corpus-extra-field", setter("corpus", "source_url", value="file://names.txt"), ACCEPTED),
    # step
    Case("step-text", setter("step", value="abc"), REFUSED, "field 'step' must be an integer >= 0, got 'abc'"),
    Case("step-negative", setter("step", value=-1), REFUSED, "field 'step'"),
    Case("step-float", setter("step", value=2.5), REFUSED, "field 'step'"),
    Case("step-disagrees-with-history", setter("step", value=999999), REFUSED,
         "field 'step' is 999,999 but the history ends at step 3"),
    Case("history-steps-not-increasing", setter("history", "step", value=[1, 3, 3]), REFUSED,
         "'history.step' must increase"),
    # history
    Case("history-a-list", setter("history", value=[1]), REFUSED, "field 'history' must be an object"),
    Case("history-column-not-list", setter("history", "loss", value="abc"), REFUSED,
         "field 'history.loss' must be a list"),
    Case("history-loss-text", setter("history", "loss", value=[3.0, "abc", 2.0]), REFUSED, "'history.loss[1]'"),
    Case("history-loss-nan-literal", setter("history", "val_loss", value=[float("nan"), None, 2.8]), REFUSED,
         "'history.val_loss[0]'"),
    Case("history-step-negative", setter("history", "step", value=[-3, 2, 3]), REFUSED, "'history.step[0]'"),
    Case("history-lengths-differ", setter("history", "loss", value=[3.0]), REFUSED, "columns of different lengths"),
    Case("history-expert-load-negative", setter("history", "expert_load", value=[[[1, -2]], [[1]], [[1]]]), REFUSED,
         "'history.expert_load[0]'"),
    Case("history-samples-text", setter("history", "samples", value=["Anna", None, None]), REFUSED,
         "'history.samples[0]'"),
    Case("history-domain-mi-text", setter("history", "domain_mi", value=["high", None, None]), REFUSED,
         "'history.domain_mi[0]'"),
    Case("history-domain-mi-without-initial", deleter("history", "domain_mi_initial"), REFUSED,
         "'history.domain_mi_initial[0]'"),
    Case("history-nulls-where-nan", setter("history", "loss", value=[None, None, None]), ACCEPTED),
    Case("history-unknown-columns", meta_edit(lambda m: m["history"].update(
        router_entropy=[0.5, None, 1.25], per_layer=[[1, 2], [3], None], note=["a", "b", "c"])), ACCEPTED),
    # metrics (the summary)
    Case("metrics-a-list", setter("metrics", value=[1]), REFUSED, "field 'metrics' must be an object"),
    Case("metrics-val-loss-text", setter("metrics", "val_loss", value="low"), REFUSED, "'metrics.val_loss'"),
    Case("metrics-stop-reason-number", setter("metrics", "stop_reason", value=3), REFUSED, "'metrics.stop_reason'"),
    Case("metrics-train-seconds-negative", setter("metrics", "train_seconds", value=-1), REFUSED,
         "'metrics.train_seconds'"),
    Case("metrics-unknown-key", setter("metrics", "best_step", value=250), ACCEPTED),
    # param_counts
    Case("param-counts-a-list", setter("param_counts", value=[1]), REFUSED, "field 'param_counts' must be an object"),
    Case("param-counts-main-missing", deleter("param_counts", "main"), REFUSED, "'param_counts.main' is missing"),
    Case("param-counts-total-text", setter("param_counts", "main", "total", value="many"), REFUSED,
         "'param_counts.main.total'"),
    Case("param-counts-active-over-total", setter("param_counts", "main", "active", value=10**12), REFUSED,
         "'param_counts.main.active'"),
    # created, versions, shipped
    Case("created-number", setter("created", value=12), REFUSED, "field 'created' must be a string"),
    Case("created-not-a-time", setter("created", value="yesterday"), REFUSED, "field 'created' must be an ISO 8601"),
    Case("torch-version-number", setter("torch_version", value=2.1), REFUSED, "field 'torch_version'"),
    Case("dsmini-version-null", setter("dsmini_version", value=None), REFUSED, "field 'dsmini_version'"),
    Case("shipped-text", setter("shipped", value="yes"), REFUSED, "field 'shipped' must be true or false"),
    # files
    Case("files-missing", deleter("files"), REFUSED, "'files' is missing"),
    Case("files-sha256-short", setter("files", "model.safetensors", "sha256", value="abc"), REFUSED,
         "'files.model.safetensors.sha256' must be 64 hex digits"),
    Case("files-bytes-text", setter("files", "model.safetensors", "bytes", value="big"), REFUSED,
         "'files.model.safetensors.bytes'"),
    Case("files-unknown-file", setter("files", "evil.py", value={"sha256": "0" * 64, "bytes": 1}), REFUSED,
         "unknown file 'evil.py'"),
    Case("files-wrong-size", setter("files", "model.safetensors", "bytes", value=1), REFUSED,
         "model.safetensors is truncated or corrupt"),
    Case("weights-truncated", truncate("model.safetensors"), REFUSED, "model.safetensors is truncated or corrupt"),
    Case("weights-missing", remove("model.safetensors"), REFUSED, "model.safetensors is missing"),
    Case("weights-flipped-byte", flip_byte("model.safetensors"), AT_LOAD,
         "model.safetensors is corrupt or truncated: sha256"),
    Case("optimizer-file-missing", remove("optimizer.safetensors"), REFUSED, "optimizer.safetensors is missing"),
    Case("weights-a-fifo", replaced_by(os.mkfifo, "model.safetensors"), REFUSED,
         "a FIFO (named pipe), not a regular file"),
    Case("weights-link-to-dev-zero", replaced_by(lambda p: p.symlink_to("/dev/zero"), "model.safetensors"), REFUSED,
         "model.safetensors is a character device"),
    Case("optimizer-file-flipped-byte", flip_byte("optimizer.safetensors"), AT_LOAD,
         "optimizer.safetensors is corrupt"),
    # optimizer
    Case("optimizer-text", setter("optimizer", value="adam"), REFUSED, "field 'optimizer' must be an object"),
    Case("optimizer-rng-text", setter("optimizer", "rng", value="batches"), REFUSED, "'optimizer.rng' must be a list"),
    Case("optimizer-tree-bad-tag", setter("optimizer", "states", "adamw", value={"bogus": 1}), REFUSED,
         "'optimizer.states.adamw'"),
    Case("optimizer-tree-bad-float", setter("optimizer", "states", "adamw", value={"float": "huge"}), REFUSED,
         "'optimizer.states.adamw.float'"),
    Case("optimizer-null-but-file-listed", setter("optimizer", value=None), REFUSED,
         "'files' lists optimizer.safetensors but 'optimizer' is null"),
    Case("optimizer-tensor-not-in-file", meta_edit(rename_tensor_in_tree), AT_LOAD, "lacks the tensor"),
    Case("optimizer-rng-not-in-file", setter("optimizer", "rng", value=["batches", "dropout"]), AT_LOAD,
         "lacks the tensor 'rng/dropout'"),
]


def test_the_table_covers_every_field():
    fields = {case.id.split("-")[0] for case in CASES}
    assert {"json", "format", "version", "model", "train", "tokenizer", "corpus", "step", "history", "metrics",
            "param", "created", "torch", "dsmini", "shipped", "files", "weights", "optimizer"} <= fields
    assert len(CASES) >= 30 and len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_corrupted_field_is_refused_by_name_or_read_generously(case, base, tmp_path):
    root = tmp_path / "checkpoints"
    shutil.copytree(base, root / "victim")
    shutil.copytree(base, root / "bystander")
    case.corrupt(root / "victim")

    listing = scan_checkpoints(root)  # any exception but CheckpointError fails here: a traceback
    assert [info.name for info in listing.good if info.name == "bystander"] == ["bystander"]
    listed = "victim" in [info.name for info in listing.good]
    try:
        ckpt = load_checkpoint(root / "victim", load_optimizer=True)
        error = None
    except CheckpointError as err:
        error = str(err)

    if case.outcome == ACCEPTED:  # no silent loss: what was there is still there
        assert listed and error is None
        assert all(torch.equal(a, b) for a, b in zip(ckpt.model.state_dict().values(),
                                                    load_checkpoint(base).model.state_dict().values()))
        return
    assert error is not None, "a corrupted checkpoint was loaded as if nothing were wrong"
    assert case.text in error and str(root / "victim") in error, error  # names the file and the field
    if case.outcome == AT_LOAD:
        assert listed
    else:
        assert not listed
        (broken,) = listing.broken
        assert broken.name == "victim" and case.text in broken.reason
        assert broken.reason.startswith("victim"), broken.reason  # relative to the root: what the sidebar shows


@pytest.mark.parametrize("damage", [remove("best.safetensors"), truncate("best.safetensors")],
                         ids=["missing", "truncated"])
def test_a_damaged_best_file_leaves_the_last_weights_usable(damage, tmp_path):
    """best.safetensors is a spare: without it the checkpoint lists and loads (last weights); only --best says
    why not."""
    model = make_model(1)
    path = save_checkpoint(tmp_path, "run", model, CharTokenizer(CHARS), best_state=make_model(2).state_dict())
    damage(path)
    (info,) = scan_checkpoints(tmp_path).good
    assert not info.has_best
    loaded = load_checkpoint(path)
    assert not loaded.has_best and same_weights(loaded.model, model)
    with pytest.raises(CheckpointError, match="best.safetensors is (missing|truncated).*the last weights are intact"):
        load_checkpoint(path, best=True)


# saves cannot disappear ---------------------------------------------------------------------------------

FRESH_STEPS = ["wrote model.safetensors", "wrote checkpoint.json", "filled", "placed"]
REPLACE_STEPS = ["wrote model.safetensors", "wrote checkpoint.json", "filled", "aside", "placed", "cleaned"]
KILLED = 57  # the child's exit code when the hook stopped it


def save_killed_at(root: Path, step: str, model: DSMini) -> None:
    """Save `model` as root/run in a forked child that dies (os._exit, no cleanup) right after `step`.
    Forked, not `python -c`: importing torch anew costs seconds."""
    pid = os.fork()
    if pid == 0:
        try:
            atomic.on_step = lambda done: os._exit(KILLED) if done == step else None
            save_checkpoint(root, "run", model, CharTokenizer(CHARS), overwrite=True)
        finally:
            os._exit(0)
    deadline = time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the save never reached {step!r}")
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == KILLED, f"the save never reached {step!r}"


def same_weights(a: DSMini, b: DSMini) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("via", ["listing", "load"])
@pytest.mark.parametrize("step", REPLACE_STEPS)
def test_a_replacing_save_killed_at_any_step_leaves_the_old_or_the_new(tmp_path, step, via):
    old, new = make_model(1), make_model(2)
    save_checkpoint(tmp_path, "run", old, CharTokenizer(CHARS))
    save_killed_at(tmp_path, step, new)
    if step == "aside":
        assert not (tmp_path / "run").exists()  # the moment the issue found: the checkpoint is nowhere in sight

    if via == "listing":
        listing = scan_checkpoints(tmp_path)
        assert [i.name for i in listing.good] == ["run"] and listing.broken == []
    loaded = load_checkpoint(tmp_path / "run")  # every hash and shape checked: complete, not half-written
    expected = old if REPLACE_STEPS.index(step) < REPLACE_STEPS.index("aside") else new
    assert same_weights(loaded.model, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no leftovers once settled


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("step", FRESH_STEPS)
def test_a_first_save_killed_at_any_step_leaves_nothing_or_the_new(tmp_path, step):
    new = make_model(2)
    save_killed_at(tmp_path, step, new)
    listing = scan_checkpoints(tmp_path)
    assert listing.broken == []
    if step == "placed":
        assert [i.name for i in listing.good] == ["run"]
        assert same_weights(load_checkpoint(tmp_path / "run").model, new)
    else:  # the save never finished: rolled back, as if never started
        assert listing.good == []
    assert [p.name for p in tmp_path.iterdir()] == ([] if step != "placed" else ["run"])


def test_recovery_never_touches_a_save_in_progress(tmp_path):
    """A listing while another thread is mid-save waits for it instead of deleting its temp folder."""
    import threading

    save_checkpoint(tmp_path, "run", make_model(1), CharTokenizer(CHARS))
    paused, release = threading.Event(), threading.Event()

    def hook(done):
        if done == "aside":
            paused.set()
            release.wait(10)

    atomic.on_step = hook
    try:
        saver = threading.Thread(target=save_checkpoint, args=(tmp_path, "run", make_model(2), CharTokenizer(CHARS)),
                                 kwargs={"overwrite": True})
        saver.start()
        assert paused.wait(10)
        lister = threading.Thread(target=lambda: results.append(scan_checkpoints(tmp_path)))
        results = []
        lister.start()
        time.sleep(0.2)
        assert lister.is_alive() and not results  # waiting on the lock, not settling a live save
        release.set()
        saver.join(10)
        lister.join(10)
    finally:
        atomic.on_step = atomic._no_op
    assert [i.name for i in results[0].good] == ["run"]
    assert same_weights(load_checkpoint(tmp_path / "run").model, make_model(2))


# shipped checkpoints are read-only; overwriting is explicit ----------------------------------------------

def tree_digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_the_six_shipped_checkpoints_say_so():
    listing = scan_checkpoints(SHIPPED)
    assert listing.broken == []
    assert sorted(info.name for info in listing.good if info.shipped) == SHIPPED_NAMES
    assert load_checkpoint(SHIPPED / "en-names").shipped


def test_a_shipped_checkpoint_cannot_be_replaced(tmp_path):
    shutil.copytree(SHIPPED / "en-names", tmp_path / "en-names")  # the flag travels with the folder
    before = tree_digest(tmp_path / "en-names")
    shipped = load_checkpoint(tmp_path / "en-names")
    for overwrite in (False, True):
        with pytest.raises(CheckpointExistsError, match="'en-names' ships with dsmini and is read-only") as err:
            save_checkpoint(tmp_path, "en-names", shipped.model, shipped.tokenizer, overwrite=overwrite)
        assert err.value.shipped and err.value.free_name == "en-names-2"
        with pytest.raises(CheckpointExistsError, match="read-only"):
            copy_checkpoint(base_copy(tmp_path), tmp_path, "en-names", overwrite=overwrite)  # the jobs' publish path
    assert tree_digest(tmp_path / "en-names") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["en-names", "src"]


def base_copy(tmp_path: Path) -> Path:
    """A user's run to publish (kept in a private folder, as a training job keeps its weights)."""
    if not (tmp_path / "src" / "run").exists():
        save_checkpoint(tmp_path / "src", "run", make_model(3), CharTokenizer(CHARS))
    return tmp_path / "src" / "run"


def test_an_existing_name_is_replaced_only_when_asked(tmp_path):
    tok = CharTokenizer(CHARS)
    save_checkpoint(tmp_path, "my-run", make_model(1), tok)
    with pytest.raises(CheckpointExistsError, match="already exists .* e.g. 'my-run-2', or overwrite it") as err:
        save_checkpoint(tmp_path, "my-run", make_model(2), tok)
    assert not err.value.shipped and err.value.free_name == "my-run-2"
    assert same_weights(load_checkpoint(tmp_path / "my-run").model, make_model(1))  # untouched
    save_checkpoint(tmp_path, "my-run", make_model(2), tok, overwrite=True)
    assert same_weights(load_checkpoint(tmp_path / "my-run").model, make_model(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my-run"]


def test_copies_of_a_shipped_checkpoint_are_the_users_own(tmp_path):
    shipped = SHIPPED / "ru-names"
    copy = copy_checkpoint(shipped, tmp_path, "mine")
    assert not load_checkpoint(copy).shipped
    assert (copy / "model.safetensors").read_bytes() == (shipped / "model.safetensors").read_bytes()
    meta, original = (json.loads((p / "checkpoint.json").read_text()) for p in (copy, shipped))
    assert original.pop("shipped") is True and meta == original  # only the flag differs
    copy_checkpoint(shipped, tmp_path, "mine", overwrite=True)  # the user's own: replaceable


def test_next_free_name(tmp_path):
    assert next_free_name(tmp_path, "my-run") == "my-run"
    (tmp_path / "my-run").mkdir()
    assert next_free_name(tmp_path, "my-run") == "my-run-2"
    (tmp_path / "my-run-2").mkdir()
    assert next_free_name(tmp_path, "my-run") == "my-run-3"
    assert next_free_name(tmp_path, "my-run-2") == "my-run-3"  # counts on, not "my-run-2-2"
    long = "x" * 64
    (tmp_path / long).mkdir()
    assert next_free_name(tmp_path, long) == "x" * 62 + "-2"
    (tmp_path / "run-²").mkdir()  # a digit to str.isdigit, not to int()
    assert next_free_name(tmp_path, "run-²") == "run-²-2"
    with pytest.raises(CheckpointError, match="not allowed"):
        next_free_name(tmp_path, "../up")


def test_a_job_cannot_save_over_a_shipped_or_existing_checkpoint(tmp_path):
    from dsmini.jobs import TrainingJob
    from dsmini.jobs.slots import set_max_concurrent_jobs

    set_max_concurrent_jobs(8)  # never queued behind a run another test left stopping
    data = prepare_corpus(WORDS, 4, 42, corpus_name="toy")
    cfg = preset("tiny", vocab_size=data.tokenizer.vocab_size, block_size=data.block_size)
    job = TrainingJob(cfg, TrainConfig(steps=2, batch_size=8, eval_every=1000, eval_batches=1, sample_every=0), data)
    try:
        job.start()
        assert job.join(timeout=120)
        shutil.copytree(SHIPPED / "en-names", tmp_path / "en-names")
        with pytest.raises(CheckpointExistsError, match="read-only") as err:
            job.save(tmp_path, "en-names", overwrite=True)
        assert err.value.free_name == "en-names-2"
        job.save(tmp_path, "mine")
        with pytest.raises(CheckpointExistsError, match="'mine-2'"):
            job.save(tmp_path, "mine")
        assert job.save(tmp_path, "mine", overwrite=True) == tmp_path / "mine"
        assert load_checkpoint(tmp_path / "mine").step == 2  # a real run's history passes every check
    finally:
        assert job.release(timeout=30)
        set_max_concurrent_jobs(None)


# the app: default model per language, a broken checkpoint noted and harmless ----------------------------

@pytest.fixture
def app_checkpoints(tmp_path, monkeypatch):
    """Shipped en-names and ru-names, and a student's run that sorts first and is not shipped."""
    for name in ("en-names", "ru-names"):
        shutil.copytree(SHIPPED / name, tmp_path / name)
    copy_checkpoint(SHIPPED / "en-names", tmp_path, "a-run")
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    return tmp_path


@pytest.mark.parametrize(("lang", "expected"), [("en", "en-names"), ("ru", "ru-names")])
def test_a_new_session_opens_on_the_shipped_model_of_its_language(app_checkpoints, lang, expected):
    at = app_test()
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.selectbox(key="checkpoint")
    assert picker.options[0] == "a-run" and picker.value == expected
    assert t("home.card", lang, name=expected) in [s.value for s in at.subheader]
    chosen = app_test()  # a choice, once made, is kept
    chosen.session_state["lang"], chosen.session_state["checkpoint"] = lang, "a-run"
    chosen.run()
    assert chosen.selectbox(key="checkpoint").value == "a-run"
    assert t("home.card", lang, name="a-run") in [s.value for s in chosen.subheader]


def test_a_deleted_pick_falls_back_to_the_default(app_checkpoints):
    at = app_test()
    at.session_state["checkpoint"] = "gone"
    at.run()
    assert not at.exception and at.selectbox(key="checkpoint").value == "en-names"


@pytest.fixture
def one_good_one_bad(tmp_path, monkeypatch):
    shutil.copytree(SHIPPED / "en-names", tmp_path / "en-names")
    shutil.copytree(SHIPPED / "en-names", tmp_path / "bad")
    setter("step", value="abc")(tmp_path / "bad")
    monkeypatch.setattr(ui_models, "CHECKPOINTS", tmp_path)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "ru"])
def test_a_broken_checkpoint_is_noted_in_the_sidebar_and_breaks_no_page(one_good_one_bad, lang):
    at = app_test()
    at.session_state["lang"] = lang
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="checkpoint").options == ["en-names"]
    reason = "bad/checkpoint.json: field 'step' must be an integer >= 0, got 'abc'"
    note = t("ui.broken_checkpoints", lang, n=1, details=f"bad: {reason}")
    assert note in [c.value for c in at.sidebar.caption]
    if lang == "ru":
        return  # every page in one language is enough
    for name, _, _ in PAGES:
        at.switch_page(f"pages/{name}.py").run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert not at.error, (name, [e.value for e in at.error])
