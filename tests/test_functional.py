import math

import pytest
import torch

from dreamlab import functional as fn


def test_symlog_symexp_inverse_and_values():
    x = torch.tensor([-100.0, -1.0, 0.0, 0.5, 1e4])
    assert torch.allclose(fn.symexp(fn.symlog(x)), x, rtol=1e-5)
    assert fn.symlog(torch.tensor(math.e - 1)).item() == pytest.approx(1.0)
    assert fn.symlog(torch.tensor(-(math.e - 1))).item() == pytest.approx(-1.0)


def test_twohot_hand_values_and_edges():
    bins = torch.tensor([-1.0, 0.0, 1.0, 3.0])
    out = fn.twohot(torch.tensor([0.25, 2.0, -5.0, 7.0, 1.0]), bins)
    expected = torch.tensor([[0, 0.75, 0.25, 0], [0, 0, 0.5, 0.5], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    assert torch.allclose(out, expected)
    assert torch.allclose((out[:2] * bins).sum(-1), torch.tensor([0.25, 2.0]))


def test_twohot_log_likelihood_equals_the_dense_sum_with_its_gradient():
    """Read at the two bins, the log-likelihood equals sum_k twohot(x)_k log p_k, edges and exact
    bin values included, and so does its gradient into the logits."""
    torch.manual_seed(0)
    bins = torch.tensor([-3.0, -1.0, 0.0, 0.5, 2.0, 10.0])
    x = torch.tensor([-7.0, -3.0, -0.4, 0.0, 0.3, 2.0, 9.0, 50.0])
    logits = torch.randn(8, 6, requires_grad=True)
    dense = (fn.twohot(x, bins) * torch.log_softmax(logits, -1)).sum(-1)
    (dense_grad,) = torch.autograd.grad(dense.sum(), logits)
    sparse = fn.twohot_log_likelihood(torch.log_softmax(logits, -1), x, bins)
    (sparse_grad,) = torch.autograd.grad(sparse.sum(), logits)
    torch.testing.assert_close(sparse, dense)
    torch.testing.assert_close(sparse_grad, dense_grad)


def test_twohot_head_loss_with_a_scaled_second_target():
    from dreamlab.nets.heads import TwohotHead

    torch.manual_seed(0)
    head = TwohotHead(torch.nn.Identity(), 4, 7)
    logits, first, second = torch.randn(5, 7), torch.randn(5) * 3, torch.randn(5) * 3
    expected = [-(fn.twohot(t, head.bins) * torch.log_softmax(logits, -1)).sum(-1) for t in (first, second)]
    torch.testing.assert_close(head.loss(logits, first), expected[0])
    torch.testing.assert_close(head.loss(logits, first, (0.3, second)), expected[0] + 0.3 * expected[1])


def test_lambda_returns_matches_loop_and_known_cases():
    torch.manual_seed(0)
    H, B = 6, 3
    rewards, values = torch.randn(H, B), torch.randn(H + 1, B)
    continues = (torch.rand(H, B) > 0.2).float()
    gamma, lam = 0.9, 0.7
    out = fn.lambda_returns(rewards, continues, values, gamma, lam)
    for b in range(B):  # brute force
        ret = values[H, b]
        for t in reversed(range(H)):
            ret = rewards[t, b] + gamma * continues[t, b] * ((1 - lam) * values[t + 1, b] + lam * ret)
            assert out[t, b].item() == pytest.approx(ret.item(), abs=1e-5)
    one_step = fn.lambda_returns(rewards, continues, values, gamma, 0.0)
    assert torch.allclose(one_step, rewards + gamma * continues * values[1:])


def test_unimix_logits():
    logits = torch.tensor([[10.0, 0.0, -10.0, 0.0]])
    probs = torch.softmax(fn.unimix_logits(logits, 0.01), -1)
    expected = 0.99 * torch.softmax(logits, -1) + 0.01 / 4
    assert torch.allclose(probs, expected, atol=1e-6)
    assert torch.allclose(fn.unimix_probs(logits, 0.01), expected, atol=1e-7)


@pytest.mark.parametrize("mode", ["clip", "straight_through"])
def test_free_bits_forward_and_gradients(mode):
    kl = torch.tensor([0.5, 2.0], requires_grad=True)
    out = fn.free_bits(kl, 1.0, mode)
    assert out.tolist() == [1.0, 2.0]
    out.sum().backward()
    assert kl.grad.tolist() == ([0.0, 1.0] if mode == "clip" else [1.0, 1.0])


def test_quantile_huber_loss_hand_value():
    # one sample, one quantile 0 at tau 0.25, targets 2 and -0.5 (kappa 1):
    # u=2: |0.25-0| * (1*(2-0.5)) = 0.375 ; u=-0.5: |0.25-1| * 0.5*0.25 = 0.09375 ; mean = 0.234375
    loss = fn.quantile_huber_loss(torch.zeros(1, 1), torch.tensor([[0.25]]), torch.tensor([[2.0, -0.5]]))
    assert loss.item() == pytest.approx(0.234375)


def brute_quantile_loss(q, taus, t, kappa):
    total = 0.0
    for b in range(q.shape[0]):
        for i in range(q.shape[1]):
            acc = 0.0
            for j in range(t.shape[1]):
                u = float(t[b, j] - q[b, i])
                h = 0.5 * u * u if abs(u) <= kappa else kappa * (abs(u) - 0.5 * kappa)
                acc += abs(float(taus[b, i]) - (1.0 if u < 0 else 0.0)) * h / kappa
            total += acc / t.shape[1]
    return total / q.shape[0]


@pytest.mark.parametrize("kappa", [1.0, 0.5, 3.0])
def test_quantile_huber_loss_brute_force(kappa):
    torch.manual_seed(1)
    q, taus, t = torch.randn(4, 5), torch.rand(4, 5), torch.randn(4, 6) * 3
    assert fn.quantile_huber_loss(q, taus, t, kappa).item() == pytest.approx(brute_quantile_loss(q, taus, t, kappa),
                                                                            rel=1e-5)
    shared = taus[:1]  # one tau draw shared by the batch broadcasts the same way
    assert fn.quantile_huber_loss(q, shared, t, kappa).item() == pytest.approx(
        brute_quantile_loss(q, shared.expand(4, -1), t, kappa), rel=1e-5)


def brute_n_step(rewards, is_first, is_terminal, is_last, gamma):
    """Loop reference for one window (lists over steps 0..n)."""
    n = len(rewards) - 1
    ret, m = 0.0, 0
    for k in range(1, n + 1):
        if is_first[k]:
            break
        ret += gamma ** (k - 1) * rewards[k]
        m = k
    discount = 0.0 if is_terminal[m] else gamma ** m
    return ret, discount, m, not is_last[0]


def test_n_step_returns_brute_force():
    gen = torch.Generator().manual_seed(0)
    n, B, gamma = 4, 200, 0.9
    rewards = torch.randn(n + 1, B, generator=gen)
    is_last = torch.rand(n + 1, B, generator=gen) < 0.2
    is_terminal = is_last & (torch.rand(n + 1, B, generator=gen) < 0.5)
    is_first = torch.zeros(n + 1, B, dtype=torch.bool)
    is_first[1:] = is_last[:-1]  # an episode's next record is a first one
    returns, discounts, index, valid = fn.n_step_returns(rewards, is_first, is_terminal, is_last, gamma)
    for b in range(B):
        ret, disc, m, ok = brute_n_step(rewards[:, b].tolist(), is_first[:, b].tolist(),
                                        is_terminal[:, b].tolist(), is_last[:, b].tolist(), gamma)
        assert bool(valid[b]) == ok
        if ok:
            assert returns[b].item() == pytest.approx(ret, abs=1e-5)
            assert discounts[b].item() == pytest.approx(disc, abs=1e-6)
            assert index[b].item() == m


def test_n_step_time_limit_bootstraps_terminal_does_not():
    rewards = torch.tensor([[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]])
    is_last = torch.tensor([[False, False], [True, True], [False, False]])
    is_terminal = torch.tensor([[False, False], [True, False], [False, False]])
    is_first = torch.tensor([[False, False], [False, False], [True, True]])
    returns, discounts, index, valid = fn.n_step_returns(rewards, is_first, is_terminal, is_last, 0.5)
    assert returns.tolist() == [1.0, 1.0]
    assert discounts.tolist() == [0.0, 0.5]  # terminal: no bootstrap; time limit: bootstrap from step 1
    assert index.tolist() == [1, 1] and valid.all()


def test_sample_categorical_matches_the_distribution():
    torch.manual_seed(0)
    probs = torch.tensor([0.1, 0.6, 0.3])
    draws = fn.sample_categorical(torch.log(probs).expand(60000, 3))
    freq = torch.bincount(draws, minlength=3).float() / 60000
    assert torch.allclose(freq, probs, atol=0.01)


def test_sample_probs_matches_each_row_and_never_draws_a_zero_probability_class():
    torch.manual_seed(0)
    probs = torch.tensor([[0.0, 0.25, 0.0, 0.75], [0.5, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 1.0]])
    draws = fn.sample_probs(probs.expand(40000, 3, 4))
    assert draws.shape == (40000, 3) and draws.dtype == torch.long
    freq = torch.stack([torch.bincount(draws[:, row], minlength=4) for row in range(3)]).float() / 40000
    assert torch.allclose(freq, probs, atol=0.01)
    assert (freq[probs == 0] == 0).all()


@pytest.mark.parametrize("extreme", [[0.0, -1000.0], [200.0, -200.0], [-200.0, 200.0]])
def test_unimix_logits_without_mixing_stay_finite_for_extreme_logits(extreme):
    logits = torch.tensor([extreme, [0.0, 0.0]])
    out = fn.unimix_logits(logits, 0.0)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.log_softmax(logits, -1), rtol=0, atol=0)
    post, prior = fn.unimix_logits(logits, 0.0), fn.unimix_logits(logits.flip(-1), 0.0)
    kl = (post.exp() * (post - prior)).sum(-1)  # categorical KL(post || prior)
    assert torch.isfinite(kl).all()
    assert kl[1].item() == 0.0 and kl[0].item() == pytest.approx(abs(extreme[0] - extreme[1]), rel=1e-6)


def gae_by_sums(rewards, values, next_values, terminated, done, gamma, lam):
    """A_t as the explicit sum over l of (gamma lam)^l delta_{t+l} until t's episode or the rollout ends."""
    deltas = [rewards[t] + gamma * (1 - terminated[t]) * next_values[t] - values[t] for t in range(len(rewards))]
    out = []
    for t in range(len(rewards)):
        total, weight = 0.0, 1.0
        for k in range(t, len(rewards)):
            total += weight * deltas[k]
            if done[k]:
                break
            weight *= gamma * lam
        out.append(total)
    return out


def test_gae_matches_the_explicit_sums_across_terminals_and_truncations():
    generator = torch.Generator().manual_seed(0)
    T, E = 12, 5
    rewards, values, next_values = (torch.randn(T, E, generator=generator, dtype=torch.float64) for _ in range(3))
    done = torch.rand(T, E, generator=generator) < 0.25
    terminated = done & (torch.rand(T, E, generator=generator) < 0.5)  # the other ends are time limits
    got = fn.gae(rewards, values, next_values, terminated, done, 0.97, 0.9)
    for e in range(E):
        column = [x[:, e].tolist() for x in (rewards, values, next_values, terminated.double(), done)]
        assert got[:, e].tolist() == pytest.approx(gae_by_sums(*column, 0.97, 0.9), abs=1e-12)


def test_gae_hand_values_lambda_one_and_zero():
    rewards, values = torch.tensor([1.0, 1.0]), torch.tensor([0.5, 0.5])
    next_values = torch.tensor([0.5, 2.0])
    no = torch.zeros(2, dtype=torch.bool)
    # lam = 0: one-step TD errors; lam = 1, gamma = 1: return to the bootstrap minus V
    assert fn.gae(rewards, values, next_values, no, no, 1.0, 0.0).tolist() == [1.0, 2.5]
    assert fn.gae(rewards, values, next_values, no, no, 1.0, 1.0).tolist() == [3.5, 2.5]
    ended = torch.tensor([True, False])  # a terminal after step 0: no bootstrap, no carry from step 1
    assert fn.gae(rewards, values, next_values, ended, ended, 1.0, 1.0).tolist() == [0.5, 2.5]
    # a truncation after step 0 bootstraps from V(s_1) but carries nothing from step 1
    assert fn.gae(rewards, values, next_values, no, ended, 1.0, 1.0).tolist() == [1.0, 2.5]


def test_clipped_surrogate_hand_values_and_zero_gradient_past_the_clip():
    old = torch.zeros(4)
    # ratios 1.5, 0.5, 1.1, 0.5 with advantages +1, +1, -1, -1 and clip 0.2
    log_prob = torch.log(torch.tensor([1.5, 0.5, 1.1, 0.5])).requires_grad_()
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    loss = fn.clipped_surrogate(log_prob, old, advantages, 0.2)
    # min(r A, clip(r) A): 1.2 (clipped), 0.5, -1.1, -0.8 (clipped)
    assert float(loss.detach()) == pytest.approx(-(1.2 + 0.5 - 1.1 - 0.8) / 4)
    loss.backward()
    # d/dlogp of -r A / 4 where unclipped; 0 where the clip holds the ratio
    assert log_prob.grad.tolist() == pytest.approx([0.0, -0.5 / 4, 1.1 / 4, 0.0])
