"""Nothing assumes the CPU: device choice and its messages, the benchmark's `--device`, clocks that
wait for the device, and every architecture training under the bf16 autocast CUDA uses.

There is no GPU on the test machine: CUDA's own paths are checked by pretending (monkeypatched
availability) where only the decision is tested, and by CPU bf16 autocast, which casts the same
ops to bf16 as CUDA's, where a dtype mismatch would surface.
"""

import contextlib
import subprocess
import sys

import pytest
import torch

from dsmini.bench import main
from dsmini.bench.archs import ARCHS, arch_config
from dsmini.bench.cli import build_parser, plan_from_args
from dsmini.bench.common import REPO_ROOT, clock, timed
from dsmini.bench.machine import device_name
from dsmini.model import DSMini
from dsmini.training.device import autocast, pick_device, synchronize

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")


def _cuda(monkeypatch, available: bool, count: int = 1, built_with: str | None = "12.4"):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if available else 0)
    monkeypatch.setattr(torch.version, "cuda", built_with)


def test_pick_device_names_what_is_missing_and_why(monkeypatch):
    _cuda(monkeypatch, available=False, built_with=None)
    with pytest.raises(ValueError, match=r"^device 'cuda' was requested but no CUDA GPU is available: this torch "
                                         r"\(.+\) was built without CUDA; use 'auto' or 'cpu'$"):
        pick_device("cuda")
    _cuda(monkeypatch, available=False, built_with="12.4")
    with pytest.raises(ValueError, match=r"CUDA 12\.4\) sees no GPU; use 'auto' or 'cpu'$"):
        pick_device("cuda:0")
    _cuda(monkeypatch, available=True, count=2)
    assert pick_device("cuda") == torch.device("cuda") and pick_device("cuda:1") == torch.device("cuda:1")
    assert pick_device("auto") == torch.device("cuda")
    with pytest.raises(ValueError, match=r"^device 'cuda:2' was requested but only 2 CUDA GPU\(s\) are visible "
                                         r"\(cuda:0 to cuda:1\)$"):
        pick_device("cuda:2")


def test_pick_device_refuses_unknown_and_unavailable_names(monkeypatch):
    for name in ("tpu", "cudax", "xla", "", "gpu"):
        with pytest.raises(ValueError, match=f"^unknown device '{name}'; use auto, cpu, cuda or mps$"):
            pick_device(name)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ValueError, match="^device 'mps' was requested but Apple MPS is not available"):
        pick_device("mps")
    _cuda(monkeypatch, available=False)
    assert pick_device("auto") == torch.device("cpu") == pick_device("cpu")


def test_autocast_is_bf16_on_cuda_only():
    for kind in ("cpu", "mps"):
        assert isinstance(autocast(torch.device(kind)), contextlib.nullcontext)
    # built, not entered, so no GPU is needed; without one torch warns that it would be disabled
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        cuda = autocast(torch.device("cuda"))
    assert isinstance(cuda, torch.autocast) and cuda.device == "cuda" and cuda.fast_dtype == torch.bfloat16


def test_clocks_wait_for_the_device_and_return_the_result():
    synchronize("cpu")
    before = clock("cpu")
    seconds, result = timed(lambda: sum(range(1000)), "cpu")
    assert result == 499500 and seconds >= 0 and clock(torch.device("cpu")) >= before
    assert device_name("cpu", "Some CPU") == "Some CPU"


@no_cuda
def test_bench_refuses_cuda_without_a_gpu_as_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--quick", "--device", "cuda", "--sections", "memory"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: device 'cuda' was requested but no CUDA GPU is available" in err and "Traceback" not in err


@no_cuda
def test_python_m_bench_device_cuda_without_a_gpu_exits_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dsmini.bench", "--quick", "--device", "cuda", "--out", str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no CUDA GPU is available" in proc.stderr and "use 'auto' or 'cpu'" in proc.stderr
    assert not (tmp_path / "BENCHMARKS.md").exists()  # refused before anything ran


def test_bench_device_flag_resolves_auto_and_defaults_to_cpu(capsys):
    parser = build_parser()
    assert plan_from_args(parser.parse_args(["--quick"]), parser).device == "cpu"
    assert plan_from_args(parser.parse_args(["--device", "auto"]), parser).device == str(pick_device("auto"))
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--device", "tpu"])
    assert exc.value.code == 2 and "invalid choice: 'tpu'" in capsys.readouterr().err


@pytest.mark.parametrize("key", [a.key for a in ARCHS])
def test_every_architecture_trains_under_bf16_autocast(key):
    """The trainer's step on CUDA (`dsmini.training.device.autocast`), with CPU autocast standing in for it."""
    torch.manual_seed(0)
    model = DSMini(arch_config(key, "tiny", vocab_size=30, block_size=16)).train()
    x, y = torch.randint(0, 30, (4, 16)), torch.randint(0, 30, (4, 16))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, y)
    out.loss.backward()
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss)
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
