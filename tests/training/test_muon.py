"""dsmini.training.muon: the same update as torch.optim.Muon, in float32 on a CPU, batched over shapes and experts."""

import pytest
import torch

from dsmini.training import muon as muon_module
from dsmini.training.muon import Muon, orthogonalise


def _matrices(seed: int) -> list[torch.nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(*shape, generator=gen)) for shape in ((8, 16), (16, 8), (8, 16), (12, 12))]


def _three_steps(optimizer_cls, params, **options):
    opt = optimizer_cls(params, lr=0.02, weight_decay=0.1, adjust_lr_fn="match_rms_adamw", **options)
    gen = torch.Generator().manual_seed(7)
    for _ in range(3):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
    return opt


def test_equals_torch_muon_when_both_iterate_in_bfloat16(monkeypatch):
    """With torch's own Newton-Schulz dtype, the batched update is torch.optim.Muon's, matrix by matrix."""
    monkeypatch.setattr(muon_module, "ns_dtype", lambda device: torch.bfloat16)
    ours, theirs = _matrices(0), _matrices(0)
    ours_opt, theirs_opt = _three_steps(Muon, ours), _three_steps(torch.optim.Muon, theirs)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=2e-3, rtol=0)
    # the state has torch's names, so a state saved by torch.optim.Muon loads here
    assert set(ours_opt.state_dict()["state"][0]) == set(theirs_opt.state_dict()["state"][0]) == {"momentum_buffer"}
    fresh = _matrices(0)
    Muon(fresh, lr=0.02).load_state_dict(theirs_opt.state_dict())


def test_float32_iteration_orthogonalises_every_matrix_of_a_batch():
    g = torch.randn(5, 16, 48)
    x = orthogonalise(g)
    assert x.dtype == torch.float32 and x.shape == g.shape
    singular = torch.linalg.svdvals(x)  # (5, 16): Jordan's quintic lands them in ~[0.7, 1.2]
    assert singular.min() > 0.5 and singular.max() < 1.3
    one_by_one = torch.cat([orthogonalise(g[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(x, one_by_one)  # batching changes nothing


def test_a_stacked_expert_weight_is_orthogonalised_expert_by_expert():
    """(E, h, d) experts: one Muon step equals E separate 2-D Muon steps on the slices."""
    stacked = torch.nn.Parameter(torch.randn(4, 8, 16))
    slices = [torch.nn.Parameter(stacked.detach()[e].clone()) for e in range(4)]
    grad = torch.randn(4, 8, 16)
    stacked.grad = grad.clone()
    for e, p in enumerate(slices):
        p.grad = grad[e].clone()
    Muon([stacked], lr=0.02).step()
    Muon(slices, lr=0.02).step()
    torch.testing.assert_close(stacked.detach(), torch.stack([p.detach() for p in slices]))


def test_refuses_vectors():
    with pytest.raises(ValueError, match="matrices"):
        Muon([torch.nn.Parameter(torch.randn(8))])
