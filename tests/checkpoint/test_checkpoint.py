"""Checkpoints: exact round trip and resume, atomic writes (even under kill -9), clear refusals."""

import copy
import dataclasses
import errno
import io
import json
import os
import pickle
import re
import signal
import time
import zipfile

import pytest
import torch

from dsmini.checkpoint import (
    CheckpointError,
    CorpusRef,
    atomic,
    checkpoint_zip_bytes,
    corpus_ref,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    scan_checkpoints,
    validate_name,
)
from dsmini.checkpoint import files as checkpoint_files
from dsmini.checkpoint.corpus_ref import MAX_STORED_VAL_NAMES, checkpoint_validation_set, corpus_reference
from dsmini.config import TrainConfig, preset
from dsmini.data import CharTokenizer, CorpusError, LabelledNames, load_corpus, prepare_corpus, validation_set
from dsmini.model import DSMini
from tests.helpers import SHIPPED

CHARS = list("abcdefghijk")
V = len(CHARS) + 1


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run no faster on 2 threads, and far slower when other jobs share the CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tokenizer() -> CharTokenizer:
    return CharTokenizer(CHARS)


def make_model(seed: int = 0, **overrides) -> DSMini:
    torch.manual_seed(seed)
    return DSMini(preset("tiny", vocab_size=V, block_size=16, **overrides))


def save(root, name="run", model=None, **kwargs):
    return save_checkpoint(root, name, model or make_model(), tokenizer(), **kwargs)


def entries(root) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def assert_same_state(a: DSMini, b: DSMini) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def edit_json(path, **changes):
    meta_path = path / "checkpoint.json"
    meta = json.loads(meta_path.read_text())
    for key, value in changes.items():
        if key == "model_config":
            meta["model_config"].update(value)
        else:
            meta[key] = value
    meta_path.write_text(json.dumps(meta))


# round trips ----------------------------------------------------------------------------

def test_round_trip_weights_buffers_configs_and_logits(tmp_path):
    model = make_model()
    gates = [moe.gate for moe in model.moe_layers()]
    assert gates and all(hasattr(g, "bias") for g in gates)  # tiny uses the sigmoid_bias router
    for g in gates:
        g.bias.copy_(torch.randn_like(g.bias))  # as if balancing had moved them
    train_config = TrainConfig(steps=7, betas=(0.8, 0.95))
    history = [{"step": 1, "loss": 3.2, "val_loss": float("nan")}, {"step": 2, "loss": 2.9, "val_loss": 2.8}]
    path = save(
        tmp_path, "Имена-v1.0", model, train_config=train_config, step=2, history=history,
        corpus=CorpusRef.from_json({"name": "ru-names", "split_seed": 42, "counts": {"train": 80, "val": 10}}),
        summary={"best_val_loss": 2.8, "last_val_loss": 2.8},
    )
    assert path == tmp_path / "Имена-v1.0"
    assert entries(tmp_path) == ["Имена-v1.0"]  # no temp dir left behind
    assert entries(path) == ["checkpoint.json", "model.safetensors"]

    ck = load_checkpoint(path)
    assert_same_state(model, ck.model)
    assert not ck.model.training
    assert ck.model_config == model.cfg and ck.train_config == train_config
    assert ck.tokenizer == tokenizer()
    assert ck.history == [{"step": 1, "loss": 3.2, "val_loss": None}, history[1]]  # NaN -> null
    assert ck.summary == {"best_val_loss": 2.8, "last_val_loss": 2.8}
    assert ck.corpus.extra["counts"] == {"train": 80, "val": 10}
    assert (ck.step, ck.name, ck.path) == (2, "Имена-v1.0", path)
    assert ck.param_counts == model.param_counts()
    assert ck.optimizer_states is None and ck.rng_states is None
    x = torch.tensor([[0, 1, 2, 3, 4, 5]])
    model.eval()
    assert torch.equal(model(x).logits, ck.model(x).logits)
    meta = json.loads((path / "checkpoint.json").read_text())
    assert meta["format"] == "dsmini-checkpoint" and meta["format_version"] == 1
    assert meta["torch_version"] == torch.__version__ and meta["created"].endswith("+00:00")


def adamw_steps(model, opt, gen, n):
    model.train()
    for _ in range(n):
        x = torch.randint(V, (4, 10), generator=gen)
        y = torch.randint(V, (4, 10), generator=gen)
        model(x, targets=y).loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


def test_optimizer_and_rng_resume_exactly(tmp_path):
    model = make_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(123)
    adamw_steps(model, opt, gen, 3)
    saved_opt = copy.deepcopy(opt.state_dict())  # state_dict() holds live tensors
    path = save(tmp_path, "run", model, step=3, optimizer_states={"adamw": saved_opt},
                rng_states={"batches": gen.get_state()})
    adamw_steps(model, opt, gen, 3)  # the uninterrupted run

    ck = load_checkpoint(path, load_optimizer=True)
    restored = ck.optimizer_states["adamw"]
    assert restored["param_groups"] == saved_opt["param_groups"]  # betas stay a tuple, ints stay ints
    for pid, state in saved_opt["state"].items():
        for key, value in state.items():
            assert restored["state"][pid][key].dtype == value.dtype  # AdamW's step is a float tensor
            assert torch.equal(restored["state"][pid][key], value)
    opt2 = torch.optim.AdamW(ck.model.parameters(), lr=1e-2, betas=(0.9, 0.99))
    opt2.load_state_dict(restored)
    gen2 = torch.Generator()
    gen2.set_state(ck.rng_states["batches"])
    adamw_steps(ck.model, opt2, gen2, 3)  # the resumed run
    assert_same_state(model, ck.model)

    assert load_checkpoint(path).optimizer_states is None  # only read when asked


# atomicity ------------------------------------------------------------------------------

def failing_write(fail_on: str, err=errno.ENOSPC):
    """An atomic.write_file that writes half of `fail_on` and then fails like a full disk."""
    real = atomic.write_file

    def write(path, data):
        if path.name == fail_on:
            path.write_bytes(data[: len(data) // 2])
            raise OSError(err, os.strerror(err), str(path))
        real(path, data)

    return write


@pytest.mark.parametrize("fail_on", ["model.safetensors", "checkpoint.json"])
def test_failed_save_leaves_nothing_and_keeps_the_old_checkpoint(tmp_path, monkeypatch, fail_on):
    old = make_model(seed=1)
    save(tmp_path, "kept", old)
    monkeypatch.setattr(atomic, "write_file", failing_write(fail_on))
    with pytest.raises(CheckpointError, match="could not write checkpoint to .*No space left on device"):
        save(tmp_path, "fresh")
    with pytest.raises(CheckpointError, match="No space left"):
        save(tmp_path, "kept", make_model(seed=2), overwrite=True)
    assert entries(tmp_path) == ["kept"]  # no "fresh", no .tmp-* dirs
    assert_same_state(old, load_checkpoint(tmp_path / "kept").model)


def test_failed_rename_restores_the_old_checkpoint(tmp_path, monkeypatch):
    old = make_model(seed=1)
    save(tmp_path, "kept", old)
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(src).startswith(".tmp-"):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(CheckpointError, match="Input/output error"):
        save(tmp_path, "kept", make_model(seed=2), overwrite=True)
    assert entries(tmp_path) == ["kept"]
    assert_same_state(old, load_checkpoint(tmp_path / "kept").model)


def test_read_only_root_is_a_clear_error(tmp_path, monkeypatch):
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        if os.access(root, os.W_OK):  # root ignores permissions: simulate the read-only mount

            def mkdir(*args, **kwargs):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))

            monkeypatch.setattr(os, "mkdir", mkdir)
        with pytest.raises(CheckpointError, match=f"could not write checkpoint to {root}: "):
            save(root, "run")
        assert entries(root) == []
    finally:
        root.chmod(0o700)


def test_non_checkpoint_directory_is_not_overwritten(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(CheckpointError, match="is not a dsmini checkpoint; not overwriting"):
        save(tmp_path, "photos")
    assert entries(tmp_path) == ["photos"] and entries(tmp_path / "photos") == ["cat.jpg"]


def test_bad_metadata_fails_before_touching_disk(tmp_path):
    with pytest.raises(CheckpointError, match=r"corpus\['when'\] is a object"):
        save(tmp_path, "run", corpus=CorpusRef.from_json({"when": object()}))
    assert not tmp_path.joinpath("run").exists() and entries(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_kill_9_during_save_leaves_only_loadable_or_hidden_dirs(tmp_path):
    """A real process dies mid-write. Forked, not `python -c`: importing torch anew costs ~3 s."""
    model, tok = make_model(), tokenizer()
    save(tmp_path, "run", model)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: overwrite checkpoints forever, pausing halfway through every file
        try:
            os.close(read_end)
            real = atomic.write_file

            def slow_write(path, data):
                path.write_bytes(data[: len(data) // 2])
                os.write(write_end, b".")
                time.sleep(0.05)
                real(path, data)

            atomic.write_file = slow_write
            while True:
                save_checkpoint(tmp_path, "run", model, tok, overwrite=True)
                save_checkpoint(tmp_path, "other", model, tok, overwrite=True)
        finally:
            os._exit(1)
    os.close(write_end)
    for _ in range(5):  # run: model, json; other: model, json; run again: model (half written)
        assert os.read(read_end, 1) == b"."
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(read_end)

    hidden = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden, "the kill should have caught a save midway"
    for p in tmp_path.iterdir():
        if not p.name.startswith("."):
            assert_same_state(model, load_checkpoint(p).model)
    listing = scan_checkpoints(tmp_path)
    assert [i.name for i in listing.good] == ["other", "run"] and listing.broken == []
    assert entries(tmp_path) == ["other", "run"]  # the listing settled the interrupted save


# refusals -------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at .*nope: the path does not exist"):
        load_checkpoint(tmp_path / "nope")


def test_directory_without_checkpoint_json(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint.json is missing"):
        load_checkpoint(tmp_path)


def test_truncated_model_file(tmp_path):
    path = save(tmp_path)
    f = path / "model.safetensors"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="model.safetensors is truncated or corrupt"):
        load_checkpoint(path)


def test_flipped_bytes_fail_the_hash(tmp_path):
    path = save(tmp_path)
    f = path / "model.safetensors"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupt or truncated: sha256"):
        load_checkpoint(path)


def test_unreadable_safetensors_with_matching_hash(tmp_path):
    path = save(tmp_path)
    garbage = b"\xff" * 64
    (path / "model.safetensors").write_bytes(garbage)
    edit_json(path, files={"model.safetensors": {"sha256": checkpoint_files.sha256(garbage), "bytes": 64}})
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_checkpoint(path)


def test_unparseable_and_foreign_json(tmp_path):
    path = save(tmp_path)
    (path / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="checkpoint.json is not valid JSON"):
        load_checkpoint(path)
    (path / "checkpoint.json").write_text(json.dumps({"format": "keras", "weights": []}))
    with pytest.raises(CheckpointError, match="is not a dsmini checkpoint \\(format 'keras'"):
        load_checkpoint(path)


def test_future_format_version(tmp_path):
    path = save(tmp_path)
    edit_json(path, format_version=2)
    with pytest.raises(CheckpointError, match="from another version of dsmini: format_version 2, this dsmini reads 1"):
        load_checkpoint(path)


def test_shape_mismatch_names_tensors_and_shapes(tmp_path):
    path = save(tmp_path)
    edit_json(path, model_config={"d_model": 48})
    with pytest.raises(CheckpointError, match=r"shape mismatch embed.weight \(expected \(12, 48\), found \(12, 32\)\)"):
        load_checkpoint(path)


def test_missing_tensors_are_listed(tmp_path):
    path = save(tmp_path)
    edit_json(path, model_config={"n_layers": 3})
    with pytest.raises(CheckpointError, match="does not fit its model_config: missing layers.2."):
        load_checkpoint(path)


def test_invalid_config_keeps_the_config_message(tmp_path):
    path = save(tmp_path)
    edit_json(path, model_config={"top_k": 9})
    with pytest.raises(CheckpointError, match="invalid configuration: ModelConfig.top_k"):
        load_checkpoint(path)


class _Trap:
    """Unpickling this creates the marker file: proof that code would have run."""

    marker = ""

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("file_name", ["model.pt", "weights.pkl", "no_suffix"])
def test_pickle_files_are_refused_unopened(tmp_path, file_name):
    trap = _Trap()
    trap.marker = str(tmp_path / "pwned")
    target = tmp_path / file_name
    target.write_bytes(pickle.dumps(trap))
    with pytest.raises(CheckpointError, match="pickle files are not loaded: they can run code"):
        load_checkpoint(target)
    assert not (tmp_path / "pwned").exists()


def test_torch_zip_is_refused(tmp_path):
    target = tmp_path / "model"
    torch.save(make_model().state_dict(), target)  # a zip of pickles, whatever its suffix
    with pytest.raises(CheckpointError, match="pickle files are not loaded"):
        load_checkpoint(target)


@pytest.mark.parametrize(
    "name, why",
    [
        ("../x", "path separator"), ("a/b", "path separator"), ("a\\b", "path separator"),
        ("", "empty"), ("   ", "only whitespace"), (".hidden", "starts with '.'"), ("..", "'..'"),
        ("a\x00b", "NUL"), ("con", "reserved"), ("LPT1.txt", "reserved"), ("x" * 65, "65 characters"),
        ("a b", "' '"), ("-rf", "starts with '-'"), ("run.", "ends with '.'"),
    ],
)
def test_bad_names_are_refused(tmp_path, name, why):
    with pytest.raises(CheckpointError, match="is not allowed: .*" + re.escape(why)):
        validate_name(name)
    with pytest.raises(CheckpointError):
        save(tmp_path, name)
    assert entries(tmp_path) == []


def test_good_names():
    for name in ["run-1", "Имя_2", "v1.2", "a", "x" * 64]:
        assert validate_name(name) == name
    assert validate_name("и\u0306") == "й"  # NFC: one letter, one directory name


# listing --------------------------------------------------------------------------------

def test_list_skips_broken_temp_and_foreign_entries(tmp_path):
    model = make_model()
    save(tmp_path, "b", model, corpus=CorpusRef(name="en-names"), summary={"best_val_loss": 2.1}, step=50)
    save(tmp_path, "a", model)
    bad_json = save(tmp_path, "c-bad-json", model)
    (bad_json / "checkpoint.json").write_text("{")
    cut = save(tmp_path, "d-truncated", model)
    (cut / "model.safetensors").write_bytes(b"")
    (tmp_path / "e-empty").mkdir()
    (tmp_path / ".tmp-x-123").mkdir()
    (tmp_path / ".tmp-x-123" / "model.safetensors").write_bytes(b"half")
    (tmp_path / "notes.txt").write_text("hello")

    listing = scan_checkpoints(tmp_path)
    infos = listing.good
    assert [i.name for i in infos] == ["a", "b"]
    assert [b.name for b in listing.broken] == ["c-bad-json", "d-truncated", "e-empty"]
    assert listing.broken[0].reason.startswith("c-bad-json/checkpoint.json is not valid JSON")  # relative to the root
    b = infos[1]
    assert (b.corpus, b.val_loss, b.step, b.path) == ("en-names", 2.1, 50, tmp_path / "b")
    main = model.param_counts()["main"]
    assert (b.params_total, b.params_active) == (main["total"], main["active"])
    assert b.params_active < b.params_total  # routed experts: only k of E active
    assert infos[0].corpus is None and infos[0].val_loss is None
    assert list_checkpoints(tmp_path / "missing") == []


# zip download ------------------------------------------------------------------------

def test_zip_round_trip(tmp_path):
    model = make_model()
    opt = torch.optim.AdamW(model.parameters())
    adamw_steps(model, opt, torch.Generator().manual_seed(0), 1)
    path = save(tmp_path / "a", "run", model, optimizer_states={"adamw": opt.state_dict()})
    data = checkpoint_zip_bytes(path)
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert sorted(names) == ["run/checkpoint.json", "run/model.safetensors", "run/optimizer.safetensors"]
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path / "b")
    ck = load_checkpoint(tmp_path / "b" / "run", load_optimizer=True)
    assert_same_state(model, ck.model)
    assert ck.optimizer_states["adamw"]["param_groups"] == opt.state_dict()["param_groups"]


# corpus reference: domains and stored validation names ----------------------------------

WORDS = [a + b + c for a in "abcd" for b in "efgh" for c in "ijk"]  # 48 names in CHARS' alphabet


def labelled_upload():
    """CorpusData as an uploaded `name<TAB>domain` file gives it (not built-in)."""
    domains = ["vowel" if w[0] == "a" else "consonant" for w in WORDS]
    return prepare_corpus(WORDS, 4, 42, corpus_name="my-names", domains=domains)


def test_upload_reference_stores_val_names_and_domains(tmp_path):
    data = labelled_upload()
    ref = corpus_reference(data)
    assert ref.domains == ("consonant", "vowel")
    assert (ref.val_names, ref.val_domains) == (tuple(data.val.names), tuple(data.val.domains))
    ck = load_checkpoint(save(tmp_path, corpus=ref))
    assert ck.corpus.domains == ("consonant", "vowel")
    assert checkpoint_validation_set(ck.corpus) == LabelledNames(data.val.names, data.val.domains)
    assert checkpoint_validation_set(ck.corpus, 2) == LabelledNames(data.val.names[:2], data.val.domains[:2])
    assert checkpoint_validation_set(ref, 2) == checkpoint_validation_set(ck.corpus, 2)  # as built, as loaded


def test_stored_val_names_are_capped(tmp_path, monkeypatch):
    assert MAX_STORED_VAL_NAMES == 2_000
    monkeypatch.setattr(corpus_ref, "MAX_STORED_VAL_NAMES", 3)
    data = prepare_corpus(WORDS, 4, 42, corpus_name="plain.txt")
    ref = corpus_reference(data)
    assert ref.val_names == tuple(data.val.names[:3]) and ref.val_domains is None and ref.domains == ()
    assert len(data.val.names) > 3 and ref.n_val == len(data.val.names)
    ck = load_checkpoint(save(tmp_path, corpus=ref))
    assert checkpoint_validation_set(ck.corpus) == LabelledNames(data.val.names[:3])


def test_builtin_reference_is_rebuilt_with_its_domains(tmp_path):
    corpus = load_corpus("ru-name-parts")
    data = prepare_corpus(corpus.names, 16, 42, "ru-name-parts", domains=corpus.domains, builtin=corpus.builtin)
    ref = corpus_reference(data)
    assert ref.val_names is None and ref.domains == ("first", "patronymic", "surname")
    ck = load_checkpoint(save(tmp_path, corpus=ref))
    assert checkpoint_validation_set(ck.corpus, 50) == LabelledNames(data.val.names[:50], data.val.domains[:50])
    loads = []
    checkpoint_validation_set(ck.corpus, 5, load=lambda name: loads.append(name) or corpus)  # the app's cached loader
    assert loads == ["ru-name-parts"]
    with pytest.raises(CorpusError, match="now has domains"):
        checkpoint_validation_set(dataclasses.replace(ref, domains=("ru",)))


def test_old_reference_without_the_new_fields_still_loads(tmp_path):
    old = {"name": "en-names", "split_seed": 42, "block_size": 12, "n_train": 4131, "n_val": 516}
    ck = load_checkpoint(save(tmp_path, corpus=CorpusRef.from_json(old)))
    assert ck.corpus.to_json() == old
    names = load_corpus("en-names").names
    assert checkpoint_validation_set(ck.corpus, 10) == validation_set(names, 12, 42, 10) == LabelledNames(
        validation_set(names, 12, 42).names[:10], None
    )
    upload = load_checkpoint(save(tmp_path, "upload", corpus=CorpusRef.from_json({**old, "name": "my-names"})))
    with pytest.raises(CorpusError, match="'my-names' cannot be rebuilt"):
        checkpoint_validation_set(upload.corpus)
    with pytest.raises(CorpusError, match="cannot be rebuilt"):
        checkpoint_validation_set(load_checkpoint(save(tmp_path, "bare")).corpus)  # no corpus at all


def test_corpus_reference_reads_back_as_written(tmp_path):
    """A reference loads back equal, keeps a newer writer's keys after its own, and every shipped
    checkpoint's corpus entry is written back byte for byte."""
    ref = corpus_reference(labelled_upload())
    assert load_checkpoint(save(tmp_path, corpus=ref)).corpus == ref
    plain = dataclasses.replace(ref, domains=(), val_domains=None, extra={"source_url": "file://names.txt"})
    entry = load_checkpoint(save(tmp_path, "plain", corpus=plain)).corpus.to_json()
    assert list(entry)[-2:] == ["val_domains", "source_url"] and entry["val_domains"] is None
    assert load_checkpoint(save(tmp_path, "bare")).corpus == CorpusRef() and CorpusRef().to_json() == {}
    for meta_path in sorted(SHIPPED.glob("*/checkpoint.json")):
        written = json.loads(meta_path.read_text(encoding="utf-8"))["corpus"]
        again = CorpusRef.from_json(written).to_json()
        assert json.dumps(again, ensure_ascii=False) == json.dumps(written, ensure_ascii=False), meta_path


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"domains": "ru"}, "'domains'"),
        ({"domains": ["ru", "ru"]}, "'domains'"),
        ({"val_names": ["a", 2]}, "'val_names'"),
        ({"val_names": "abc"}, "'val_names'"),
        ({"val_domains": ["vowel"]}, "'val_domains' has 1 labels"),
        ({"val_domains": "vowel"}, "'val_domains'"),
        ({"val_domains": None}, "'val_domains' is null"),
        ({"val_names": None}, "'val_domains' is given without 'val_names'"),
    ],
)
def test_bad_corpus_fields_are_rejected_naming_the_field(tmp_path, changes, field):
    path = save(tmp_path, corpus=corpus_reference(labelled_upload()))
    meta = json.loads((path / "checkpoint.json").read_text())
    edit_json(path, corpus={**meta["corpus"], **changes})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert field in str(err.value) and "checkpoint.json" in str(err.value)
    listing = scan_checkpoints(tmp_path)
    assert listing.good == [] and field in listing.broken[0].reason


def test_val_domains_must_be_labels_of_the_corpus(tmp_path):
    ref = corpus_reference(labelled_upload())
    with pytest.raises(CheckpointError, match="not in 'domains'"):
        save(tmp_path, corpus=dataclasses.replace(ref, val_domains=("other",) * len(ref.val_names)))
    assert entries(tmp_path) == []  # refused before touching disk
    with pytest.raises(CheckpointError, match="'corpus' must be an object"):
        CorpusRef.from_json(["not", "a", "dict"])


# the routed experts' layout -------------------------------------------------------------------

def _per_expert_layout(state: dict) -> dict:
    """A state dict as dsmini saved it before stacked experts: one w1/w2/w3 module per routed expert."""
    old = {}
    for key, tensor in state.items():
        layer, _, weight = key.rpartition(".")
        if layer.endswith(".experts"):
            old.update({f"{layer}.{e}.{weight}.weight": tensor[e].clone() for e in range(tensor.size(0))})
        else:
            old[key] = tensor
    return old


def test_a_checkpoint_saved_with_one_module_per_expert_loads_stacked_and_unchanged(tmp_path):
    model = make_model(seed=4)
    path = save(tmp_path, model=model)
    legacy = checkpoint_files.state_bytes(_per_expert_layout(model.state_dict()))
    assert any(".experts.0.w1.weight" in k for k in _per_expert_layout(model.state_dict()))
    (path / "model.safetensors").write_bytes(legacy)
    meta = json.loads((path / "checkpoint.json").read_text())
    meta["files"]["model.safetensors"] = checkpoint_files.file_entry(legacy)
    (path / "checkpoint.json").write_text(json.dumps(meta))
    loaded = load_checkpoint(path)
    assert_same_state(model, loaded.model)
    idx = torch.randint(0, V, (2, 9))
    torch.testing.assert_close(loaded.model(idx).logits, model.eval()(idx).logits, rtol=0, atol=0)


def test_a_layer_missing_an_expert_is_refused_by_name(tmp_path):
    model = make_model(seed=4)
    path = save(tmp_path, model=model)
    old = _per_expert_layout(model.state_dict())
    missing = next(k for k in old if ".experts.1.w2.weight" in k)
    del old[missing]
    data = checkpoint_files.state_bytes(old)
    (path / "model.safetensors").write_bytes(data)
    meta = json.loads((path / "checkpoint.json").read_text())
    meta["files"]["model.safetensors"] = checkpoint_files.file_entry(data)
    (path / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"does not fit its model_config: missing .*experts\.w2"):
        load_checkpoint(path)
