import functools
import json
import math
import shutil

import numpy as np
import pytest
import torch

from dreamlab.agents.dreamer.agent import DreamerAgent
from dreamlab.agents.dreamer.behavior import ReturnNormalizer
from dreamlab.agents.dreamer.losses import replay_returns
from dreamlab.config.load import load
from dreamlab.envs.make import make_env
from dreamlab.nets import row_sum as row_sum_module
from dreamlab.nets.heads import symexp_bins
from dreamlab.nets.laprop import LaProp, warmup_lr
from dreamlab.nets.row_sum import row_sum
from dreamlab.replay.buffer import ReplayBuffer
from dreamlab.track import names

TINY_DREAMER = ["agent=dreamer", "threads=1", "agent.deter=32", "agent.hidden=16", "agent.groups=4",
                "agent.classes=4", "agent.blocks=4", "agent.units=16", "agent.mlp_layers=1", "agent.ac_layers=1",
                "agent.batch_size=4", "agent.batch_length=8", "agent.imag_horizon=3", "agent.bins=31",
                "agent.warmup=0", "agent.lr=1e-3"]


def make_agent(overrides=()):
    _, cfg = load([*TINY_DREAMER, *overrides])
    env = make_env(cfg.env)
    torch.manual_seed(0)
    return DreamerAgent(cfg, env.observation_space, env.action_space, torch.device("cpu")), cfg


def cartpole_batch(cfg, seed=0):
    env = make_env(cfg.env)
    buffer = ReplayBuffer(capacity=400, num_streams=1, seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    first, last, terminal, reward = True, False, False, 0.0
    for _ in range(200):
        action = 0 if last else int(rng.integers(0, 2))
        buffer.add({"state": obs["state"][None], "reward": np.array([reward], np.float32),
                    "is_first": np.array([first]), "is_last": np.array([last]),
                    "is_terminal": np.array([terminal]), "action": np.array([action])})
        if last:
            (obs, _), first, last, terminal, reward = env.reset(), True, False, False, 0.0
        else:
            obs, reward, terminal, truncated, _ = env.step(action)
            first, last = False, terminal or truncated
    return buffer.sample(cfg.agent.batch_size, cfg.agent.batch_length)


def test_symexp_bins_and_zero_init_heads_predict_exactly_zero():
    bins = symexp_bins(255)
    assert bins.shape == (255,) and bins[127] == 0 and torch.equal(bins, -bins.flip(0))
    agent, _ = make_agent()
    deter, stoch = torch.randn(7, 32), torch.randint(0, 4, (7, 4))
    assert torch.all(agent.wm.reward_head.mean(agent.wm.reward_head(deter, stoch)) == 0)
    assert torch.all(agent.critic.net.mean(agent.critic.net(deter, stoch)) == 0)


def test_feature_layer_index_path_equals_one_hot_path_in_value_and_gradient():
    agent, _ = make_agent()
    layer = agent.actor.net.body.first
    deter, index = torch.randn(9, 32), torch.randint(0, 4, (9, 4))  # 9 rows x 4 groups: classes repeat
    onehot = torch.nn.functional.one_hot(index, 4).float().flatten(-2)
    grads = []
    for stoch in (index, onehot):
        layer.zero_grad()
        out = layer(deter, stoch)
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), layer.stoch_weight.grad.clone()))
    torch.testing.assert_close(grads[0], grads[1])


def test_row_sum_gradient_matches_one_hot_matmul_and_compiles(monkeypatch):
    monkeypatch.setattr(row_sum_module, "_CHUNK_ROWS", 3)  # 4 rows: the backward runs two chunks
    weight = torch.randn(12, 5, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([[0, 4, 8], [3, 4, 11], [0, 4, 8], [1, 6, 9]])
    torch.autograd.gradcheck(lambda w: row_sum(index, w), (weight,))
    compiled = torch.compile(lambda i, w: row_sum(i, w).square().sum(), backend="aot_eager", fullgraph=True)
    compiled(index, weight).backward()
    onehot = torch.zeros(4, 12, dtype=torch.float64).scatter_(1, index, 1.0)
    expected = 2 * onehot.t() @ (onehot @ weight.detach())
    torch.testing.assert_close(weight.grad, expected)


def test_one_update_shapes_and_registered_metrics():
    agent, cfg = make_agent()
    metrics = agent.update(cartpole_batch(cfg))
    expected = {names.WM_LOSS_TOTAL, names.WM_KL_DYN, names.WM_KL_REP, names.WM_KL_RAW, names.ACTOR_LOSS,
                names.ACTOR_ENTROPY, names.CRITIC_LOSS, names.DREAM_RETURN_SCALE, names.grad_norm("wm")}
    assert expected <= set(metrics)
    assert all(names.is_registered(k) for k in metrics)
    assert all(np.isfinite(v) for v in metrics.values())
    # the reward head starts at ln(bins) cross-entropy: uniform over 31 bins
    assert metrics[names.WM_LOSS_REWARD] == pytest.approx(np.log(31), rel=1e-4)


def test_world_model_loss_falls_on_a_fixed_batch():
    agent, cfg = make_agent(["agent.lr=3e-3"])
    batch = cartpole_batch(cfg)
    losses = [agent.update(batch)[names.WM_LOSS_TOTAL] for _ in range(50)]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_no_actor_or_critic_gradient_reaches_the_world_model():
    agent, cfg = make_agent(["agent.repval_scale=0"])
    batch = cartpole_batch(cfg)
    seq = {k: torch.as_tensor(np.swapaxes(v, 0, 1)) for k, v in batch.items()}
    actions = torch.nn.functional.one_hot(seq["action"], 2).float()
    is_first = seq["is_first"].clone()
    is_first[0] = True
    embed = agent.wm.encode({"state": seq["state"]})
    carry = (*agent.wm.rssm.initial(cfg.agent.batch_size, torch.device("cpu")), torch.zeros_like(actions[0]))
    deters, stochs, _, _ = agent.wm.rssm.observe(embed, actions, is_first, carry)
    loss = agent._behavior_loss(deters, stochs, seq, {})
    loss.backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in agent.wm.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.actor.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in agent.critic.net.parameters())


def test_is_first_resets_independent_of_the_carry():
    agent, cfg = make_agent()
    rssm = agent.wm.rssm
    embed = torch.randn(3, 2, cfg.agent.units)
    actions = torch.nn.functional.one_hot(torch.tensor([[0, 1], [1, 1], [0, 0]]), 2).float()
    is_first = torch.tensor([[True, True], [False, False], [False, False]])
    outs = []
    for scale in (0.0, 5.0):
        deter, stoch = rssm.initial(2, torch.device("cpu"))
        carry = (deter + scale, stoch + scale, torch.ones(2, 2) * scale)
        torch.manual_seed(3)
        outs.append(rssm.observe(embed, actions, is_first, carry)[0])
    assert torch.equal(outs[0], outs[1])


def test_free_bits_clip_gives_zero_kl_gradient_below_one_nat():
    agent, cfg = make_agent(["agent.free_nats=1000"])  # every KL is below the free bits
    metrics = agent.update(cartpole_batch(cfg))
    assert metrics[names.WM_KL_DYN] == pytest.approx(1000.0)
    post_params = list(agent.wm.rssm.prior_net.parameters())
    assert all(p.grad is None or torch.all(p.grad == 0) for p in post_params)  # the prior only learns from KL


def test_laprop_warmup_agc_and_sign_steps():
    assert warmup_lr(0, 4e-5, 1000) == 0 and warmup_lr(500, 4e-5, 1000) == pytest.approx(2e-5)
    assert warmup_lr(1000, 4e-5, 1000) == warmup_lr(5000, 4e-5, 1000) == 4e-5
    param = torch.nn.Parameter(torch.full((3,), 10.0))
    optimizer = LaProp([param], lr=0.1, warmup=2, agc=0.0)
    for step in range(4):
        before = param.detach().clone()
        param.grad = torch.tensor([2.0, -3.0, 0.5])
        optimizer.step()
        moved = param.detach() - before
        expected = -warmup_lr(step, 0.1, 2) * torch.sign(param.grad)  # constant gradient: -lr * sign(g)
        assert torch.allclose(moved, expected, atol=1e-6)
    clipped = torch.nn.Parameter(torch.tensor([3.0, 4.0]))  # norm 5 -> gradient norm <= 1.5
    agc = LaProp([clipped], lr=0.0, warmup=0, agc=0.3)
    clipped.grad = torch.tensor([30.0, 40.0])
    agc.step()
    assert clipped.grad.norm().item() == pytest.approx(1.5, rel=1e-5)


def test_slow_critic_approaches_the_critic_at_its_rate():
    agent, _ = make_agent()
    with torch.no_grad():
        for p in agent.critic.net.parameters():
            p.add_(1.0)
    distance = lambda: sum((a - b).abs().sum() for a, b in zip(agent.critic.net.parameters(),  # noqa: E731
                                                                 agent.critic.slow.parameters(), strict=True))
    start = distance()
    for _ in range(10):
        agent.critic.update_slow()
    assert distance().item() == pytest.approx(start.item() * 0.98 ** 10, rel=1e-4)


def test_return_normalizer_percentiles_without_debiasing():
    norm = ReturnNormalizer()
    returns = torch.arange(101, dtype=torch.float32)
    scale = norm.update(returns)
    assert norm.low.item() == pytest.approx(0.01 * 5.0) and norm.high.item() == pytest.approx(0.01 * 95.0)
    assert scale.item() == 1.0  # max(1, hi - lo)


def test_replay_returns_brute_force():
    gen = torch.Generator().manual_seed(0)
    T, B, gamma, lam = 6, 3, 0.9, 0.8
    reward, boot = torch.randn(T, B, generator=gen), torch.randn(T, B, generator=gen)
    is_last = torch.rand(T, B, generator=gen) < 0.3
    terminal = is_last & (torch.rand(T, B, generator=gen) < 0.5)
    out = replay_returns(reward, terminal, is_last, boot, gamma, lam)
    for b in range(B):
        ret = boot[-1, b].item()
        for t in reversed(range(T - 1)):
            lam_next = lam * (1 - float(is_last[t + 1, b]))
            ret = reward[t + 1, b].item() + gamma * (1 - float(terminal[t + 1, b])) * (
                (1 - lam_next) * boot[t + 1, b].item() + lam_next * ret)
            assert out[t, b].item() == pytest.approx(ret, abs=1e-5)


def test_dreamer_resume_equals_uninterrupted_run(tmp_path):
    from dreamlab.train import checkpoint
    from dreamlab.train.run import train

    common = [*TINY_DREAMER, f"run.dir={tmp_path}", "train.learning_starts=64", "train.train_ratio=32",
              "eval.every=150", "eval.episodes=1", "eval.num_envs=1", "checkpoint.every=150",
              "track.tensorboard=false", "replay.capacity=1000", "env.num_envs=2", "track.every=5"]
    straight = train([*common, "run.steps=300"], quiet=True)
    half = train([*common, "run.steps=150"], quiet=True)
    resumed = train([f"run.resume={half.run_dir}", "run.steps=300"], quiet=True)
    assert resumed.summary["updates"] == straight.summary["updates"] > 0
    a = checkpoint.load(straight.run_dir / "checkpoints" / "latest.pt")["agent"]
    b = checkpoint.load(resumed.run_dir / "checkpoints" / "latest.pt")["agent"]
    for part in ("wm", "actor", "critic", "return_norm"):
        for key in a[part]:
            torch.testing.assert_close(a[part][key], b[part][key], rtol=1e-4, atol=1e-5)
    assert a["optimizers"]["all"]["state"][0]["step"] == b["optimizers"]["all"]["state"][0]["step"]


def test_load_world_model_freezes_it_and_trains_actor_critic(tmp_path):
    from dreamlab.train.run import train

    run = train([*TINY_DREAMER, f"run.dir={tmp_path}", "run.steps=120", "train.learning_starts=40",
                 "eval.every=1000", "eval.episodes=1", "eval.num_envs=1", "track.tensorboard=false",
                 "replay.capacity=500", "env.num_envs=1"], quiet=True)
    agent, cfg = make_agent([f"agent.load_world_model={run.run_dir}", "agent.wm_ac_ratio=2"])
    before = {k: v.clone() for k, v in agent.wm.state_dict().items()}
    actor_before = [p.detach().clone() for p in agent.actor.parameters()]
    batch = cartpole_batch(cfg)
    for _ in range(3):
        agent.update(batch)
    assert all(torch.equal(before[k], v) for k, v in agent.wm.state_dict().items())
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, agent.actor.parameters(), strict=True))


@pytest.mark.parametrize("mode", ["pause_ac", "extra_wm"])
def test_surprise_gate_in_a_run(tmp_path, mode):
    """A gate that is always open (threshold -inf): pause_ac never trains the actor, extra_wm adds updates."""
    import json

    from dreamlab.train import checkpoint
    from dreamlab.train.run import train

    common = [*TINY_DREAMER, f"run.dir={tmp_path}", "run.steps=160", "train.learning_starts=64",
              "train.train_ratio=32", "eval.every=1000", "eval.episodes=1", "eval.num_envs=1",
              "track.tensorboard=false", "replay.capacity=500", "env.num_envs=1", "track.every=1"]
    plain = train(common, quiet=True)
    gated = train([*common, "agent.wm_focus_threshold=-1e9", f"agent.wm_focus_mode={mode}",
                   "agent.wm_focus_extra=2"], quiet=True)
    rows = [json.loads(line) for line in (gated.run_dir / "metrics.jsonl").read_text().splitlines()]
    focus = [r["monitor/wm_focus"] for r in rows if "monitor/wm_focus" in r]
    assert focus and all(v == 1.0 for v in focus[1:])  # the first update has no surprise EMA yet
    if mode == "extra_wm":
        assert gated.summary["updates"] == 1 + 3 * (plain.summary["updates"] - 1)
    else:
        assert gated.summary["updates"] == plain.summary["updates"]
        state = checkpoint.load(gated.run_dir / "checkpoints" / "latest.pt")["agent"]
        # update 1 has no surprise yet and the gate read after update 2 applies from update 3 on
        assert state["ac_updates"] == 2


def test_surprise_gate_is_rejected_for_an_agent_without_world_model(tiny):
    from dreamlab.config.load import ConfigError
    from dreamlab.train.run import train

    with pytest.raises(ConfigError, match="unknown config key 'agent.wm_focus_threshold'"):
        train([*tiny, "agent.wm_focus_threshold=0.5"], quiet=True)


def test_surprise_is_log_ratio_against_the_components_own_ema():
    from dreamlab.agents.dreamer.focus import Surprise
    from dreamlab.agents.dreamer.losses import surprise_components

    surprise = Surprise(surprise_components(["state"]), decay=0.5)
    assert surprise({names.WM_LOSS_STATE: 2.0, names.WM_KL_RAW: 1.0}) == {}  # the first value seeds the EMA
    out = surprise({names.WM_LOSS_STATE: 4.0, names.WM_KL_RAW: 1.0})
    assert out[names.surprise("state")] == pytest.approx(math.log(4.0 / 2.0), rel=1e-5)
    assert out[names.surprise("kl")] == pytest.approx(0.0, abs=1e-6)
    assert out[names.WM_SURPRISE_TOTAL] == pytest.approx(math.log(2.0) / 2, rel=1e-5)
    assert all(names.is_registered(k) for k in out)
    assert surprise({names.LOSS_TD: 1.0}) == {}  # only the components it was given


def test_surprise_gate_opens_above_its_threshold_only():
    from dreamlab.agents.dreamer.focus import SurpriseGate

    off = SurpriseGate(None)
    assert off.observe({"wm/surprise/total_log_ratio": 10.0}) == 0.0 and off.extra_updates() == 0
    pause = SurpriseGate(0.5, "pause_ac")
    assert pause.observe({"wm/surprise/total_log_ratio": 0.7}) == 1.0 and pause.pauses_actor_critic()
    assert pause.extra_updates() == 0
    assert pause.observe({"wm/surprise/total_log_ratio": 0.3}) == 0.0 and not pause.pauses_actor_critic()
    assert pause.observe({}) == 0.0  # no world-model losses yet: closed
    extra = SurpriseGate(0.5, "extra_wm", extra=3)
    extra.observe({"wm/surprise/total_log_ratio": 0.9})
    assert extra.extra_updates() == 3 and not extra.pauses_actor_critic()


def test_the_agent_asks_for_extra_world_model_updates_and_keeps_the_gate_in_its_state():
    agent, cfg = make_agent(["agent.wm_focus_threshold=-1e9", "agent.wm_focus_mode=extra_wm",
                             "agent.wm_focus_extra=2"])
    batch = cartpole_batch(cfg)
    assert names.MONITOR_WM_FOCUS in agent.update(batch) and agent.extra_updates() == 0  # no EMA yet: closed
    agent.update(batch)
    assert agent.extra_updates() == 2  # surprising: two world-model-only updates asked for
    ac_before = agent.ac_updates
    agent.update(batch)
    agent.update(batch)
    assert agent.ac_updates == ac_before and agent.extra_updates() == 0  # they trained no actor-critic
    fresh, _ = make_agent(["agent.wm_focus_threshold=-1e9", "agent.wm_focus_mode=extra_wm"])
    agent.update(batch)
    fresh.load_state_dict(agent.state_dict())
    assert fresh.extra_updates() == agent.extra_updates() == 2 and fresh.focus.gate.open
    assert fresh.focus.surprise.ema == agent.focus.surprise.ema


def test_every_world_model_loss_needs_its_scale():
    agent, cfg = make_agent()
    batch = cartpole_batch(cfg)
    assert set(agent.wm_scales) == {"dyn", "rep", "reward", "continue", "decoder/state"}
    del agent.wm_scales["continue"]
    with pytest.raises(ValueError, match="world-model loss 'continue' has no scale"):
        agent.update(batch)
    agent, _ = make_agent()
    agent.wm_scales["decoder/ghost"] = "beta_pred"
    with pytest.raises(ValueError, match="scale for 'decoder/ghost' names no loss"):
        agent.update(batch)


def test_a_loss_of_the_wrong_shape_is_refused(monkeypatch):
    from dreamlab.agents.dreamer import agent as agent_module

    agent, cfg = make_agent()
    compute = agent_module.world_model_losses

    def reduced_too_early(*args, **kwargs):
        losses, kl_raw = compute(*args, **kwargs)
        return {**losses, "reward": losses["reward"].sum(0)}, kl_raw  # [B] instead of [T, B]

    monkeypatch.setattr(agent_module, "world_model_losses", reduced_too_early)
    with pytest.raises(ValueError, match=r"loss .reward.: shape \[4\], expected the per-step shape \[8, 4\]"):
        agent.update(cartpole_batch(cfg))


@pytest.mark.parametrize("sampling", ["pool", "stride"])
def test_image_encoder_decoder_shapes_and_summed_pixel_loss(sampling):
    from dreamlab.agents.dreamer.losses import world_model_losses
    from dreamlab.nets.conv import ImageDecoder, ImageEncoder

    encoder = ImageEncoder(3, (32, 48), depth=2, sampling=sampling)
    image = torch.randint(0, 256, (5, 4, 32, 48, 3), dtype=torch.uint8)
    assert encoder(image).shape == (5, 4, encoder.out_dim) and encoder.out_dim == 2 * 3 * 8
    decoder = ImageDecoder(32, 4, 4, 16, 3, (32, 48), depth=2, blocks=4, sampling=sampling)
    out = decoder(torch.randn(5, 4, 32), torch.zeros(5, 4, 16))
    assert out.shape == (5, 4, 32, 48, 3) and 0 <= out.min() and out.max() <= 1
    # the image loss is the squared error summed over H*W*C, e.g. a constant 0.5 error on 32x32x3
    agent, cfg = make_agent(["env.pixels=true", "env.image_size=32", "agent.cnn_depth=2"])

    class Constant(torch.nn.Module):
        def forward(self, deter, stoch):
            return torch.full((*deter.shape[:-1], 32, 32, 3), 0.5)

    agent.wm.image_decoder = Constant()
    deter, stoch = torch.zeros(2, 3, 32), torch.zeros(2, 3, 16)
    logits = torch.zeros(2, 3, 4, 4)
    losses, _ = world_model_losses(agent.wm, deter, stoch, logits, logits, {"image": torch.zeros(2, 3, 32, 32, 3,
                                dtype=torch.uint8)}, torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.bool), cfg.agent)
    torch.testing.assert_close(losses["decoder/image"], torch.full((2, 3), 0.25 * 32 * 32 * 3))


def test_strided_cnn_costs_a_fraction_of_the_pooled_one():
    """agent.cnn_sampling=stride: the same shapes at under a quarter of the convolution FLOPs (each
    conv runs at the smaller of its two resolutions), and it trains: an autoencoder of it learns a batch
    of frames well past their mean image."""
    from torch.utils.flop_counter import FlopCounterMode

    from dreamlab.nets.conv import ImageDecoder, ImageEncoder

    def flops(sampling):
        encoder = ImageEncoder(3, 32, depth=8, sampling=sampling)
        decoder = ImageDecoder(64, 8, 8, 32, 3, 32, depth=8, sampling=sampling)
        with FlopCounterMode(display=False) as counter:
            encoder(torch.zeros(16, 32, 32, 3, dtype=torch.uint8))
            decoder(torch.zeros(16, 64), torch.zeros(16, 64))
        return counter.get_total_flops()

    assert flops("stride") < flops("pool") / 4
    # eight frames, each a white square elsewhere: the strided autoencoder learns them well past
    # their mean image (which is what a network ignoring its input would converge to)
    images = torch.zeros(8, 32, 32, 3, dtype=torch.uint8)
    for i in range(8):
        row, col = 4 * (i % 4) + 2, 6 * (i // 4) + 4
        images[i, row:row + 8, col:col + 8] = 255
    target = images.float() / 255
    mean_image_loss = float(((target - target.mean(0)) ** 2).sum((1, 2, 3)).mean())
    torch.manual_seed(0)
    encoder = ImageEncoder(3, 32, depth=4, sampling="stride")
    decoder = ImageDecoder(encoder.out_dim, 1, 2, 16, 3, 32, depth=4, blocks=1, sampling="stride")
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=3e-3)
    for _ in range(60):
        loss = ((decoder(encoder(images), torch.zeros(8, 2)) - target) ** 2).sum((1, 2, 3)).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.6 * mean_image_loss


def test_pixel_dreamer_update_and_act(tmp_path):
    """A CNN DreamerV3 update on a tiny image env (CartPole frames at 32x32, with and without state)."""
    from dreamlab.train.run import train

    for extra in ([], ["env.keep_state=true"]):
        run = train([*TINY_DREAMER, f"run.dir={tmp_path}", "env=cartpole", "env.pixels=true", "env.image_size=32",
                     "agent.cnn_depth=2", "run.steps=80", "train.learning_starts=40", "train.train_ratio=64",
                     "eval.every=1000", "eval.episodes=1", "eval.num_envs=1", "track.tensorboard=false",
                     "replay.capacity=500", "env.num_envs=1", "track.every=1", *extra], quiet=True)
        rows = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
        image_losses = [r["wm/loss_image"] for r in rows if "wm/loss_image" in r]
        assert image_losses and all(np.isfinite(image_losses))
        assert any("wm/loss_state" in r for r in rows) == bool(extra)


def test_open_loop_dreams_only_from_the_context_frames():
    """Frames after the context never reach the model: changing them leaves every model frame as it was."""
    from dreamlab.agents.dreamer.openloop import open_loop

    agent, _ = make_agent(["env.pixels=true", "env.image_size=32", "agent.cnn_depth=2"])
    rng = np.random.default_rng(0)
    batch = {"image": rng.integers(0, 256, (2, 9, 32, 32, 3), dtype=np.uint8),
             "action": rng.integers(0, 2, (2, 9)), "is_first": np.zeros((2, 9), bool)}
    torch.manual_seed(0)
    truth, model = open_loop(agent.wm, batch, agent.actions, "image", 3, agent.device)
    assert truth.shape == model.shape == (2, 9, 32, 32, 3) and model.dtype == np.uint8
    changed = {**batch, "image": batch["image"].copy()}
    changed["image"][:, 3:] = 0
    torch.manual_seed(0)
    _, model_changed = open_loop(agent.wm, changed, agent.actions, "image", 3, agent.device)
    np.testing.assert_array_equal(model, model_changed)
    changed["image"][:, :3] = 255  # the context frames do change what the model sees
    torch.manual_seed(0)
    _, model_changed = open_loop(agent.wm, changed, agent.actions, "image", 3, agent.device)
    assert not np.array_equal(model, model_changed)


def test_dreamer_media_written_at_interval_without_changing_training(tmp_path):
    """track.media_every writes grids and videos to media/ and TensorBoard, and training stays identical."""
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dreamlab.train.run import train

    common = [*TINY_DREAMER, "env=cartpole", "env.pixels=true", "env.image_size=32", "agent.cnn_depth=2",
              "run.steps=80", "train.learning_starts=40", "train.train_ratio=64", "eval.every=1000",
              "eval.episodes=1", "eval.num_envs=1", "replay.capacity=500", "env.num_envs=1", "track.every=1"]
    with_media = train([*common, f"run.dir={tmp_path / 'on'}", "track.media_every=25"], quiet=True)
    without = train([*common, f"run.dir={tmp_path / 'off'}", "track.media_every=0", "track.tensorboard=false"],
                    quiet=True)
    updates = with_media.summary["updates"]
    assert updates >= 50
    pngs = sorted((with_media.run_dir / "media").glob("openloop_*.png"))
    gifs = sorted((with_media.run_dir / "media").glob("openloop_*.gif"))
    assert len(pngs) == len(gifs) == updates // 25
    grid = np.asarray(Image.open(pngs[0]))
    assert grid.shape[0] >= 4 * 3 * 32 and grid.shape[1] >= 8 * 32  # 4 sequences x (real, model, error) rows
    assert Image.open(gifs[0]).n_frames == 8  # one frame per replayed step (batch_length)
    events = EventAccumulator(str(with_media.run_dir), size_guidance={"images": 0}).Reload()
    assert {"media/openloop", "media/openloop_video"} <= set(events.Tags()["images"])
    assert not (without.run_dir / "media").exists() or not any((without.run_dir / "media").iterdir())
    rows_on = [json.loads(line) for line in (with_media.run_dir / "metrics.jsonl").read_text().splitlines()]
    rows_off = [json.loads(line) for line in (without.run_dir / "metrics.jsonl").read_text().splitlines()]
    losses_on = [r["wm/loss_total"] for r in rows_on if "wm/loss_total" in r]
    assert losses_on == [r["wm/loss_total"] for r in rows_off if "wm/loss_total" in r]


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="needs a C++ compiler")
@pytest.mark.parametrize("scope", ["update", "steps"])
def test_compiled_update_matches_the_eager_one(scope, monkeypatch):
    """agent.compile=true trains the same model, whether the whole update or its per-step cells are
    compiled: same losses and parameters after two updates, up to float rounding (the compiler fuses
    and reorders float operations). Compiled code draws its own random numbers; fallback_random makes
    it draw eager's, so the samples match. The default scope (steps) goes through inductor's C++
    kernels; the unrolled one through the same graph capture, run by aot_eager (no C++ builds: the
    suite's time)."""
    import torch._inductor.config

    if scope == "update":
        monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="aot_eager"))

    _, cfg = load([*TINY_DREAMER, "agent.batch_length=4", "agent.imag_horizon=2"])
    batches = [cartpole_batch(cfg, seed) for seed in (0, 1)]
    agents, results = [], []
    for compiled in (False, True):
        agent, _ = make_agent(["agent.batch_length=4", "agent.imag_horizon=2", f"agent.compile={compiled}",
                               f"agent.compile_scope={scope}"])
        torch.manual_seed(1)
        with torch._inductor.config.patch(fallback_random=True):
            results.append([agent.update(batch) for batch in batches])
        agents.append(agent)
    eager, compiled = results
    for key in (names.WM_LOSS_TOTAL, names.ACTOR_LOSS, names.CRITIC_LOSS):
        np.testing.assert_allclose([m[key] for m in compiled], [m[key] for m in eager], rtol=1e-4, atol=1e-5)
    for a, b in zip(agents[0].wm.parameters(), agents[1].wm.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
