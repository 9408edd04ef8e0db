import pytest
import torch

from dreamlab.nets.laprop import LaProp, warmup_lr

GRAD = torch.tensor([2.0, -3.0, 0.5])


def test_a_tensor_that_starts_late_moves_lr_sign_g_from_its_first_update():
    early = torch.nn.Parameter(torch.zeros(3))
    late = torch.nn.Parameter(torch.zeros(3))
    optimizer = LaProp([early, late], lr=0.1, warmup=0, agc=0.0)
    for step in range(80):
        early.grad = GRAD.clone()
        late.grad = GRAD.clone() if step >= 50 else None  # no gradient for the first 50 steps
        before = late.detach().clone()
        optimizer.step()
        moved = late.detach() - before
        if step < 50:
            assert torch.equal(moved, torch.zeros(3))
        else:  # bias-corrected by its own count: -lr * sign(g) from its first update on
            torch.testing.assert_close(moved, -0.1 * torch.sign(GRAD), rtol=1e-5, atol=0)
    state = optimizer.state_dict()
    assert [s["step"] for s in state["state"].values()] == [80, 30]
    assert state["param_groups"][0]["step"] == 80


def test_a_tensor_updated_every_third_step_moves_lr_sign_g_each_time():
    every = torch.nn.Parameter(torch.zeros(3))
    sparse = torch.nn.Parameter(torch.zeros(3))
    optimizer = LaProp([every, sparse], lr=0.1, warmup=0, agc=0.0)
    for step in range(30):
        every.grad = GRAD.clone()
        sparse.grad = GRAD.clone() if step % 3 == 0 else None
        before = sparse.detach().clone()
        optimizer.step()
        if step % 3 == 0:
            torch.testing.assert_close(sparse.detach() - before, -0.1 * torch.sign(GRAD), rtol=1e-5, atol=0)


def test_warmup_follows_the_global_step_and_the_first_step_is_zero():
    early = torch.nn.Parameter(torch.zeros(3))
    late = torch.nn.Parameter(torch.zeros(3))
    optimizer = LaProp([early, late], lr=0.1, warmup=10, agc=0.0)
    for step in range(8):
        early.grad = GRAD.clone()
        late.grad = GRAD.clone() if step >= 4 else None
        before = torch.stack([early.detach(), late.detach()])
        optimizer.step()
        moved = torch.stack([early.detach(), late.detach()]) - before
        expected = -warmup_lr(step, 0.1, 10) * torch.sign(GRAD)  # the global step's lr, the own bias correction
        torch.testing.assert_close(moved[0], expected, rtol=1e-5, atol=0)
        torch.testing.assert_close(moved[1], expected if step >= 4 else torch.zeros(3), rtol=1e-5, atol=0)
        if step == 0:
            assert torch.equal(moved[0], torch.zeros(3))


def test_steps_with_no_gradient_at_all_do_not_advance_the_warmup():
    param = torch.nn.Parameter(torch.zeros(3))
    optimizer = LaProp([param], lr=0.1, warmup=4, agc=0.0)
    optimizer.step()  # nothing has a gradient yet
    param.grad = GRAD.clone()
    optimizer.step()
    assert torch.equal(param.detach(), torch.zeros(3))  # still the first, zero-lr step
    assert optimizer.param_groups[0]["step"] == 1


def run_pair(optimizer, early, late, steps, start):
    moves = []
    for step in range(start, start + steps):
        early.grad = torch.sin(torch.arange(3.0) + step)
        late.grad = torch.cos(torch.arange(3.0) * step) if step % 2 else None
        before = torch.cat([early.detach(), late.detach()])
        optimizer.step()
        moves.append(torch.cat([early.detach(), late.detach()]) - before)
    return torch.stack(moves)


def make_pair():
    early, late = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    return early, late, LaProp([early, late], lr=0.1, warmup=6, agc=0.3)


def test_state_dict_round_trip_keeps_both_counters():
    early, late, straight = make_pair()
    expected = run_pair(straight, early, late, 20, 0)
    early2, late2, first = make_pair()
    run_pair(first, early2, late2, 10, 0)
    early3, late3, resumed = make_pair()
    with torch.no_grad():
        early3.copy_(early2)
        late3.copy_(late2)
    resumed.load_state_dict(first.state_dict())
    assert resumed.param_groups[0]["step"] == 10
    assert [resumed.state[p]["step"] for p in (early3, late3)] == [10, 5]
    torch.testing.assert_close(run_pair(resumed, early3, late3, 10, 10), expected[10:])


def test_a_state_saved_before_the_group_count_still_loads():
    early, late, old = make_pair()
    run_pair(old, early, late, 10, 0)
    state = old.state_dict()
    del state["param_groups"][0]["step"]  # the old format: only the per-tensor counts
    _, _, resumed = make_pair()
    resumed.load_state_dict(state)
    late_only = resumed.param_groups[0]["params"][1]
    late_only.grad = torch.ones(3)
    resumed.step()
    assert resumed.param_groups[0]["step"] == 11


@pytest.mark.parametrize("warmup", [0, 3])
def test_constant_gradient_moves_lr_t_sign_g(warmup):
    param = torch.nn.Parameter(torch.full((3,), 10.0))
    optimizer = LaProp([param], lr=0.1, warmup=warmup, agc=0.0)
    for step in range(6):
        before = param.detach().clone()
        param.grad = GRAD.clone()
        optimizer.step()
        torch.testing.assert_close(param.detach() - before, -warmup_lr(step, 0.1, warmup) * torch.sign(GRAD),
                                   rtol=1e-5, atol=1e-6)
